package bench

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"
)

// recorder is a reverse proxy in front of DynamoDB Local that sees every
// request of a phase, whoever makes it: the benchmark's own client in the
// raw ceiling and the functions' clients (built by their Builders, out of
// the benchmark's reach) in the full path. It counts round trips per
// operation, sums the capacity DynamoDB reports, and counts the writes per
// partition key, table and index, per second. Both phases pay its cost
// (tens of microseconds a request), so the comparison stays fair.
type recorder struct {
	proxy *httputil.ReverseProxy
	srv   *http.Server
	url   string
	gsi   string // attribute holding the index's partition key

	mu  sync.Mutex
	cur *phaseDDB // nil while not recording
}

// bodyBytesMax bounds a request or answer the recorder reads to parse
// (DynamoDB's own request limit is 16 MB; ours are a few KB).
const bodyBytesMax = 16 << 20

// phaseDDB is what DynamoDB saw during one phase.
type phaseDDB struct {
	start      time.Time
	roundTrips map[string]int64 // operation -> requests
	errors     map[string]int64 // operation -> non-2xx answers
	// capacity reported by DynamoDB (ReturnConsumedCapacity), per
	// operation: the table's share and the indexes' share.
	tableCU map[string]float64
	indexCU map[string]float64
	keys    map[string]*keyWrites
}

// keyWrites counts the writes of one partition key.
type keyWrites struct {
	index  bool // a GSI partition, not the table's
	total  int64
	perSec map[int]int64
}

func newPhaseDDB() *phaseDDB {
	return &phaseDDB{start: time.Now(), roundTrips: map[string]int64{}, errors: map[string]int64{},
		tableCU: map[string]float64{}, indexCU: map[string]float64{}, keys: map[string]*keyWrites{}}
}

