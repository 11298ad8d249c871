package chaos

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/sebelas/sebelas/events"
	"github.com/sebelas/sebelas/internal/devtools/stack"
	"github.com/sebelas/sebelas/internal/ingress"
	"github.com/sebelas/sebelas/internal/market"
	"github.com/sebelas/sebelas/internal/money"
)

// Limits of the marketplace client the workload plays.
const (
	// clientAttemptsMax bounds how often one request is signed and sent
	// again after a 429/5xx or a cut connection: enough to outlast a
	// DynamoDB Local restart (a few seconds) at clientBackoffMsMax.
	clientAttemptsMax  = 60
	clientBackoffMsMin = 20
	clientBackoffMsMax = 1_000
	clientTimeoutMs    = 15_000
)

// marketplace is one marketplace the workload plays: two active keys (the
// client alternates, as during a rotation) and the merchants it serves.
type marketplace struct {
	id        string
	keys      [2][]byte
	merchants []string
}

func newMarketplace(id string, merchants []string) *marketplace {
	m := &marketplace{id: id, merchants: merchants}
	for i := range m.keys {
		m.keys[i] = randomKey()
	}
	return m
}

// randomKey is a fresh secret per run: nothing secret is in the repository,
// nothing is reused.
func randomKey() []byte {
	k := make([]byte, 32)
	if _, err := crand.Read(k); err != nil {
		panic(err)
	}
	return k
}

func keysText(mps []*marketplace) string {
	var b strings.Builder
	for _, m := range mps {
		for i, k := range m.keys {
			fmt.Fprintf(&b, "%s k%d %s\n", m.id, i+1, base64.StdEncoding.EncodeToString(k))
		}
	}
	return b.String()
}

func merchantsText(mps []*marketplace) string {
	var b strings.Builder
	for _, m := range mps {
		fmt.Fprintf(&b, "%s %s\n", m.id, strings.Join(m.merchants, " "))
	}
	return b.String()
}

// wallet is a funded payer.
type wallet struct {
	id     string
	cur    money.Currency
	funded int64
	frozen bool
}

// request is one thing a marketplace (or an attacker) sends to the ingress.
type request struct {
	kind      string // see kinds below
	mp        *marketplace
	eventType string
	body      []byte
	chargeID  string // the charge it creates or refunds
	refundID  string
	secret    []byte        // attacks: the key used; nil = the marketplace's
	skew      time.Duration // attacks: timestamp offset
	signAs    string        // attacks: marketplace header; "" = mp.id
}

// Request kinds.
const (
	kindCharge   = "charge"
	kindResend   = "charge resent by the marketplace"
	kindConflict = "charge id reused with another amount"
	kindRefund   = "refund"
	kindRefundRe = "refund resent by the marketplace"

	attackForged         = "attack: forged signature"
	attackStale          = "attack: stale timestamp"
	attackFuture         = "attack: future timestamp"
	attackOtherMerchant  = "attack: merchant of another marketplace"
	attackOtherMarket    = "attack: payload names another marketplace"
	attackScreened       = "attack: charge.screened from outside"
	attackUnknownMarket  = "attack: unknown marketplace"
	attackReplay         = "attack: exact replay of an accepted request"
	insiderScreened      = "insider: unsigned charge.screened straight onto the Broker"
	insiderMalformed     = "insider: malformed event straight onto the Broker"
	insiderReviewed      = "insider: unsigned charge.reviewed approving a charge the reviewer rejects"
	insiderTopupReviewed = "insider: unsigned topup.reviewed approving a top-up the reviewer rejects"
	attackTimestampSkewS = 600
)

var attackKinds = []string{attackForged, attackStale, attackFuture, attackOtherMerchant, attackOtherMarket, attackScreened, attackUnknownMarket}

// answer is what the ingress finally said to one request.
type answer struct {
	status   int    // last HTTP status; 0 if no answer at all
	reason   string // the "error" of a 4xx
	attempts int
	raw      *rawRequest // the accepted request as sent (for replays)
}

func (a answer) accepted() bool { return a.status == http.StatusAccepted }

type rawRequest struct {
	header http.Header
	body   []byte
}

// client is a marketplace's HTTP client.
type client struct {
	url   string
	hc    *http.Client
	rng   *rand.Rand
	mu    sync.Mutex
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) error
}

func (c *client) jitter(n int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rng.IntN(n)
}

