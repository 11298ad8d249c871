package audit_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/sebelas/sebelas/events"
	"github.com/sebelas/sebelas/internal/audit"
	"github.com/sebelas/sebelas/internal/devtools/ddbtest"
	"github.com/sebelas/sebelas/internal/devtools/router"
	"github.com/sebelas/sebelas/internal/devtools/stack"
	"github.com/sebelas/sebelas/internal/ledger"
	"github.com/sebelas/sebelas/internal/market"
	"github.com/sebelas/sebelas/internal/money"
	"github.com/sebelas/sebelas/internal/settle"
)

// TestRefundsAndSettlementThroughTheLocalBroker wires the refund and settle
// functions the way infra/knative does: refund.requested through its
// Trigger, a settle PingSource tick through the Broker, then the audit.
func TestRefundsAndSettlementThroughTheLocalBroker(t *testing.T) {
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
	for _, fn := range []string{"refund", "settle"} {
		if _, ok := st.Functions[fn]; !ok {
			t.Fatalf("%s is not running in the stack (not built: %v)", fn, st.NotBuilt)
		}
	}
	publish := func(typ string, payload any) {
		t.Helper()
		ev, err := events.NewEvent(typ, "/marketplace/test", payload)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.PublishSigned(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	wait := func() {
		t.Helper()
		wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		if err := st.Router.Wait(wctx); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.Ledger.CashIn(ctx, "ci-1", "w-e2e", money.Amount{Minor: 1_000_000, Currency: money.IDR}, "test"); err != nil {
		t.Fatal(err)
	}
	const charges = 4
	for i := range charges {
		publish(events.TypeChargeRequested, events.ChargeRequested{ChargeID: fmt.Sprintf("ch-e2e-%d", i), Marketplace: "mp",
			MerchantID: "m-e2e", PayerWallet: "w-e2e", Amount: 50_000, Currency: "IDR", RequestedAt: time.Now()})
	}
	wait()
	refund := func(id, chargeID string, amount int64) {
		publish(events.TypeRefundRequested, events.RefundRequested{RefundID: id, ChargeID: chargeID, Marketplace: "mp",
			Amount: amount, Reason: "returned", RequestedAt: time.Now()})
	}
	refund("rf-e2e-1", "ch-e2e-0", 20_000)
	refund("rf-e2e-1", "ch-e2e-0", 20_000) // a duplicate
	refund("rf-e2e-3", "ch-e2e-1", 50_000)
	refund("rf-e2e-4", "ch-e2e-none", 1_000) // its charge never comes
	wait()
	refund("rf-e2e-2", "ch-e2e-0", 40_000) // past what is left
	wait()
	for id, want := range map[string]int64{"ch-e2e-0": 20_000, "ch-e2e-1": 50_000, "ch-e2e-2": 0} {
		c, ok, err := st.Ledger.GetCharge(ctx, id)
		if err != nil || !ok || c.Status != ledger.ChargeSucceeded || c.Refunded != want {
			t.Errorf("%s = %+v, %v, %v; want succeeded with %d refunded", id, c, ok, err, want)
		}
	}
	if r, ok, _ := st.Ledger.GetRefund(ctx, "rf-e2e-2"); !ok || r.Reason != events.ReasonRefundExceedsCharge {
		t.Errorf("rf-e2e-2 = %+v, want rejected refund_exceeds_charge", r)
	}
	b, _, _ := st.Ledger.GetBalance(ctx, "w-e2e", money.IDR)
	if want := int64(1_000_000 - charges*50_000 + 70_000); b.Balance != want {
		t.Errorf("payer balance %d, want %d", b.Balance, want)
	}
	// The orphan refund was retried (503) and, the Broker's retries spent,
	// dead-lettered: not lost.
	var orphan bool
	for _, dl := range st.Router.DeadLetters() {
		if strings.Contains(string(dl.Event.Data()), "rf-e2e-4") {
			orphan = true
		}
	}
	if !orphan || st.Router.Stats().DeadLettered != 1 {
		t.Errorf("dead letters %d, orphan refund among them %v; want exactly the orphan", st.Router.Stats().DeadLettered, orphan)
	}

	// The Jakarta PingSource, fired now: it settles yesterday in Jakarta,
	// which had nothing; the run is recorded done and nothing is
	// dead-lettered.
	if err := st.Router.FirePing(ctx, "settle-id"); err != nil {
		t.Fatal(err)
	}
	wait()
	id, _ := market.ByCode("ID")
	yesterday := settle.PreviousDate(id, time.Now())
	out, err := st.DB.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(st.Table), ConsistentRead: aws.Bool(true),
		Key: key("SR#ID#"+yesterday, "RUN")})
	if err != nil {
		t.Fatal(err)
	}
	if s, ok := out.Item["status"].(*types.AttributeValueMemberS); !ok || s.Value != settle.RunDone {
		t.Errorf("run of ID %s after the tick = %v, want done", yesterday, out.Item)
	}
	if got := st.Router.Stats().DeadLettered; got != 1 {
		t.Errorf("dead letters after the tick = %d, want still 1", got)
	}

	rep, err := audit.Run(ctx, st.DB, st.Table, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		var b strings.Builder
		_ = rep.Write(&b)
		t.Fatalf("audit after the run:\n%s", b.String())
	}
	if got := rep.Currencies[0].UnsettledCharges; got != charges*50_000 {
		t.Errorf("unsettled charges %d, want %d (today is not settled)", got, charges*50_000)
	}
}
