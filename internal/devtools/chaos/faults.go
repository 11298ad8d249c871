package chaos

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/sebelas/sebelas/internal/function"
)

// Fault kinds, as counted and printed.
const (
	FaultDuplicate        = "delivery: duplicate (late, out of order)"
	FaultReplyLost        = "delivery: reply lost after the function answered"
	FaultCrashAfterCommit = "function: killed after its DynamoDB write, before the reply"
	FaultCrashRandom      = "function: killed at a random moment"
	FaultDBThrottle       = "dynamodb: ProvisionedThroughputExceeded (request not applied)"
	FaultDB500Before      = "dynamodb: 500 InternalServerError (request not applied)"
	FaultDB500After       = "dynamodb: 500 after the request was applied"
	FaultDBRestart        = "dynamodb: DynamoDB Local stopped and restarted"
	FaultDBUnreachable    = "dynamodb: request while DynamoDB Local was down"
	FaultRestartFailed    = "function: restart failed (retried)"
	FaultOperatorPending  = "operator: no verdict in time (topup.pending replies: timeouts, lost or pending answers)"
	FaultOperatorDown     = "operator: flapping operators taken down"
)

// counters counts faults by kind; the zero value is ready.
type counters struct {
	m sync.Map // kind -> *atomic.Int64
}

