package refund_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/sebelas/sebelas/events"
	"github.com/sebelas/sebelas/internal/devtools/ddbtest"
	"github.com/sebelas/sebelas/internal/function"
	"github.com/sebelas/sebelas/internal/ledger"
	"github.com/sebelas/sebelas/internal/money"
	"github.com/sebelas/sebelas/internal/refund"
	"github.com/sebelas/sebelas/internal/signing"
)

func TestMain(m *testing.M) { ddbtest.Main(m) }

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
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// ingressKeys are the test run's keys; the handler verifies the ingress's.
var ingressKeys = signing.NewDevKeys()

type fixture struct {
	url    string
	ledger *ledger.Store
	clock  *clock
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	db, name := ddbtest.New(t)
	c := &clock{t: time.Date(2026, 11, 11, 2, 0, 0, 0, time.UTC)}
	l := ledger.New(db, name, c.Now)
	h := &refund.Handler{Ledger: l, Verifier: ingressKeys.Verifier()}
	srv, err := function.NewServer(context.Background(), "refund", h.Handle, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return &fixture{url: ts.URL, ledger: l, clock: c}
}

// golden is the golden refund.requested sample.
func golden(t *testing.T) events.RefundRequested {
	t.Helper()
	raw, ok := events.Sample(events.TypeRefundRequested)
	if !ok {
		t.Fatal("no golden refund.requested sample")
	}
	var r events.RefundRequested
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// chargeFor stores the succeeded charge a refund points at.
func (f *fixture) chargeFor(t *testing.T, r events.RefundRequested, amount int64) {
	t.Helper()
	ctx := context.Background()
	if _, err := f.ledger.CashIn(ctx, "ci-"+r.ChargeID, "w-payer", money.Amount{Minor: amount, Currency: money.Currency(r.Currency)}, "test"); err != nil {
		t.Fatal(err)
	}
	out, err := f.ledger.Charge(ctx, events.ChargeRequested{ChargeID: r.ChargeID, Marketplace: r.Marketplace,
		MerchantID: "m-1", PayerWallet: "w-payer", Amount: amount, Currency: r.Currency}, money.DefaultLimits())
	if err != nil || out.Status != ledger.ChargeSucceeded {
		t.Fatalf("charge = %+v, %v", out, err)
	}
}

func postRaw(t *testing.T, url, id, body string) (int, *cloudevents.Event) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Ce-Specversion", "1.0")
	req.Header.Set("Ce-Type", events.TypeRefundRequested)
	req.Header.Set("Ce-Source", "/marketplace/pasarku")
	req.Header.Set("Ce-Id", id)
	req.Header.Set("Content-Type", "application/json")
	// Signed as the ingress signs what it lets in.
	ev := cloudevents.NewEvent()
	ev.SetType(events.TypeRefundRequested)
	ev.SetSource("/marketplace/pasarku")
	ev.SetID(id)
	ev.DataEncoded = []byte(body)
	if err := ingressKeys.Sign(&ev, time.Now()); err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Ce-"+signing.Extension, ev.Extensions()[signing.Extension].(string))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.Header.Get("Ce-Type") == "" {
		return resp.StatusCode, nil
	}
	ev = cloudevents.NewEvent()
	ev.SetType(resp.Header.Get("Ce-Type"))
	ev.SetID(resp.Header.Get("Ce-Id"))
	ev.SetSource(resp.Header.Get("Ce-Source"))
	ev.SetDataContentType(resp.Header.Get("Content-Type"))
	ev.DataEncoded = data
	return resp.StatusCode, &ev
}

func post(t *testing.T, url string, r events.RefundRequested, id string) (int, *cloudevents.Event) {
	t.Helper()
	body, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return postRaw(t, url, id, string(body))
}

func resultOf(t *testing.T, ev *cloudevents.Event) events.RefundResult {
	t.Helper()
	var res events.RefundResult
	if err := events.Decode(*ev, &res); err != nil {
		t.Fatalf("reply does not decode: %v", err)
	}
	return res
}

