package ledger_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/sebelas/sebelas/events"
	"github.com/sebelas/sebelas/internal/devtools/ddbtest"
	"github.com/sebelas/sebelas/internal/fault"
	"github.com/sebelas/sebelas/internal/ledger"
	"github.com/sebelas/sebelas/internal/money"
	"github.com/sebelas/sebelas/internal/table"
)

// clock is a settable time source for the ledger.
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

func newClockedStore(t *testing.T, at time.Time, optFns ...func(*dynamodb.Options)) (*ledger.Store, *dynamodb.Client, string, *clock) {
	t.Helper()
	db, name := ddbtest.New(t, optFns...)
	c := &clock{t: at}
	return ledger.New(db, name, c.Now), db, name, c
}

func refundReq(id, chargeID string, amount int64) events.RefundRequested {
	return events.RefundRequested{
		RefundID: id, ChargeID: chargeID, Marketplace: "tokopedia", Amount: amount,
		Reason: "size does not fit", RequestedAt: time.Date(2026, 11, 12, 9, 0, 0, 0, time.UTC),
	}
}

// refundUntilDecided retries a refund the way the Broker would, until it has
// an outcome or a permanent error.
func refundUntilDecided(ctx context.Context, s *ledger.Store, req events.RefundRequested) (ledger.RefundOutcome, error) {
	const attemptsMax = 200 // the Broker's 11 deliveries, many times over
	var err error
	for range attemptsMax {
		var out ledger.RefundOutcome
		out, err = s.Refund(ctx, req)
		if err == nil || fault.IsPermanent(err) {
			return out, err
		}
	}
	return ledger.RefundOutcome{}, fmt.Errorf("still failing after %d attempts: %w", attemptsMax, err)
}

// outcomeOnly compares outcomes without their time.
var outcomeOnly = cmpopts.IgnoreFields(ledger.RefundOutcome{}, "At")