func startRecorder(target, gsiAttr string) (*recorder, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	r := &recorder{gsi: gsiAttr}
	r.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			// The SDK signed for the recorder's host; DynamoDB Local does
			// not check signatures.
			pr.SetURL(u)
		},
		Transport: &http.Transport{MaxIdleConns: 512, MaxIdleConnsPerHost: 512, IdleConnTimeout: 90 * time.Second},
		// Flush at once: latency is what is measured.
		FlushInterval:  -1,
		ModifyResponse: r.onResponse,
		// A client giving up (a timeout, the end of a phase) is its own
		// business: answer 502 without logging.
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, _ error) { w.WriteHeader(http.StatusBadGateway) },
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r.url = "http://" + ln.Addr().String()
	r.srv = &http.Server{Handler: http.HandlerFunc(r.serve), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

func (r *recorder) close() error { return r.srv.Close() }

// begin starts recording a phase; end stops and returns it.
func (r *recorder) begin() {
	r.mu.Lock()
	r.cur = newPhaseDDB()
	r.mu.Unlock()
}

func (r *recorder) end() *phaseDDB {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.cur
	r.cur = nil
	return p
}

func (r *recorder) serve(w http.ResponseWriter, req *http.Request) {
	op := strings.TrimPrefix(req.Header.Get("X-Amz-Target"), "DynamoDB_20120810.")
	body, err := io.ReadAll(io.LimitReader(req.Body, bodyBytesMax))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	req.ContentLength = int64(len(body))
	// Parse only while recording: funding and warm-up pass untouched.
	r.mu.Lock()
	recording := r.cur != nil
	r.mu.Unlock()
	label, keys := op, []writtenKey(nil)
	if recording {
		label, keys = parseRequest(op, body, r.gsi)
	}
	r.mu.Lock()
	if p := r.cur; p != nil {
		p.roundTrips[label]++
		sec := int(time.Since(p.start) / time.Second)
		for _, k := range keys {
			kw := p.keys[k.key]
			if kw == nil {
				kw = &keyWrites{index: k.index, perSec: map[int]int64{}}
				p.keys[k.key] = kw
			}
			kw.total++
			kw.perSec[sec]++
		}
	}
	r.mu.Unlock()
	req.Header.Set("X-Sebelas-Op", label)
	r.proxy.ServeHTTP(w, req)
}

// onResponse reads the capacity DynamoDB reports and counts errors.
func (r *recorder) onResponse(resp *http.Response) error {
	op := resp.Request.Header.Get("X-Sebelas-Op")
	body, err := io.ReadAll(io.LimitReader(resp.Body, bodyBytesMax))
	resp.Body.Close()
	if err != nil {
		return err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.cur
	if p == nil {
		return nil
	}
	if resp.StatusCode/100 != 2 {
		p.errors[op]++
		return nil
	}
	t, i := consumed(body)
	p.tableCU[op] += t
	p.indexCU[op] += i
	return nil
}

// writtenKey is one item write: its partition key, in the table or in the
// index.
type writtenKey struct {
	key   string
	index bool
}

// attr is a DynamoDB JSON attribute value; only strings matter for keys.
type attr struct {
	S *string `json:"S"`
}

type writeSpec struct {
	Item map[string]attr `json:"Item"`
	Key  map[string]attr `json:"Key"`
}

// request is the part of any DynamoDB request body the recorder reads, in
// one pass: single-item operations, transactions and batches.
type request struct {
	writeSpec
	IndexName     *string `json:"IndexName"`
	TransactItems []struct {
		Put            *writeSpec `json:"Put"`
		Update         *writeSpec `json:"Update"`
		Delete         *writeSpec `json:"Delete"`
		ConditionCheck *writeSpec `json:"ConditionCheck"`
	} `json:"TransactItems"`
	RequestItems map[string][]struct {
		PutRequest    *writeSpec `json:"PutRequest"`
		DeleteRequest *writeSpec `json:"DeleteRequest"`
	} `json:"RequestItems"`
}

// parseRequest names a request by its operation and the class of the first
// key it touches ("TransactWriteItems (charge item)", "UpdateItem (velocity
// counter)": the functions' operations told apart without knowing which
// function sent them), and returns the partition keys it writes: items put
// (and their index key, when they carry one), updated and deleted. Reads and
// condition checks write nothing.
func parseRequest(op string, body []byte, gsiAttr string) (string, []writtenKey) {
	var in request
	if json.Unmarshal(body, &in) != nil {
		return op, nil
	}
	var first map[string]attr
	var writes []writeSpec
	switch op {
	case "PutItem", "UpdateItem", "DeleteItem":
		writes = append(writes, in.writeSpec)
	case "TransactWriteItems":
		for _, t := range in.TransactItems {
			for _, w := range []*writeSpec{t.Put, t.Update, t.Delete} {
				if w != nil {
					writes = append(writes, *w)
				}
			}
			if first == nil {
				for _, w := range []*writeSpec{t.Put, t.Update, t.Delete, t.ConditionCheck} {
					if w != nil && first == nil {
						first = w.Item
						if first == nil {
							first = w.Key
						}
					}
				}
			}
		}
	case "BatchWriteItem":
		for _, reqs := range in.RequestItems {
			for _, q := range reqs {
				for _, w := range []*writeSpec{q.PutRequest, q.DeleteRequest} {
					if w != nil {
						writes = append(writes, *w)
					}
				}
			}
		}
	}
	if first == nil {
		first = in.Key
	}
	if first == nil {
		first = in.Item
	}
	label := op
	if pk, ok := first["pk"]; ok && pk.S != nil {
		label = op + " (" + keyClass(*pk.S, false) + ")"
	} else if in.IndexName != nil {
		label = op + " (index " + *in.IndexName + ")"
	}
	var out []writtenKey
	for _, w := range writes {
		src := w.Item
		if src == nil {
			src = w.Key
		}
		if pk, ok := src["pk"]; ok && pk.S != nil {
			out = append(out, writtenKey{key: *pk.S})
		}
		if g, ok := w.Item[gsiAttr]; ok && g.S != nil {
			out = append(out, writtenKey{key: *g.S, index: true})
		}
	}
	return label, out
}

// consumed sums the table and index capacity of an answer's
// ConsumedCapacity (an object for single-item operations, a list for
// transactions and batches). With ReturnConsumedCapacity=TOTAL only the
// total is known; it is counted as the table's.
func consumed(body []byte) (tableCU, indexCU float64) {
	type cc struct {
		CapacityUnits *float64 `json:"CapacityUnits"`
		Table         *struct {
			CapacityUnits float64 `json:"CapacityUnits"`
		} `json:"Table"`
		GlobalSecondaryIndexes map[string]struct {
			CapacityUnits float64 `json:"CapacityUnits"`
		} `json:"GlobalSecondaryIndexes"`
	}
	var out struct {
		ConsumedCapacity json.RawMessage `json:"ConsumedCapacity"`
	}
	if json.Unmarshal(body, &out) != nil || len(out.ConsumedCapacity) == 0 {
		return 0, 0
	}
	var list []cc
	if out.ConsumedCapacity[0] == '[' {
		if json.Unmarshal(out.ConsumedCapacity, &list) != nil {
			return 0, 0
		}
	} else {
		var one cc
		if json.Unmarshal(out.ConsumedCapacity, &one) != nil {
			return 0, 0
		}
		list = []cc{one}
	}
	for _, c := range list {
		idx := 0.0
		for _, g := range c.GlobalSecondaryIndexes {
			idx += g.CapacityUnits
		}
		switch {
		case c.Table != nil:
			tableCU += c.Table.CapacityUnits
		case c.CapacityUnits != nil:
			tableCU += *c.CapacityUnits - idx
		}
		indexCU += idx
	}
	return tableCU, indexCU
}

// ops returns the operation names seen, sorted.
func (p *phaseDDB) ops() []string {
	var out []string
	for op := range p.roundTrips {
		out = append(out, op)
	}
	sort.Strings(out)
	return out
}