func TestGoldenRefundSucceedsOnceAndReplays(t *testing.T) {
	f := newFixture(t)
	r := golden(t)
	f.chargeFor(t, r, 300_000)
	status, reply := post(t, f.url, r, "ev-1")
	if status != http.StatusOK || reply == nil || reply.Type() != events.TypeRefundSucceeded {
		t.Fatalf("status %d reply %v, want 200 refund.succeeded", status, reply)
	}
	if want := events.ResultID(r.RefundID, events.TypeRefundSucceeded); reply.ID() != want {
		t.Errorf("reply id %s, want %s", reply.ID(), want)
	}
	want := events.RefundResult{RefundID: r.RefundID, ChargeID: r.ChargeID, PayerWallet: "w-payer", MerchantID: "m-1",
		Amount: r.Amount, Currency: "IDR", RefundedTotal: r.Amount}
	if diff := cmp.Diff(want, resultOf(t, reply), cmpopts.IgnoreFields(events.RefundResult{}, "At")); diff != "" {
		t.Errorf("reply (-want +got):\n%s", diff)
	}
	// A redelivery under another CloudEvent id replays the same event.
	status, again := post(t, f.url, r, "ev-2")
	if status != http.StatusOK || again == nil || again.ID() != reply.ID() || string(again.Data()) != string(reply.Data()) {
		t.Errorf("replay: status %d, event %v; want the first reply again", status, again)
	}
	b, _, _ := f.ledger.GetBalance(context.Background(), "w-payer", money.IDR)
	if b.Balance != r.Amount {
		t.Errorf("payer balance %d, want %d refunded once", b.Balance, r.Amount)
	}
}

func TestRefundRejectionsAndFaults(t *testing.T) {
	f := newFixture(t)
	r := golden(t)
	f.chargeFor(t, r, 100_000) // less than the golden refund asks

	status, reply := post(t, f.url, r, "ev-1")
	if status != http.StatusOK || reply == nil || reply.Type() != events.TypeRefundRejected {
		t.Fatalf("refund above the charge: status %d reply %v, want 200 refund.rejected", status, reply)
	}
	if got := resultOf(t, reply); got.Reason != events.ReasonRefundExceedsCharge || got.RefundedTotal != 0 {
		t.Errorf("rejection = %+v", got)
	}

	// Reusing the refund id with other content: rejected as a conflict,
	// with a reply id of its own.
	other := r
	other.Amount = 1_000
	status, conflict := post(t, f.url, other, "ev-2")
	if status != http.StatusOK || conflict == nil || conflict.Type() != events.TypeRefundConflicted || resultOf(t, conflict).Reason != events.ReasonConflict || conflict.ID() == reply.ID() {
		t.Errorf("conflicting reuse: status %d reply %v", status, conflict)
	}

	// A refund whose charge has not arrived: 503 while it may, then 400.
	orphan := r
	orphan.RefundID, orphan.ChargeID = "rf-orphan", "ch-not-yet"
	if status, _ := post(t, f.url, orphan, "ev-3"); status != http.StatusServiceUnavailable {
		t.Errorf("refund before its charge: status %d, want 503", status)
	}
	f.clock.Advance(ledger.RefundChargeWaitMs*time.Millisecond + time.Second)
	if status, _ := post(t, f.url, orphan, "ev-3"); status != http.StatusBadRequest {
		t.Errorf("refund whose charge never came: status %d, want 400", status)
	}

	for name, body := range map[string]string{
		"not json":        `{`,
		"negative amount": `{"refund_id":"r","charge_id":"c","marketplace":"m","amount":-5,"reason":"x","requested_at":"2026-11-11T00:00:00Z"}`,
		"no reason":       `{"refund_id":"r","charge_id":"c","marketplace":"m","amount":5,"requested_at":"2026-11-11T00:00:00Z"}`,
		"unknown field":   `{"refund_id":"r","charge_id":"c","marketplace":"m","amount":5,"reason":"x","requested_at":"2026-11-11T00:00:00Z","to":"me"}`,
	} {
		if status, _ := postRaw(t, f.url, "bad-"+name, body); status != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400", name, status)
		}
	}
}
