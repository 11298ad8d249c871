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
	"github.com/sebelas/sebelas/internal/money"
	"github.com/sebelas/sebelas/internal/operator"
	"github.com/sebelas/sebelas/internal/topup"
)

// TestTopupPathEndToEnd sends the app's topup.requested into the local
// Broker: fraud screens and signs it, topup holds the money and calls the
// operator simulator the stack started, and the outcome lands in the table.
func TestTopupPathEndToEnd(t *testing.T) {
	ctx := context.Background()
	_, name := ddbtest.New(t)
	st, err := stack.Start(ctx, stack.Options{
		Endpoint: ddbtest.Endpoint(t),
		Table:    name,
		Router:   router.Options{Sleep: func(context.Context, time.Duration) error { return nil }},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if st.Operator == nil || st.Functions["topup"] == "" {
		t.Fatalf("no operator simulator (%v) or topup function (%v)", st.Operator, st.Functions)
	}

	raw, _ := events.Sample(events.TypeTopupRequested) // a Grameenphone bundle, BD
	var req events.TopupRequested
	if err := json.Unmarshal(raw, &req); err != nil {
		t.Fatal(err)
	}
	cur := money.Currency(req.Currency)
	if _, err := st.Ledger.CashIn(ctx, "ci-e2e-topup", req.PayerWallet, money.Amount{Minor: 2_000_00, Currency: cur}, "test"); err != nil {
		t.Fatal(err)
	}
	publish := func(r events.TopupRequested) events.TopupRequested {
		t.Helper()
		for range 2 { // at least once: every request arrives twice
			ev, err := events.NewEvent(events.TypeTopupRequested, "/app/test", r)
			if err != nil {
				t.Fatal(err)
			}
			if err := st.PublishSigned(ctx, ev); err != nil {
				t.Fatal(err)
			}
		}
		wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		if err := st.Router.Wait(wctx); err != nil {
			t.Fatal(err)
		}
		return r
	}
	store := topup.NewStore(st.DB, st.Table, st.Ledger, nil)
	status := func(id string) (string, string) {
		t.Helper()
		r, ok, err := store.Get(ctx, id)
		if err != nil || !ok {
			t.Fatalf("topup %s: %v %v", id, ok, err)
		}
		return r.Status, r.Reason
	}

	publish(req)
	if s, why := status(req.TopupID); s != topup.StatusSucceeded {
		t.Fatalf("topup %s: %s (%s), want succeeded", req.TopupID, s, why)
	}
	// The operator rejects the next one: its hold comes back.
	if err := st.Operator.Configure(operator.SimConfig{FailureRate: 1}); err != nil {
		t.Fatal(err)
	}
	rejected := req
	rejected.TopupID = req.TopupID + "-2"
	publish(rejected)
	if s, why := status(rejected.TopupID); s != topup.StatusFailed || why != topup.ReasonOperatorRejected {
		t.Errorf("topup %s: %s (%s), want failed operator_rejected", rejected.TopupID, s, why)
	}
	// A landline can never be topped up: dead-lettered with its reason.
	landline := req
	landline.TopupID, landline.MSISDN, landline.ProductID, landline.Amount = req.TopupID+"-3", "02-9123456", "", 100_00
	publish(landline)

	b, _, _ := st.Ledger.GetBalance(ctx, req.PayerWallet, cur)
	if b.Balance != 2_000_00-499_00 || b.Held != 0 {
		t.Errorf("payer balance %d held %d, want %d and 0: one bundle taken once", b.Balance, b.Held, 2_000_00-499_00)
	}
	if st := st.Operator.Stats(); st.Submits != 2 || st.Replays != 0 {
		t.Errorf("operator: %d submits, %d resubmits; want 2 and 0", st.Submits, st.Replays)
	}
	letters, err := (&deadletter.Sink{DB: st.DB, Table: st.Table}).List(ctx, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(letters) != 2 || letters[0].ErrorCode != "400" {
		t.Errorf("dead letters = %+v, want the landline's two deliveries with 400", letters)
	}
}
