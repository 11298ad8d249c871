package topup_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	cloudevents "github.com/cloudevents/sdk-go/v2"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/sebelas/sebelas/events"
	"github.com/sebelas/sebelas/internal/audit"
	"github.com/sebelas/sebelas/internal/devtools/ddbtest"
	"github.com/sebelas/sebelas/internal/function"
	"github.com/sebelas/sebelas/internal/ledger"
	"github.com/sebelas/sebelas/internal/money"
	"github.com/sebelas/sebelas/internal/operator"
	"github.com/sebelas/sebelas/internal/signing"
	"github.com/sebelas/sebelas/internal/topup"
)

func TestMain(m *testing.M) { ddbtest.Main(m) }

// clock is the settable time of the handler, the simulator and the
// breakers, so tests move through timeouts, expiries and deadlines without
// waiting.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// collector is a Publisher that keeps what it is given; failures > 0 makes
// that many Publish calls fail first.
type collector struct {
	mu       sync.Mutex
	events   []cloudevents.Event
	failures int
}

func (c *collector) Publish(_ context.Context, ev cloudevents.Event) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failures > 0 {
		c.failures--
		return errors.New("sink down")
	}
	c.events = append(c.events, ev)
	return nil
}

func (c *collector) take() []cloudevents.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.events
	c.events = nil
	return out
}

type fixture struct {
	t      *testing.T
	db     *dynamodb.Client
	table  string
	clock  *clock
	ledger *ledger.Store
	store  *topup.Store
	sim    *operator.Simulator
	h      *topup.Handler
	url    string // the function's HTTP server
	pub    *collector
	keys   signing.DevKeys
}

type options struct {
	sim     operator.SimConfig
	config  topup.Config
	breaker operator.BreakerConfig
	simWrap func(http.Handler) http.Handler // around the simulator's server
	adapter func(operator.Adapter) operator.Adapter
}

// testConfig is DefaultConfig with a short operator timeout, so that a
// simulated slow operator times the call out quickly.
func testConfig() topup.Config {
	c := topup.DefaultConfig()
	c.OperatorTimeoutMs = 300
	return c
}