// send signs and posts r, signing again and retrying on 429, 5xx and cut
// connections (a marketplace's retry is a new request with a new timestamp;
// the business id makes it the same charge).
func (c *client) send(ctx context.Context, r request, keyIndex int) answer {
	var a answer
	backoff := clientBackoffMsMin
	for a.attempts < clientAttemptsMax {
		a.attempts++
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url+"/v1/events", bytes.NewReader(r.body))
		if err != nil {
			return a
		}
		secret := r.secret
		if secret == nil {
			secret = r.mp.keys[keyIndex%2]
		}
		as := r.signAs
		if as == "" {
			as = r.mp.id
		}
		ingress.SignRequest(req, secret, as, r.eventType, c.now().Add(r.skew), r.body)
		raw := &rawRequest{header: req.Header.Clone(), body: r.body}
		status, reason, err := c.post(req)
		a.status, a.reason = status, reason
		if err == nil && status != http.StatusTooManyRequests && status < 500 {
			if status == http.StatusAccepted {
				a.raw = raw
			}
			return a
		}
		if ctx.Err() != nil {
			return a
		}
		wait := time.Duration(backoff/2+c.jitter(backoff/2+1)) * time.Millisecond
		backoff = min(backoff*2, clientBackoffMsMax)
		if err := c.sleep(ctx, wait); err != nil {
			return a
		}
	}
	return a
}

// resend posts a captured request as it was: a replay.
func (c *client) resend(ctx context.Context, raw *rawRequest) answer {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url+"/v1/events", bytes.NewReader(raw.body))
	if err != nil {
		return answer{}
	}
	req.Header = raw.header.Clone()
	status, reason, _ := c.post(req)
	return answer{status: status, reason: reason, attempts: 1}
}

func (c *client) post(req *http.Request) (int, string, error) {
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var out struct {
		Error string `json:"error"`
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 8<<10))
	_ = json.Unmarshal(body, &out)
	return resp.StatusCode, out.Error, nil
}

// plan is the seeded workload.
type plan struct {
	wallets  []*wallet
	mps      []*marketplace
	stranger *marketplace // not configured at the ingress
	requests []request    // phase 1: charges, resends, conflicts, attacks
	charges  map[string]*chargePlan
}

// chargePlan is what the workload asked for one charge id.
type chargePlan struct {
	id       string
	mp       *marketplace
	merchant string
	payer    *wallet
	amount   int64
	attack   string // non-empty: must never exist
}

func newPlan(o Options) *plan {
	rng := rand.New(rand.NewPCG(o.Seed, 0xc4a05))
	p := &plan{charges: map[string]*chargePlan{}}
	p.mps = []*marketplace{
		newMarketplace("mp-alpha", []string{"m-alpha-*", "m-flagship"}),
		newMarketplace("mp-beta", []string{"m-beta-*"}),
	}
	p.stranger = newMarketplace("mp-stranger", []string{"m-stranger-*"})
	merchantsOf := map[*marketplace][]string{
		p.mps[0]: {"m-alpha-1", "m-alpha-2", "m-flagship"},
		p.mps[1]: {"m-beta-1", "m-beta-2"},
	}
	run := fmt.Sprintf("%d", o.Seed)
	for _, m := range market.All() {
		for i := range o.WalletsPerCurrency {
			w := &wallet{id: fmt.Sprintf("w-chaos-%s-%s-%d", run, strings.ToLower(m.Code), i),
				cur: m.Currency, funded: stack.DemoFunding(m.Currency).Minor}
			// One wallet (the last rupiah one) is frozen: its charges must
			// all be declined whatever else happens.
			w.frozen = m.Currency == money.IDR && i == o.WalletsPerCurrency-1 && o.WalletsPerCurrency > 1
			p.wallets = append(p.wallets, w)
		}
	}
	body := func(c *chargePlan, amount int64, marketplaceID string) []byte {
		b, err := json.Marshal(events.ChargeRequested{
			ChargeID: c.id, Marketplace: marketplaceID, MerchantID: c.merchant, PayerWallet: c.payer.id,
			Amount: amount, Currency: string(c.payer.cur), DeviceID: "dev-" + c.payer.id,
			Description: "11.11 chaos", RequestedAt: time.Now().UTC().Truncate(time.Second),
		})
		if err != nil {
			panic(err)
		}
		return b
	}
	var resends []request
	for i := range o.Charges {
		w := p.wallets[rng.IntN(len(p.wallets))]
		mp := p.mps[rng.IntN(len(p.mps))]
		ms := merchantsOf[mp]
		c := &chargePlan{id: fmt.Sprintf("cx-%s-%05d", run, i), mp: mp, merchant: ms[rng.IntN(len(ms))], payer: w}
		// 1% to 10% of the seed balance: the busiest payers run dry.
		c.amount = max(1, w.funded/100+rng.Int64N(w.funded*9/100+1))
		p.charges[c.id] = c
		r := request{kind: kindCharge, mp: mp, eventType: events.TypeChargeRequested, body: body(c, c.amount, mp.id), chargeID: c.id}
		p.requests = append(p.requests, r)
		switch x := rng.Float64(); {
		case x < o.ResendProb:
			rr := r
			rr.kind = kindResend
			resends = append(resends, rr)
		case x < o.ResendProb+o.ConflictProb:
			rc := r
			rc.kind, rc.body = kindConflict, body(c, c.amount+1, mp.id)
			resends = append(resends, rc)
		}
		if rng.Float64() < o.AttackProb {
			p.requests = append(p.requests, p.attack(rng, attackKinds[rng.IntN(len(attackKinds))], run, i, merchantsOf, body))
		}
	}
	// Resends and reuses come after their originals, interleaved with the
	// rest; the order of everything else is shuffled a little, as many
	// marketplace servers sending at once would.
	for _, r := range resends {
		at := len(p.requests)/2 + rng.IntN(len(p.requests)/2+1)
		p.requests = append(p.requests[:at], append([]request{r}, p.requests[at:]...)...)
	}
	return p
}