func TestRefundRules(t *testing.T) {
	ctx := context.Background()
	s, _, _, _ := newClockedStore(t, time.Date(2026, 11, 11, 3, 0, 0, 0, time.UTC))
	fund(t, s, "w-ana", 1_000_00, money.PHP)
	charge := func(id string, amount int64) {
		t.Helper()
		out, err := s.Charge(ctx, chargeReq(id, "w-ana", amount, "PHP"), money.DefaultLimits())
		if err != nil || out.Status != ledger.ChargeSucceeded {
			t.Fatalf("charge %s = %+v, %v", id, out, err)
		}
	}
	succeeded := func(total int64) ledger.RefundOutcome {
		return ledger.RefundOutcome{Status: ledger.RefundSucceeded, Payer: "w-ana", Merchant: "m-flagship", Currency: "PHP", RefundedTotal: total}
	}
	rejected := func(reason string, total int64) ledger.RefundOutcome {
		return ledger.RefundOutcome{Status: ledger.RefundRejected, Reason: reason, Payer: "w-ana", Merchant: "m-flagship", Currency: "PHP", RefundedTotal: total}
	}

	charge("ch-full", 100_00)
	charge("ch-partial", 100_00)
	charge("ch-other", 10_00)
	// Declined: more than the wallet holds.
	if out, err := s.Charge(ctx, chargeReq("ch-declined", "w-ana", 5_000_00, "PHP"), money.DefaultLimits()); err != nil || out.Status != ledger.ChargeDeclined {
		t.Fatalf("declined charge = %+v, %v", out, err)
	}
	withCurrency := func(r events.RefundRequested, c string) events.RefundRequested { r.Currency = c; return r }
	withMarketplace := func(r events.RefundRequested, m string) events.RefundRequested { r.Marketplace = m; return r }

	steps := []struct {
		name    string
		req     events.RefundRequested
		want    ledger.RefundOutcome
		balance int64 // w-ana's PHP balance after the step
	}{
		{"full refund", refundReq("rf-1", "ch-full", 100_00), succeeded(100_00), 790_00 + 100_00},
		{"nothing left", refundReq("rf-2", "ch-full", 1), rejected(events.ReasonRefundExceedsCharge, 100_00), 890_00},
		{"partial", refundReq("rf-3", "ch-partial", 30_00), succeeded(30_00), 920_00},
		{"partial with currency", withCurrency(refundReq("rf-4", "ch-partial", 70_00), "PHP"), succeeded(100_00), 990_00},
		{"past the charge", refundReq("rf-5", "ch-partial", 1), rejected(events.ReasonRefundExceedsCharge, 100_00), 990_00},
		{"more than the charge at once", refundReq("rf-6", "ch-other", 10_01), rejected(events.ReasonRefundExceedsCharge, 0), 990_00},
		{"declined charge", refundReq("rf-7", "ch-declined", 1_00), ledger.RefundOutcome{Status: ledger.RefundRejected,
			Reason: events.ReasonChargeNotRefundable, Payer: "w-ana", Merchant: "m-flagship", Currency: "PHP"}, 990_00},
		{"other currency", withCurrency(refundReq("rf-8", "ch-other", 1_00), "MYR"), ledger.RefundOutcome{Status: ledger.RefundRejected,
			Reason: events.ReasonCurrencyMismatch, Payer: "w-ana", Merchant: "m-flagship", Currency: "MYR"}, 990_00},
		{"other marketplace", withMarketplace(refundReq("rf-9", "ch-other", 1_00), "lazada"), rejected(ledger.ReasonMarketplaceMismatch, 0), 990_00},
		{"duplicate replays success", refundReq("rf-3", "ch-partial", 30_00), func() ledger.RefundOutcome {
			o := succeeded(30_00)
			o.Replayed = true
			return o
		}(), 990_00},
		{"duplicate replays rejection", refundReq("rf-5", "ch-partial", 1), func() ledger.RefundOutcome {
			o := rejected(events.ReasonRefundExceedsCharge, 100_00)
			o.Replayed = true
			return o
		}(), 990_00},
		{"reuse with other content", refundReq("rf-3", "ch-partial", 1_00), func() ledger.RefundOutcome {
			o := rejected(events.ReasonConflict, 30_00)
			o.Conflict = true
			return o
		}(), 990_00},
	}
	for _, st := range steps {
		out, err := s.Refund(ctx, st.req)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if diff := cmp.Diff(st.want, out, outcomeOnly, cmpopts.IgnoreFields(ledger.RefundOutcome{}, "Detail")); diff != "" {
			t.Errorf("%s: outcome (-want +got):\n%s", st.name, diff)
		}
		if got := balance(t, s, "w-ana", money.PHP); got != st.balance {
			t.Errorf("%s: balance = %d, want %d", st.name, got, st.balance)
		}
	}
	for id, want := range map[string]int64{"ch-full": 100_00, "ch-partial": 100_00, "ch-other": 0, "ch-declined": 0} {
		c, _, err := s.GetCharge(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if c.Refunded != want {
			t.Errorf("%s refunded = %d, want %d", id, c.Refunded, want)
		}
	}
	// The rejected refund's event carries the charge as it stood.
	r, ok, err := s.GetRefund(ctx, "rf-5")
	if err != nil || !ok || r.Status != ledger.RefundRejected || r.RefundedTotal != 100_00 {
		t.Errorf("stored rf-5 = %+v, %v, %v", r, ok, err)
	}
}

func TestRefundToFrozenWalletIsRejectedAndMovesNothing(t *testing.T) {
	ctx := context.Background()
	s, _, _, _ := newClockedStore(t, time.Date(2026, 11, 11, 3, 0, 0, 0, time.UTC))
	fund(t, s, "w-budi", 500_000, money.IDR)
	if out, err := s.Charge(ctx, chargeReq("ch-1", "w-budi", 200_000, "IDR"), money.DefaultLimits()); err != nil || out.Status != ledger.ChargeSucceeded {
		t.Fatalf("charge = %+v, %v", out, err)
	}
	if err := s.SetStatus(ctx, "w-budi", money.IDR, ledger.WalletFrozen); err != nil {
		t.Fatal(err)
	}
	out, err := s.Refund(ctx, refundReq("rf-1", "ch-1", 50_000))
	if err != nil || out.Status != ledger.RefundRejected || out.Reason != events.ReasonWalletFrozen {
		t.Fatalf("refund to frozen wallet = %+v, %v, want wallet_frozen", out, err)
	}
	c, _, _ := s.GetCharge(ctx, "ch-1")
	b, _, _ := s.GetBalance(ctx, "w-budi", money.IDR)
	if c.Refunded != 0 || b.Balance != 300_000 {
		t.Errorf("after rejection refunded = %d balance = %d, want 0 and 300000", c.Refunded, b.Balance)
	}
}

func TestRefundBeforeItsChargeWaitsThenDeadLetters(t *testing.T) {
	ctx := context.Background()
	s, _, _, clk := newClockedStore(t, time.Date(2026, 11, 11, 3, 0, 0, 0, time.UTC))
	fund(t, s, "w-citra", 1_000_00, money.MYR)
	early := refundReq("rf-early", "ch-late", 20_00)

	// Overtaken charge: retryable, and still retryable just inside the wait.
	for _, wait := range []time.Duration{0, time.Second, ledger.RefundChargeWaitMs*time.Millisecond - 2*time.Second} {
		clk.Advance(wait)
		_, err := s.Refund(ctx, early)
		if err == nil || fault.IsPermanent(err) || fault.ReasonOf(err) != ledger.ReasonChargeNotYetSeen {
			t.Fatalf("refund before its charge (+%s) err = %v, want transient %s", wait, err, ledger.ReasonChargeNotYetSeen)
		}
	}
	// The charge arrives within the wait: the refund then succeeds.
	if out, err := s.Charge(ctx, chargeReq("ch-late", "w-citra", 50_00, "MYR"), money.DefaultLimits()); err != nil || out.Status != ledger.ChargeSucceeded {
		t.Fatalf("charge = %+v, %v", out, err)
	}
	out, err := s.Refund(ctx, early)
	if err != nil || out.Status != ledger.RefundSucceeded || out.RefundedTotal != 20_00 {
		t.Fatalf("refund after its charge arrived = %+v, %v", out, err)
	}
	if got := balance(t, s, "w-citra", money.MYR); got != 1_000_00-50_00+20_00 {
		t.Errorf("balance = %d", got)
	}

	// A charge that never comes: permanent, with the reason, once the wait
	// measured from the first delivery is over.
	never := refundReq("rf-orphan", "ch-never", 1_00)
	if _, err := s.Refund(ctx, never); fault.IsPermanent(err) || err == nil {
		t.Fatalf("first delivery of an orphan refund err = %v, want transient", err)
	}
	clk.Advance(ledger.RefundChargeWaitMs * time.Millisecond)
	_, err = s.Refund(ctx, never)
	if !fault.IsPermanent(err) || fault.ReasonOf(err) != events.ReasonUnknownCharge {
		t.Fatalf("orphan refund after the wait err = %v, want permanent %s", err, events.ReasonUnknownCharge)
	}
}

// TestConcurrentPartialRefundsNeverPassTheCharge sends 100 refunds of one
// charge at once that together ask for twice the charge, through four
// stores: four pods, whose refunds race in DynamoDB.
func TestConcurrentPartialRefundsNeverPassTheCharge(t *testing.T) {
	ctx := context.Background()
	var meter table.Meter
	s, db, name, clk := newClockedStore(t, time.Date(2026, 11, 11, 3, 0, 0, 0, time.UTC), meter.Option())
	pods := []*ledger.Store{s, ledger.New(db, name, clk.Now), ledger.New(db, name, clk.Now), ledger.New(db, name, clk.Now)}
	const (
		refunds = 100
		charged = 10_000_00
		each    = 200_00 // 100 x 200.00 = 20,000.00: twice the charge
		funded  = 50_000_00
	)
	fund(t, s, "w-dao", funded, money.THB)
	if out, err := s.Charge(ctx, chargeReq("ch-big", "w-dao", charged, "THB"), money.DefaultLimits()); err != nil || out.Status != ledger.ChargeSucceeded {
		t.Fatalf("charge = %+v, %v", out, err)
	}
	before := meter.Snapshot()
	outs := make([]ledger.RefundOutcome, refunds)
	errs := make([]error, refunds)
	var wg sync.WaitGroup
	for i := range refunds {
		wg.Go(func() {
			outs[i], errs[i] = refundUntilDecided(ctx, pods[i%len(pods)], refundReq(fmt.Sprintf("rf-%03d", i), "ch-big", each))
		})
	}
	wg.Wait()
	d := meter.Snapshot().Sub(before)
	t.Logf("%d refunds of one charge from %d pods: %d DynamoDB round trips (%d TransactWriteItems, %d GetItem)",
		refunds, len(pods), d.RoundTrips, d.ByOp["TransactWriteItems"], d.ByOp["GetItem"])
	var paid, succeeded int64
	for i := range refunds {
		if errs[i] != nil {
			t.Fatalf("refund %d: %v", i, errs[i])
		}
		switch {
		case outs[i].Status == ledger.RefundSucceeded:
			succeeded++
			paid += each
		case outs[i].Reason != events.ReasonRefundExceedsCharge:
			t.Errorf("refund %d = %+v, want success or refund_exceeds_charge", i, outs[i])
		}
	}
	c, _, err := s.GetCharge(ctx, "ch-big")
	if err != nil {
		t.Fatal(err)
	}
	if c.Refunded != charged || paid != charged || succeeded != charged/each {
		t.Errorf("refunded %d, paid %d in %d refunds; want exactly the charge %d in %d", c.Refunded, paid, succeeded, charged, charged/each)
	}
	if got := balance(t, s, "w-dao", money.THB); got != funded {
		t.Errorf("payer balance = %d, want %d (charged then refunded in full)", got, funded)
	}
	// Every refunded_total reported is distinct: the refunds committed one
	// after another, each on the total the previous one left.
	totals := map[int64]bool{}
	for _, o := range outs {
		if o.Status == ledger.RefundSucceeded {
			if totals[o.RefundedTotal] {
				t.Errorf("refunded_total %d reported twice", o.RefundedTotal)
			}
			totals[o.RefundedTotal] = true
		}
	}
}

// TestConcurrentRefundsOfMixedAmounts: any rejected refund asked for more
// than what was left at the end, and what was paid is what was recorded.
func TestConcurrentRefundsOfMixedAmounts(t *testing.T) {
	ctx := context.Background()
	s, db, name, clk := newClockedStore(t, time.Date(2026, 11, 11, 3, 0, 0, 0, time.UTC))
	pods := []*ledger.Store{s, ledger.New(db, name, clk.Now)}
	const refunds, charged = 24, 600_00
	fund(t, s, "w-eka", 2_000_00, money.INR)
	if out, err := s.Charge(ctx, chargeReq("ch-mixed", "w-eka", charged, "INR"), money.DefaultLimits()); err != nil || out.Status != ledger.ChargeSucceeded {
		t.Fatalf("charge = %+v, %v", out, err)
	}
	rng := rand.New(rand.NewPCG(5, 11))
	amounts := make([]int64, refunds)
	for i := range amounts {
		amounts[i] = 1 + rng.Int64N(60_00) // about twice the charge in all
	}
	outs := make([]ledger.RefundOutcome, refunds)
	var failed atomic.Int64
	var wg sync.WaitGroup
	for i := range refunds {
		wg.Go(func() {
			var err error
			if outs[i], err = refundUntilDecided(ctx, pods[i%len(pods)], refundReq(fmt.Sprintf("rf-%02d", i), "ch-mixed", amounts[i])); err != nil {
				failed.Add(1)
				t.Errorf("refund %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if failed.Load() > 0 {
		t.FailNow()
	}
	c, _, _ := s.GetCharge(ctx, "ch-mixed")
	var paid int64
	for i, o := range outs {
		if o.Status == ledger.RefundSucceeded {
			paid += amounts[i]
		}
	}
	if paid != c.Refunded || c.Refunded > charged {
		t.Fatalf("paid %d, charge says refunded %d of %d", paid, c.Refunded, charged)
	}
	left := charged - c.Refunded
	for i, o := range outs {
		if o.Status == ledger.RefundRejected && amounts[i] <= left {
			t.Errorf("refund %d of %d rejected while %d is still refundable", i, amounts[i], left)
		}
	}
	if got := balance(t, s, "w-eka", money.INR); got != 2_000_00-charged+paid {
		t.Errorf("payer balance = %d, want %d", got, 2_000_00-charged+paid)
	}
}

// TestUnitsIndexedWithTheDateOfTheMoney: a charge and a refund enter the
// unsettled index on the local day their items carry, and a decline never
// does.
func TestUnitsIndexedWithTheDateOfTheMoney(t *testing.T) {
	ctx := context.Background()
	// 16:59:59 UTC is 23:59:59 in Jakarta.
	s, _, _, clk := newClockedStore(t, time.Date(2026, 11, 10, 16, 59, 59, 0, time.UTC))
	fund(t, s, "w-fajar", 1_000_000, money.IDR)
	req := chargeReq("ch-mid", "w-fajar", 100_000, "IDR")
	req.MerchantID = "m-jkt"
	if out, err := s.Charge(ctx, req, money.DefaultLimits()); err != nil || out.Status != ledger.ChargeSucceeded {
		t.Fatalf("charge = %+v, %v", out, err)
	}
	broke := chargeReq("ch-broke", "w-fajar", 5_000_000, "IDR")
	if out, err := s.Charge(ctx, broke, money.DefaultLimits()); err != nil || out.Status != ledger.ChargeDeclined {
		t.Fatalf("charge = %+v, %v", out, err)
	}
	clk.Advance(2 * time.Second) // 00:00:01 on the 11th in Jakarta
	if out, err := s.Refund(ctx, refundReq("rf-mid", "ch-mid", 10_000)); err != nil || out.Status != ledger.RefundSucceeded {
		t.Fatalf("refund = %+v, %v", out, err)
	}
	got := map[string]string{}
	for through, want := range map[string]int{"2026-11-09": 0, "2026-11-10": 1, "2026-11-11": 2} {
		n := 0
		for shard := range ledger.UnsettledShards {
			page, err := s.UnsettledUnits(ctx, "ID", shard, through, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, u := range page.Units {
				n++
				got[u.Kind+" "+u.ID] = u.BusinessDate + " " + u.MerchantID + " " + u.Currency + " " + strconv.FormatInt(u.Amount, 10)
			}
		}
		if n != want {
			t.Errorf("units through %s = %d, want %d", through, n, want)
		}
	}
	want := map[string]string{
		"C ch-mid": "2026-11-10 m-jkt IDR 100000",
		"R rf-mid": "2026-11-11 m-jkt IDR 10000",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("unsettled units (-want +got):\n%s", diff)
	}
}