func (c *counters) add(kind string) {
	v, _ := c.m.LoadOrStore(kind, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
}

func (c *counters) snapshot() map[string]int64 {
	out := map[string]int64{}
	c.m.Range(func(k, v any) bool {
		out[k.(string)] = v.(*atomic.Int64).Load()
		return true
	})
	return out
}

// dice is the run's seeded random source, shared by the goroutines that
// inject faults. The seed fixes the workload and every fault probability;
// which request meets which fault still depends on the interleaving of
// goroutines, as it would on a cluster.
type dice struct {
	mu  sync.Mutex
	rng *rand.Rand
}

func newDice(seed uint64, stream uint64) *dice {
	return &dice{rng: rand.New(rand.NewPCG(seed, stream))}
}

func (d *dice) roll(p float64) bool {
	if p <= 0 {
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.rng.Float64() < p
}

func (d *dice) intN(n int) int {
	if n <= 0 {
		return 0
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.rng.IntN(n)
}

// ---------------------------------------------------------------------------
// Between the functions and DynamoDB: a fault-injecting HTTP proxy.

// dynamoError is a DynamoDB JSON error answer.
func dynamoError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"__type":"com.amazonaws.dynamodb.v20120810#%s","message":%q}`, typ, msg)
}

type afterKey struct{}

// dbProxy stands between every DynamoDB client of the run and DynamoDB
// Local. While on, it answers a share of requests itself with throttling or
// a 500 (the request never reaches the table), lets a share through and
// then replaces the answer by a 500 (the write happened, the client cannot
// know), and cuts the connection when DynamoDB Local is down.
type dbProxy struct {
	on       atomic.Bool
	backend  atomic.Pointer[url.URL]
	throttle float64
	before   float64
	after    float64
	dice     *dice
	faults   *counters
	rp       *httputil.ReverseProxy
	srv      *http.Server
	URL      string
}

func newDBProxy(backend string, o Options, d *dice, faults *counters) (*dbProxy, error) {
	p := &dbProxy{throttle: o.DBThrottleProb, before: o.DB500BeforeProb, after: o.DB500AfterProb, dice: d, faults: faults}
	if err := p.setBackend(backend); err != nil {
		return nil, err
	}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(p.backend.Load())
			pr.Out.Host = pr.In.Host
		},
		Transport: &http.Transport{MaxIdleConnsPerHost: 256, IdleConnTimeout: 30 * time.Second,
			DialContext: (&net.Dialer{Timeout: time.Second}).DialContext},
		ModifyResponse: func(resp *http.Response) error {
			if resp.Request.Context().Value(afterKey{}) == nil || resp.StatusCode != http.StatusOK {
				return nil
			}
			// The table applied the request; the client gets a 500.
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			body := `{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"chaos: answer lost after the write"}`
			resp.StatusCode = http.StatusInternalServerError
			resp.Status = "500 Internal Server Error"
			resp.Body = io.NopCloser(bytes.NewReader([]byte(body)))
			resp.ContentLength = int64(len(body))
			resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
			resp.Header.Del("X-Amz-Crc32")
			p.faults.add(FaultDB500After)
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			// DynamoDB Local is down (or restarting): the client sees its
			// connection cut, as with a store that went away.
			p.faults.add(FaultDBUnreachable)
			hj, ok := w.(http.Hijacker)
			if !ok {
				w.WriteHeader(http.StatusBadGateway)
				return
			}
			conn, _, herr := hj.Hijack()
			if herr == nil {
				conn.Close()
			}
		},
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p.URL = "http://" + ln.Addr().String()
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = p.srv.Serve(ln) }()
	return p, nil
}

func (p *dbProxy) setBackend(endpoint string) error {
	u, err := url.Parse(endpoint)
	if err != nil {
		return err
	}
	p.backend.Store(u)
	return nil
}

func (p *dbProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p.on.Load() {
		switch {
		case p.dice.roll(p.throttle):
			_, _ = io.Copy(io.Discard, r.Body)
			p.faults.add(FaultDBThrottle)
			dynamoError(w, http.StatusBadRequest, "ProvisionedThroughputExceededException", "chaos: throughput exceeded")
			return
		case p.dice.roll(p.before):
			_, _ = io.Copy(io.Discard, r.Body)
			p.faults.add(FaultDB500Before)
			dynamoError(w, http.StatusInternalServerError, "InternalServerError", "chaos: internal error")
			return
		case p.dice.roll(p.after):
			r = r.WithContext(context.WithValue(r.Context(), afterKey{}, true))
		}
	}
	p.rp.ServeHTTP(w, r)
}

func (p *dbProxy) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = p.srv.Shutdown(ctx)
}

// ---------------------------------------------------------------------------
// Between the Broker and the functions: duplicates, late and out of order,
// and replies lost on the way back.

// deliveries is the local Broker's HTTP transport. After a delivery, it may
// put copies of the same event back on the Broker after a random delay, so
// the event is delivered twice or more, late and out of order with the
// events after it; or it may drop the function's answer, so the Broker
// retries an event the function has already handled.
type deliveries struct {
	base      http.RoundTripper
	dupProb   float64
	dupMax    int
	lateMaxMs int
	lostProb  float64
	dice      *dice
	faults    *counters
	log       *slog.Logger

	publish atomic.Pointer[func(context.Context, cloudevents.Event) error]
	on      atomic.Bool
	ctx     context.Context // copies are abandoned when it ends

	copiesMu sync.Mutex
	copies   map[string]int // event source|id -> copies made
	pending  atomic.Int64
	idleMu   sync.Mutex
	idle     *sync.Cond
}

func newDeliveries(ctx context.Context, o Options, d *dice, faults *counters, log *slog.Logger) *deliveries {
	dl := &deliveries{
		base: &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second}, dupProb: o.DupProb, dupMax: o.DupMax,
		lateMaxMs: o.LateMaxMs, lostProb: o.ReplyLostProb, dice: d, faults: faults, log: log, ctx: ctx,
		copies: map[string]int{},
	}
	dl.idle = sync.NewCond(&dl.idleMu)
	return dl
}

func (d *deliveries) RoundTrip(req *http.Request) (*http.Response, error) {
	if !d.on.Load() || req.Body == nil {
		return d.base.RoundTrip(req)
	}
	body, err := io.ReadAll(req.Body)
	req.Body.Close()
	if err != nil {
		return nil, err
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	header := req.Header.Clone()
	resp, err := d.base.RoundTrip(req)
	if err != nil || resp.StatusCode < 200 || resp.StatusCode >= 300 {
		return resp, err
	}
	if resp.Header.Get("Ce-Type") == "dev.sebelas.topup.pending" {
		d.faults.add(FaultOperatorPending)
	}
	if d.dice.roll(d.dupProb) {
		d.duplicate(header, body)
	}
	if d.dice.roll(d.lostProb) {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		d.faults.add(FaultReplyLost)
		return nil, errors.New("chaos: the reply was lost on the way back")
	}
	return resp, nil
}

// duplicate schedules copies of the delivered event. Dead letters are not
// copied (the sink is idempotent, and a copy would re-route the original
// event); each event gets at most dupMax copies in all.
func (d *deliveries) duplicate(header http.Header, body []byte) {
	ev, err := binding.ToEvent(context.Background(), cehttp.NewMessage(header, io.NopCloser(bytes.NewReader(body))))
	if err != nil {
		return
	}
	if _, dead := ev.Extensions()["knativeerrorcode"]; dead {
		return
	}
	key := ev.Source() + "|" + ev.ID()
	n := 1 + d.dice.intN(d.dupMax)
	d.copiesMu.Lock()
	n = min(n, d.dupMax-d.copies[key])
	d.copies[key] += n
	d.copiesMu.Unlock()
	publish := d.publish.Load()
	if publish == nil {
		return
	}
	for range n {
		delay := time.Duration(d.dice.intN(d.lateMaxMs+1)) * time.Millisecond
		d.pending.Add(1)
		d.faults.add(FaultDuplicate)
		cp := ev.Clone()
		go func() {
			defer d.done()
			select {
			case <-time.After(delay):
			case <-d.ctx.Done():
				return
			}
			if err := (*publish)(d.ctx, cp); err != nil {
				d.log.Warn("chaos: duplicate not published", "type", cp.Type(), "err", err)
			}
		}()
	}
}

func (d *deliveries) done() {
	if d.pending.Add(-1) == 0 {
		d.idleMu.Lock()
		d.idle.Broadcast()
		d.idleMu.Unlock()
	}
}

// waitCopies waits until no copy is waiting to be published.
func (d *deliveries) waitCopies(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() {
		d.idleMu.Lock()
		d.idle.Broadcast()
		d.idleMu.Unlock()
	})
	defer stop()
	d.idleMu.Lock()
	defer d.idleMu.Unlock()
	for d.pending.Load() > 0 {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		d.idle.Wait()
	}
	return nil
}

// ---------------------------------------------------------------------------
// Functions killed and restarted.
//
// Each CloudEvents function runs in-process under crasher.run (the stack's
// Run hook). A kill closes the function's listener and every open
// connection at once and cancels the context of every request in flight,
// so a handler is cut wherever it is: before its DynamoDB call, while the
// call is on the wire (DynamoDB may or may not apply it), or after it; its
// reply is lost. After a short down time the function is built again from
// its Builder (a new DynamoDB client, nothing kept from before, as a new
// process) and listens on the same port. What differs from SIGKILL of a
// process is only that goroutines of the dead instance that ignore their
// context may finish their current step; the handlers here all pass the
// request context to every DynamoDB call.

type crasher struct {
	afterCommitProb float64
	downMs          int
	dice            *dice
	faults          *counters
	victims         map[string]bool

	onError func(error) // a failed restart; nil ignores

	mu       sync.Mutex
	procs    map[string]*proc
	down     time.Duration
	restarts int
	on       atomic.Bool
}

type proc struct {
	name   string
	addr   string
	mu     sync.Mutex
	killed chan struct{} // closed by kill
	hs     *http.Server
	cancel context.CancelFunc
	kills  int
}

func newCrasher(o Options, d *dice, faults *counters, victims []string) *crasher {
	c := &crasher{afterCommitProb: o.CrashAfterCommitProb, downMs: o.CrashDownMs, dice: d, faults: faults,
		victims: map[string]bool{}, procs: map[string]*proc{}}
	for _, v := range victims {
		c.victims[v] = true
	}
	return c
}

// run is a stack.RunFunc.
func (c *crasher) run(ctx context.Context, name string, getenv func(string) string, build function.Builder, log *slog.Logger, ready func(string)) error {
	if !c.victims[name] {
		return function.RunWithLogger(ctx, name, getenv, build, log, ready)
	}
	p := &proc{name: name}
	c.mu.Lock()
	c.procs[name] = p
	c.mu.Unlock()
	addr := "127.0.0.1:0"
	var killedAt time.Time
	for first := true; ; {
		err := c.startOnce(ctx, p, addr, getenv, build, log)
		if err != nil {
			if first {
				return err
			}
			// A restart that fails is retried: a crash-looping pod is
			// restarted by the kubelet too. It is reported, not hidden.
			c.faults.add(FaultRestartFailed)
			if c.onError != nil {
				c.onError(fmt.Errorf("restart %s: %w", name, err))
			}
			if sleepCtx(ctx, time.Duration(c.downMs)*time.Millisecond) != nil {
				return nil
			}
			continue
		}
		if first {
			addr = p.addr
			ready(addr)
			first = false
		} else {
			c.addDown(time.Since(killedAt))
		}
		select {
		case <-ctx.Done():
			p.stop()
			return nil
		case <-p.killedCh():
			killedAt = time.Now()
		}
		if sleepCtx(ctx, time.Duration(c.downMs)*time.Millisecond) != nil {
			return nil
		}
	}
}

// startOnce builds the function afresh and serves it on addr.
func (c *crasher) startOnce(ctx context.Context, p *proc, addr string, getenv func(string) string, build function.Builder, log *slog.Logger) error {
	// Listen first: while the function builds, connections wait in the
	// backlog, as Knative's queue-proxy holds requests for a starting pod.
	ln, err := listen(ctx, addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	instCtx, cancel := context.WithCancel(ctx)
	h, err := build(instCtx, getenv, log)
	if err != nil {
		cancel()
		ln.Close()
		return fmt.Errorf("build %s: %w", p.name, err)
	}
	srv, err := function.NewServer(instCtx, p.name, h, log)
	if err != nil {
		cancel()
		ln.Close()
		return err
	}
	p.start(ln, c.wrap(p, srv), instCtx, cancel)
	return nil
}

func (c *crasher) addDown(d time.Duration) {
	c.mu.Lock()
	c.down += d
	c.restarts++
	c.mu.Unlock()
}

// downtime is how long the victims were down in all, and how many times
// they came back.
func (c *crasher) downtime() (time.Duration, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.down, c.restarts
}

// listen binds addr, waiting out a port still held by the dead instance.
func listen(ctx context.Context, addr string) (net.Listener, error) {
	var err error
	for range 100 {
		var ln net.Listener
		if ln, err = net.Listen("tcp", addr); err == nil {
			return ln, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil, err
}

func (p *proc) start(ln net.Listener, h http.Handler, instCtx context.Context, cancel context.CancelFunc) {
	hs := function.HTTPServer(h)
	// Every request's context derives from the instance: a kill cancels
	// them all, as the death of the process would.
	hs.BaseContext = func(net.Listener) context.Context { return instCtx }
	p.mu.Lock()
	p.hs, p.cancel, p.killed, p.addr = hs, cancel, make(chan struct{}), ln.Addr().String()
	p.mu.Unlock()
	go func() { _ = hs.Serve(ln) }()
}

func (p *proc) killedCh() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.killed
}

// kill cuts the instance now. It reports false if it was already dead.
func (p *proc) kill() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.hs == nil {
		return false // not started yet
	}
	select {
	case <-p.killed:
		return false
	default:
	}
	p.cancel()
	_ = p.hs.Close()
	close(p.killed)
	p.kills++
	return true
}

func (p *proc) stop() {
	p.mu.Lock()
	hs, cancel := p.hs, p.cancel
	p.mu.Unlock()
	if hs == nil {
		return
	}
	ctx, done := context.WithTimeout(context.Background(), 5*time.Second)
	defer done()
	_ = hs.Shutdown(ctx)
	cancel()
}

// wrap kills the instance, with probability afterCommitProb, right after a
// handler finished with success, before a byte of its reply is written: the
// DynamoDB write is done, the Broker never hears so.
func (c *crasher) wrap(p *proc, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || !c.on.Load() || !c.dice.roll(c.afterCommitProb) {
			next.ServeHTTP(w, r)
			return
		}
		rec := &bufferedResponse{header: http.Header{}}
		next.ServeHTTP(rec, r)
		if rec.status >= 200 && rec.status < 300 && p.kill() {
			c.faults.add(FaultCrashAfterCommit)
			panic(http.ErrAbortHandler) // net/http drops the connection, nothing is sent
		}
		rec.copyTo(w)
	})
}

// killRandom kills one victim now, wherever its handlers are.
func (c *crasher) killRandom() {
	c.mu.Lock()
	names := make([]string, 0, len(c.procs))
	for n := range c.procs {
		names = append(names, n)
	}
	c.mu.Unlock()
	if len(names) == 0 {
		return
	}
	sort.Strings(names)
	p := c.procs[names[c.dice.intN(len(names))]]
	if p.kill() {
		c.faults.add(FaultCrashRandom)
	}
}

// bufferedResponse holds a handler's answer until it may be sent.
type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedResponse) Header() http.Header { return b.header }
func (b *bufferedResponse) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.body.Write(p)
}
func (b *bufferedResponse) WriteHeader(status int) {
	if b.status == 0 {
		b.status = status
	}
}

func (b *bufferedResponse) copyTo(w http.ResponseWriter) {
	for k, v := range b.header {
		w.Header()[k] = v
	}
	if b.status == 0 {
		b.status = http.StatusOK
	}
	w.WriteHeader(b.status)
	_, _ = w.Write(b.body.Bytes())
}

// readMetrics reads Prometheus text counters of one name from url.
func readMetrics(ctx context.Context, u, name string) (map[string]int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]int64{}
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 1<<20))
	prefix := name + `{outcome="`
	for sc.Scan() {
		line := sc.Text()
		if !bytes.HasPrefix([]byte(line), []byte(prefix)) {
			continue
		}
		rest := line[len(prefix):]
		end := bytes.IndexByte([]byte(rest), '"')
		if end < 0 {
			continue
		}
		label := rest[:end]
		var n int64
		if _, err := fmt.Sscanf(rest[end:], "\"} %d", &n); err == nil {
			out[label] = n
		}
	}
	return out, sc.Err()
}
