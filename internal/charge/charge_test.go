package charge_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/google/go-cmp/cmp"

	"github.com/sebelas/sebelas/events"
	"github.com/sebelas/sebelas/internal/charge"
	"github.com/sebelas/sebelas/internal/devtools/ddbtest"
	"github.com/sebelas/sebelas/internal/function"
	"github.com/sebelas/sebelas/internal/ledger"
	"github.com/sebelas/sebelas/internal/money"
	"github.com/sebelas/sebelas/internal/table"
)

func TestMain(m *testing.M) { ddbtest.Main(m) }

type fixture struct {
	srv    *httptest.Server
	ledger *ledger.Store
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	db, name := ddbtest.New(t)
	l := ledger.New(db, name, nil)
	h := &charge.Handler{Ledger: l, Limits: money.DefaultLimits(), Verifier: testVerifier}
	srv, err := function.NewServer(context.Background(), "charge", h.Handle, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return &fixture{srv: ts, ledger: l}
}

// sample returns the golden charge.screened payload.
func sample(t testing.TB) events.ChargeScreened {
	t.Helper()
	raw, ok := events.Sample(events.TypeChargeScreened)
	if !ok {
		t.Fatal("no golden charge.screened sample")
	}
	var sc events.ChargeScreened
	if err := json.Unmarshal(raw, &sc); err != nil {
		t.Fatal(err)
	}
	return sc
}

// postRaw sends a binary-mode CloudEvent and returns the status and the
// reply event, if any.
func postRaw(t testing.TB, url, ceType, id, contentType, body string) (int, *cloudevents.Event) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Ce-Specversion", "1.0")
	req.Header.Set("Ce-Type", ceType)
	req.Header.Set("Ce-Source", "/sebelas/fraud")
	req.Header.Set("Ce-Id", id)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	signHeader(t, req, ceType, id, body) // as fraud signs (signature_test.go)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.Header.Get("Ce-Type") == "" {
		return resp.StatusCode, nil
	}
	ev := cloudevents.NewEvent()
	ev.SetType(resp.Header.Get("Ce-Type"))
	ev.SetID(resp.Header.Get("Ce-Id"))
	ev.SetSource(resp.Header.Get("Ce-Source"))
	ev.SetDataContentType(resp.Header.Get("Content-Type"))
	ev.DataEncoded = data
	return resp.StatusCode, &ev
}

func post(t testing.TB, url string, sc events.ChargeScreened, id string) (int, *cloudevents.Event) {
	t.Helper()
	body, err := json.Marshal(sc)
	if err != nil {
		t.Fatal(err)
	}
	return postRaw(t, url, events.TypeChargeScreened, id, "application/json", string(body))
}

func balanceOf(t testing.TB, l *ledger.Store, wallet string, cur money.Currency) int64 {
	t.Helper()
	b, _, err := l.GetBalance(context.Background(), wallet, cur)
	if err != nil {
		t.Fatal(err)
	}
	return b.Balance
}

func TestGoldenChargeSucceedsOnceAndReplays(t *testing.T) {
	f := newFixture(t)
	sc := sample(t)
	cur := money.Currency(sc.Charge.Currency)
	if _, err := f.ledger.CashIn(context.Background(), "ci-1", sc.Charge.PayerWallet, money.Amount{Minor: 1_000_000, Currency: cur}, "test"); err != nil {
		t.Fatal(err)
	}
	status, reply := post(t, f.srv.URL, sc, "ev-1")
	if status != http.StatusOK || reply == nil || reply.Type() != events.TypeChargeSucceeded {
		t.Fatalf("status %d reply %v, want 200 and charge.succeeded", status, reply)
	}
	var res events.ChargeResult
	if err := events.Decode(*reply, &res); err != nil {
		t.Fatalf("reply does not validate: %v", err)
	}
	want := events.ChargeResult{ChargeID: sc.Charge.ChargeID, MerchantID: sc.Charge.MerchantID,
		PayerWallet: sc.Charge.PayerWallet, Amount: sc.Charge.Amount, Currency: sc.Charge.Currency, At: res.At}
	if diff := cmp.Diff(want, res); diff != "" {
		t.Errorf("charge.succeeded (-want +got):\n%s", diff)
	}
	// A redelivery (new CloudEvent id, same charge) replays the same outcome
	// event and takes no more money.
	status2, reply2 := post(t, f.srv.URL, sc, "ev-2")
	if status2 != http.StatusOK || reply2 == nil || reply2.ID() != reply.ID() || reply2.Type() != reply.Type() {
		t.Errorf("redelivery: status %d reply %v, want the same outcome event %s", status2, reply2, reply.ID())
	}
	if got, want := balanceOf(t, f.ledger, sc.Charge.PayerWallet, cur), int64(1_000_000)-sc.Charge.Amount; got != want {
		t.Errorf("balance = %d, want %d", got, want)
	}
}

