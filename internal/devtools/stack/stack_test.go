package stack_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/sebelas/sebelas/events"
	"github.com/sebelas/sebelas/internal/deadletter"
	"github.com/sebelas/sebelas/internal/devtools/ddbtest"
	"github.com/sebelas/sebelas/internal/devtools/router"
	"github.com/sebelas/sebelas/internal/devtools/stack"
	"github.com/sebelas/sebelas/internal/ledger"
	"github.com/sebelas/sebelas/internal/money"
)

func TestMain(m *testing.M) { ddbtest.Main(m) }

// TestChargePathEndToEnd sends marketplace events into the local Broker and
// checks what the whole path (Trigger → fraud → reply → Trigger → charge →
// reply, dead-letter sink) did to the table.
func TestChargePathEndToEnd(t *testing.T) {
	ctx := context.Background()
	_, name := ddbtest.New(t)
	st, err := stack.Start(ctx, stack.Options{
		Endpoint: ddbtest.Endpoint(t),
		Table:    name,
		Env:      map[string]string{"SEBELAS_FRAUD_BLOCKED_WALLETS": "w-mule"},
		// Retries happen, but without waiting real backoff.
		Router: router.Options{Sleep: func(context.Context, time.Duration) error { return nil }},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })

	raw, _ := events.Sample(events.TypeChargeRequested)
	var req events.ChargeRequested
	if err := json.Unmarshal(raw, &req); err != nil {
		t.Fatal(err)
	}
	cur := money.Currency(req.Currency)
	if _, err := st.Ledger.CashIn(ctx, "ci-e2e", req.PayerWallet, money.Amount{Minor: req.Amount * 3, Currency: cur}, "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Ledger.CashIn(ctx, "ci-mule", "w-mule", money.Amount{Minor: req.Amount * 3, Currency: cur}, "test"); err != nil {
		t.Fatal(err)
	}
	publish := func(r events.ChargeRequested) {
		t.Helper()
		ev, err := events.NewEvent(events.TypeChargeRequested, "/marketplace/test", r)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.PublishSigned(ctx, ev); err != nil {
			t.Fatal(err)
		}
		// The same request redelivered under another event id.
		ev2, _ := events.NewEvent(events.TypeChargeRequested, "/marketplace/test", r)
		if err := st.PublishSigned(ctx, ev2); err != nil {
			t.Fatal(err)
		}
	}
	publish(req)
	mule := req
	mule.ChargeID, mule.PayerWallet = "ch-mule", "w-mule"
	publish(mule)
	// An event the charge path can never process: fraud answers 400 and
	// the Broker dead-letters it at once.
	bad, _ := events.NewEvent(events.TypeChargeRequested, "/marketplace/test", req)
	bad.DataEncoded = []byte(`{"charge_id":"ch-bad","amount":-5}`)
	if err := st.PublishSigned(ctx, bad); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := st.Router.Wait(wctx); err != nil {
		t.Fatal(err)
	}

	c, ok, err := st.Ledger.GetCharge(ctx, req.ChargeID)
	if err != nil || !ok || c.Status != ledger.ChargeSucceeded {
		t.Fatalf("charge %s = %+v, %v, %v; want succeeded", req.ChargeID, c, ok, err)
	}
	b, _, _ := st.Ledger.GetBalance(ctx, req.PayerWallet, cur)
	if b.Balance != req.Amount*2 {
		t.Errorf("payer balance = %d, want %d (charged exactly once)", b.Balance, req.Amount*2)
	}
	m, ok, _ := st.Ledger.GetCharge(ctx, "ch-mule")
	if !ok || m.Status != ledger.ChargeDeclined || m.Reason != events.ReasonFraud {
		t.Errorf("blocked wallet's charge = %+v, want declined for fraud", m)
	}
	mb, _, _ := st.Ledger.GetBalance(ctx, "w-mule", cur)
	if mb.Balance != req.Amount*3 {
		t.Errorf("blocked wallet balance = %d, want untouched", mb.Balance)
	}
	sink := &deadletter.Sink{DB: st.DB, Table: st.Table}
	letters, err := sink.List(ctx, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(letters) != 1 || letters[0].ID != bad.ID() || letters[0].ErrorCode != "400" {
		t.Errorf("dead letters = %+v, want the malformed event with code 400", letters)
	}
	if s := st.Router.Stats(); s.DeadLettered != 1 {
		t.Errorf("router dead-lettered %d, want 1", s.DeadLettered)
	}
}