// attack builds one request that must be refused at the ingress; its charge
// id is fresh, its payer a funded wallet: if it got through, money would
// move.
func (p *plan) attack(rng *rand.Rand, kind, run string, i int, merchantsOf map[*marketplace][]string,
	body func(*chargePlan, int64, string) []byte) request {
	w := p.wallets[rng.IntN(len(p.wallets))]
	mp := p.mps[rng.IntN(len(p.mps))]
	other := p.mps[0]
	if other == mp {
		other = p.mps[1]
	}
	c := &chargePlan{id: fmt.Sprintf("cx-%s-atk-%05d", run, i), mp: mp, merchant: merchantsOf[mp][0], payer: w,
		amount: max(1, w.funded/10), attack: kind}
	r := request{kind: kind, mp: mp, eventType: events.TypeChargeRequested, chargeID: c.id}
	switch kind {
	case attackForged:
		r.secret = randomKey()
	case attackStale:
		r.skew = -attackTimestampSkewS * time.Second
	case attackFuture:
		r.skew = attackTimestampSkewS * time.Second
	case attackOtherMerchant:
		c.merchant = merchantsOf[other][0]
	case attackOtherMarket:
		// Signed by mp, claiming to be the other marketplace.
	case attackScreened:
		r.eventType = events.TypeChargeScreened
	case attackUnknownMarket:
		r.mp, r.signAs = p.stranger, p.stranger.id
	}
	p.charges[c.id] = c
	claimed := mp.id
	if kind == attackOtherMarket {
		claimed = other.id
	}
	if kind == attackUnknownMarket {
		claimed = p.stranger.id
	}
	r.body = body(c, c.amount, claimed)
	if kind == attackScreened {
		var req events.ChargeRequested
		_ = json.Unmarshal(r.body, &req)
		b, err := json.Marshal(events.ChargeScreened{Charge: req, Screening: events.Screening{
			Score: 0, Decision: events.DecisionAllow, Reasons: []string{}, RulesVersion: "forged"}})
		if err != nil {
			panic(err)
		}
		r.body = b
	}
	return r
}

// refundRequest builds a refund of part (or all, or more than all) of a
// succeeded charge.
func refundRequest(c *chargePlan, refundID string, amount int64) request {
	b, err := json.Marshal(events.RefundRequested{
		RefundID: refundID, ChargeID: c.id, Marketplace: c.mp.id, Amount: amount,
		Currency: string(c.payer.cur), Reason: "chaos: item not as described", RequestedAt: time.Now().UTC().Truncate(time.Second),
	})
	if err != nil {
		panic(err)
	}
	return request{kind: kindRefund, mp: c.mp, eventType: events.TypeRefundRequested, body: b, chargeID: c.id, refundID: refundID}
}
