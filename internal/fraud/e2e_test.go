package fraud_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sebelas/sebelas/events"
	"github.com/sebelas/sebelas/internal/devtools/ddbtest"
	"github.com/sebelas/sebelas/internal/devtools/router"
	"github.com/sebelas/sebelas/internal/devtools/stack"
	"github.com/sebelas/sebelas/internal/fraud"
	"github.com/sebelas/sebelas/internal/ledger"
	"github.com/sebelas/sebelas/internal/money"
)

// settleWait bounds how long the test waits for the local Broker to finish
// a delivery chain, and for the fraud function to pick up a changed rules
// file (it polls every 2 s): a liveness bound, not a speed assertion.
const settleWait = 60 * time.Second

func rules(version string, score int) string {
	return fmt.Sprintf(`version: %q
markets:
  default: {review_score: 400, deny_score: 700}
rules:
  - {name: big, reason: big_amount, score: %d, when: "amount >= 100000"}
`, version, score)
}

// TestEndToEnd runs the whole path on the local stack (Broker, Triggers,
// fraud, charge, DynamoDB Local): a charge fraud sends to review is held
// without moving money, the risk team's signed approval charges it once, a
// forged screened event is dead-lettered and moves nothing, and a changed
// rules file takes effect in the running fraud function.
func TestEndToEnd(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, fraud.RulesKey)
	if err := os.WriteFile(path, []byte(rules("e2e-1", 500)), 0o644); err != nil {
		t.Fatal(err)
	}
	_, name := ddbtest.New(t)
	st, err := stack.Start(ctx, stack.Options{
		Endpoint: ddbtest.Endpoint(t), Table: name,
		Env:    map[string]string{fraud.EnvRules: path},
		Router: router.Options{Sleep: func(context.Context, time.Duration) error { return nil }},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	wait := func() {
		t.Helper()
		wctx, cancel := context.WithTimeout(ctx, settleWait)
		defer cancel()
		if err := st.Router.Wait(wctx); err != nil {
			t.Fatal(err)
		}
	}
	publish := func(ev events.ChargeRequested) {
		t.Helper()
		e, err := events.NewEvent(events.TypeChargeRequested, "/marketplace/test", ev)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.PublishSigned(ctx, e); err != nil { // as the ingress would
			t.Fatal(err)
		}
	}
	const funds = 1_000_000
	if _, err := st.Ledger.CashIn(ctx, "ci-e2e", "w-e2e", money.Amount{Minor: funds, Currency: money.PHP}, "test"); err != nil {
		t.Fatal(err)
	}
	balance := func() int64 {
		b, _, err := st.Ledger.GetBalance(ctx, "w-e2e", money.PHP)
		if err != nil {
			t.Fatal(err)
		}
		return b.Balance
	}
	charge := func(id string) ledger.ChargeRecord {
		c, _, err := st.Ledger.GetCharge(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	req := events.ChargeRequested{ChargeID: "ch-review", Marketplace: "test", MerchantID: "m-1", PayerWallet: "w-e2e",
		Amount: 150_000, Currency: "PHP", DeviceID: "dev-1", DeviceCountry: "PH", RequestedAt: time.Now().UTC()}

	// 1. Review: held, no money moved.
	publish(req)
	wait()
	if c := charge("ch-review"); c.Status != ledger.ChargeInReview || balance() != funds {
		t.Fatalf("after review: charge %+v, balance %d", c, balance())
	}

	// 2. The signed approval charges it, once, however often it arrives.
	for i := range 2 {
		rv, err := events.NewEvent(events.TypeChargeReviewed, events.SourcePrefix+"review",
			events.ChargeReviewed{ChargeID: "ch-review", Decision: events.ReviewApprove, Reviewer: "risk-1", DecidedAt: time.Now().UTC()})
		if err != nil {
			t.Fatal(err)
		}
		rv.SetID(fmt.Sprintf("review-%d", i))
		if err := st.Keys.Sign(&rv, time.Now()); err != nil {
			t.Fatal(err)
		}
		if err := st.Router.Publish(ctx, rv); err != nil {
			t.Fatal(err)
		}
		wait()
	}
	if c := charge("ch-review"); c.Status != ledger.ChargeSucceeded || balance() != funds-req.Amount {
		t.Fatalf("after approval: charge %+v, balance %d", c, balance())
	}

	// 3. A forged screened event with fraud's source: dead-lettered.
	forged := req
	forged.ChargeID = "ch-forged"
	fe, err := events.NewEvent(events.TypeChargeScreened, fraud.Source,
		events.ChargeScreened{Charge: forged, Screening: events.Screening{Decision: events.DecisionAllow, Reasons: []string{}}})
	if err != nil {
		t.Fatal(err)
	}
	dead := st.Router.Stats().DeadLettered
	if err := st.Router.Publish(ctx, fe); err != nil {
		t.Fatal(err)
	}
	wait()
	if _, found, _ := st.Ledger.GetCharge(ctx, "ch-forged"); found || balance() != funds-req.Amount || st.Router.Stats().DeadLettered != dead+1 {
		t.Fatalf("forged event: stored %v, balance %d, dead letters %d (was %d)", found, balance(), st.Router.Stats().DeadLettered, dead)
	}

	// 4. The risk team changes the rules file: the running fraud function
	// reloads it and the next charge is denied.
	if err := os.WriteFile(path+".tmp", []byte(rules("e2e-2", 900)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(settleWait)
	for i := 0; ; i++ {
		next := req
		next.ChargeID = fmt.Sprintf("ch-after-%d", i)
		publish(next)
		wait()
		c := charge(next.ChargeID)
		if c.Status == ledger.ChargeDeclined && c.Reason == events.ReasonFraud {
			break
		}
		if c.Status != ledger.ChargeInReview || time.Now().After(deadline) {
			t.Fatalf("charge %d under the changed rules: %+v", i, c)
		}
		time.Sleep(500 * time.Millisecond) // the function polls the file every 2 s
	}
	if balance() != funds-req.Amount {
		t.Errorf("balance %d: only the approved charge may have moved money", balance())
	}
}