func newFixture(t *testing.T, o options) *fixture {
	t.Helper()
	if o.config == (topup.Config{}) {
		o.config = testConfig()
	}
	if o.breaker == (operator.BreakerConfig{}) {
		o.breaker = operator.BreakerConfig{Failures: operator.BreakerFailuresDefault, OpenMs: operator.BreakerOpenMsDefault}
	}
	c := &clock{t: time.Date(2026, 11, 10, 17, 0, 0, 0, time.UTC)} // 00:00 in Jakarta
	db, name := ddbtest.New(t)
	l := ledger.New(db, name, c.Now)
	sim, err := operator.NewSimulator(o.sim, c.Now)
	if err != nil {
		t.Fatal(err)
	}
	var simHandler http.Handler = sim
	if o.simWrap != nil {
		simHandler = o.simWrap(sim)
	}
	simSrv := httptest.NewServer(simHandler)
	t.Cleanup(simSrv.Close)
	adapter, err := operator.NewHTTP(simSrv.URL, "")
	if err != nil {
		t.Fatal(err)
	}
	var next operator.Adapter = adapter
	if o.adapter != nil {
		next = o.adapter(adapter)
	}
	breakers := operator.NewBreakers(o.breaker, c.Now)
	keys := signing.NewDevKeys()
	f := &fixture{t: t, db: db, table: name, clock: c, ledger: l, sim: sim, pub: &collector{}, keys: keys}
	f.store = topup.NewStore(db, name, l, c.Now)
	f.h = &topup.Handler{
		Store: f.store, Catalog: topup.DefaultCatalog(), Operator: operator.Guard(next, breakers), Breakers: breakers,
		Publisher: f.pub, Verifier: keys.Verifier(), Config: o.config, Now: c.Now,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	srv, err := function.NewServer(context.Background(), "topup", f.h.Handle, f.h.Log)
	if err != nil {
		t.Fatal(err)
	}
	fs := httptest.NewServer(srv)
	t.Cleanup(fs.Close)
	f.url = fs.URL
	return f
}

func (f *fixture) fund(wallet string, minor int64, cur money.Currency) {
	f.t.Helper()
	if _, err := f.ledger.CashIn(context.Background(), "fund-"+wallet+"-"+string(cur), wallet, money.Amount{Minor: minor, Currency: cur}, "test"); err != nil {
		f.t.Fatal(err)
	}
}

type bal struct{ Balance, Held int64 }

func (f *fixture) bal(wallet string, cur money.Currency) bal {
	f.t.Helper()
	b, ok, err := f.ledger.GetBalance(context.Background(), wallet, cur)
	if err != nil || !ok {
		f.t.Fatalf("GetBalance(%s): %v %v", wallet, ok, err)
	}
	return bal{b.Balance, b.Held}
}

func (f *fixture) record(topupID string) topup.Record {
	f.t.Helper()
	r, ok, err := f.store.Get(context.Background(), topupID)
	if err != nil || !ok {
		f.t.Fatalf("Get(%s): %v %v", topupID, ok, err)
	}
	return r
}

func topupReq(id, wallet, msisdn, product string, amount int64, cur string) events.TopupRequested {
	return events.TopupRequested{
		TopupID: id, PayerWallet: wallet, MSISDN: msisdn, ProductID: product, Amount: amount, Currency: cur,
		RequestedAt: time.Date(2026, 11, 11, 0, 0, 1, 0, time.FixedZone("WIB", 7*3600)),
	}
}

// screened builds fraud's signed topup.screened for req.
func (f *fixture) screened(req events.TopupRequested, decision, ceID string) cloudevents.Event {
	f.t.Helper()
	ev, err := events.NewEvent(events.TypeTopupScreened, "/sebelas/fraud",
		events.TopupScreened{Topup: req, Screening: events.Screening{Decision: decision, Reasons: []string{}}})
	if err != nil {
		f.t.Fatal(err)
	}
	ev.SetID(ceID)
	if err := f.keys.Sign(&ev, f.clock.Now()); err != nil {
		f.t.Fatal(err)
	}
	return ev
}

func (f *fixture) reviewed(topupID, decision, ceID string) cloudevents.Event {
	f.t.Helper()
	ev, err := events.NewEvent(events.TypeTopupReviewed, "/sebelas/review", events.TopupReviewed{
		TopupID: topupID, Decision: decision, Reviewer: "risk-ana", DecidedAt: f.clock.Now()})
	if err != nil {
		f.t.Fatal(err)
	}
	ev.SetID(ceID)
	if err := f.keys.Sign(&ev, f.clock.Now()); err != nil {
		f.t.Fatal(err)
	}
	return ev
}

// tick is the PingSource's minute tick as it reaches the function.
func (f *fixture) tick() cloudevents.Event {
	ev := cloudevents.NewEvent()
	ev.SetID(fmt.Sprintf("tick-%d", f.clock.Now().UnixNano()))
	ev.SetSource("/apis/v1/namespaces/sebelas/pingsources/topup-reconcile")
	ev.SetType(events.TypePing)
	ev.SetExtension(events.TickTypeExtension, events.TypeTopupReconcile)
	_ = ev.SetData(cloudevents.ApplicationJSON, map[string]any{})
	return ev
}

// post sends ev to the function over HTTP and returns the status code and
// the reply, if any.
func (f *fixture) post(ev cloudevents.Event) (int, *cloudevents.Event) {
	f.t.Helper()
	c, err := cloudevents.NewClientHTTP()
	if err != nil {
		f.t.Fatal(err)
	}
	ctx := cloudevents.ContextWithTarget(context.Background(), f.url)
	reply, res := c.Request(ctx, ev)
	var hr *cehttp.Result
	if !cloudevents.ResultAs(res, &hr) {
		f.t.Fatalf("post %s: %v", ev.Type(), res)
	}
	return hr.StatusCode, reply
}

// result posts ev, wants 200 and a reply of type want, and returns its
// payload and id.
func (f *fixture) result(ev cloudevents.Event, want string) (events.TopupResult, string) {
	f.t.Helper()
	status, reply := f.post(ev)
	if status != http.StatusOK || reply == nil {
		f.t.Fatalf("post %s: status %d reply %v, want 200 and %s", ev.ID(), status, reply, want)
	}
	if reply.Type() != want {
		var res events.TopupResult
		_ = events.Decode(*reply, &res)
		f.t.Fatalf("post %s: reply %s (reason %q), want %s", ev.ID(), reply.Type(), res.Reason, want)
	}
	var res events.TopupResult
	if err := events.Decode(*reply, &res); err != nil {
		f.t.Fatalf("reply does not validate: %v", err)
	}
	return res, reply.ID()
}

// reconcile runs one tick through the HTTP server and returns the events
// it published.
func (f *fixture) reconcile() []cloudevents.Event {
	f.t.Helper()
	status, reply := f.post(f.tick())
	if status != http.StatusOK || reply != nil {
		f.t.Fatalf("reconcile tick: status %d reply %v, want 200 and no reply", status, reply)
	}
	return f.pub.take()
}

func decodeResult(t *testing.T, ev cloudevents.Event) events.TopupResult {
	t.Helper()
	var res events.TopupResult
	if err := events.Decode(ev, &res); err != nil {
		t.Fatalf("%s does not validate: %v", ev.Type(), err)
	}
	return res
}

// audit runs `sebelas audit`'s checks on the table and fails the test on
// any violation: money conserved with top-ups held and captured, no
// negative balance, held = top-ups in flight.
func (f *fixture) audit() audit.Report {
	f.t.Helper()
	r, err := audit.Run(context.Background(), f.db, f.table, audit.Options{})
	if err != nil {
		f.t.Fatalf("audit: %v", err)
	}
	if !r.OK() {
		var b strings.Builder
		_ = r.Write(&b)
		f.t.Fatalf("audit failed:\n%s", b.String())
	}
	return r
}