func TestFraudDecisionsMoveNoMoney(t *testing.T) {
	f := newFixture(t)
	sc := sample(t)
	cur := money.Currency(sc.Charge.Currency)
	if _, err := f.ledger.CashIn(context.Background(), "ci-1", sc.Charge.PayerWallet, money.Amount{Minor: 1_000_000, Currency: cur}, "test"); err != nil {
		t.Fatal(err)
	}
	for i, d := range []struct{ decision, reason string }{
		{events.DecisionDeny, events.ReasonFraud},
		{events.DecisionReview, events.ReasonFraudReview},
	} {
		s := sc
		s.Charge.ChargeID = sc.Charge.ChargeID + "-" + d.decision
		s.Screening.Decision = d.decision
		status, reply := post(t, f.srv.URL, s, "ev-"+d.decision)
		want := events.TypeChargeDeclined
		if d.decision == events.DecisionReview {
			want = events.TypeChargeHeld // held, no money moved (signature_test.go: the review)
		}
		if status != http.StatusOK || reply == nil || reply.Type() != want {
			t.Fatalf("%d: status %d reply %v", i, status, reply)
		}
		var res events.ChargeResult
		if err := events.Decode(*reply, &res); err != nil {
			t.Fatal(err)
		}
		if res.Reason != d.reason {
			t.Errorf("decision %s: reason %q, want %q", d.decision, res.Reason, d.reason)
		}
	}
	if got := balanceOf(t, f.ledger, sc.Charge.PayerWallet, cur); got != 1_000_000 {
		t.Errorf("balance = %d, want untouched", got)
	}
}

func TestMalformedEventsGet400AndMoveNoMoney(t *testing.T) {
	f := newFixture(t)
	sc := sample(t)
	cur := money.Currency(sc.Charge.Currency)
	if _, err := f.ledger.CashIn(context.Background(), "ci-1", sc.Charge.PayerWallet, money.Amount{Minor: 1_000_000, Currency: cur}, "test"); err != nil {
		t.Fatal(err)
	}
	good, _ := json.Marshal(sc)
	mutate := func(f func(m map[string]any)) string {
		var m map[string]any
		_ = json.Unmarshal(good, &m)
		f(m)
		b, _ := json.Marshal(m)
		return string(b)
	}
	chargeField := func(k string, v any) string {
		return mutate(func(m map[string]any) { m["charge"].(map[string]any)[k] = v })
	}
	tests := []struct {
		name, ceType, contentType, body string
	}{
		{"not JSON", events.TypeChargeScreened, "application/json", "{charge:"},
		{"wrong content type", events.TypeChargeScreened, "text/xml", string(good)},
		{"event type charge does not handle", events.TypeChargeRequested, "application/json", string(good)},
		{"unknown event type", "com.example.charge", "application/json", string(good)},
		{"unknown currency", events.TypeChargeScreened, "application/json", chargeField("currency", "USD")},
		{"amount as float", events.TypeChargeScreened, "application/json", chargeField("amount", 12.5)},
		{"negative amount", events.TypeChargeScreened, "application/json", chargeField("amount", -100)},
		{"zero amount", events.TypeChargeScreened, "application/json", chargeField("amount", 0)},
		{"amount as string", events.TypeChargeScreened, "application/json", chargeField("amount", "100")},
		{"missing payer", events.TypeChargeScreened, "application/json", mutate(func(m map[string]any) {
			delete(m["charge"].(map[string]any), "payer_wallet")
		})},
		{"extra field", events.TypeChargeScreened, "application/json", mutate(func(m map[string]any) { m["bonus"] = 1 })},
		{"bad decision", events.TypeChargeScreened, "application/json", mutate(func(m map[string]any) {
			m["screening"].(map[string]any)["decision"] = "maybe"
		})},
		{"id with a hash", events.TypeChargeScreened, "application/json", chargeField("charge_id", "C#evil")},
		{"body over the limit", events.TypeChargeScreened, "application/json", chargeField("description", strings.Repeat("x", events.BodyBytesMax))},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, reply := postRaw(t, f.srv.URL, tt.ceType, "bad-"+string(rune('a'+i)), tt.contentType, tt.body)
			if status != http.StatusBadRequest && !(tt.name == "body over the limit" && status == http.StatusRequestEntityTooLarge) {
				t.Errorf("status = %d, want 400", status)
			}
			if reply != nil {
				t.Errorf("reply %v to a malformed event", reply.Type())
			}
		})
	}
	if got := balanceOf(t, f.ledger, sc.Charge.PayerWallet, cur); got != 1_000_000 {
		t.Errorf("balance = %d, want untouched", got)
	}
}

func TestStorageDownIsRetryable(t *testing.T) {
	// Nothing listens on this port: DynamoDB is "down". The event must be
	// retried (503), never dead-lettered.
	ln := httptest.NewServer(http.NotFoundHandler())
	url := ln.URL
	ln.Close()
	cfg := table.Config{Region: "ap-southeast-1", Endpoint: url, Table: "down", MaxAttempts: 1, TimeoutMs: 500}
	db, err := table.NewClient(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := &charge.Handler{Ledger: ledger.New(db, "down", nil), Limits: money.DefaultLimits(), Verifier: testVerifier}
	srv, err := function.NewServer(context.Background(), "charge", h.Handle, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	status, _ := post(t, ts.URL, sample(t), "ev-1")
	if status != http.StatusServiceUnavailable {
		t.Errorf("status = %d, want 503", status)
	}
}
