package ledger_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sebelas/sebelas/events"
	"github.com/sebelas/sebelas/internal/devtools/ddbtest"
	"github.com/sebelas/sebelas/internal/fault"
	"github.com/sebelas/sebelas/internal/ledger"
	"github.com/sebelas/sebelas/internal/money"
)

func TestMain(m *testing.M) { ddbtest.Main(m) }

func newStore(t *testing.T) *ledger.Store {
	t.Helper()
	db, name := ddbtest.New(t)
	return ledger.New(db, name, nil)
}

func fund(t *testing.T, s *ledger.Store, wallet string, minor int64, cur money.Currency) {
	t.Helper()
	if _, err := s.CashIn(context.Background(), "fund-"+wallet+"-"+string(cur), wallet, money.Amount{Minor: minor, Currency: cur}, "test"); err != nil {
		t.Fatalf("CashIn: %v", err)
	}
}

func balance(t *testing.T, s *ledger.Store, wallet string, cur money.Currency) int64 {
	t.Helper()
	b, ok, err := s.GetBalance(context.Background(), wallet, cur)
	if err != nil || !ok {
		t.Fatalf("GetBalance(%s, %s) = %v, %v", wallet, cur, ok, err)
	}
	return b.Balance
}

func chargeReq(id, payer string, amount int64, cur string) events.ChargeRequested {
	return events.ChargeRequested{
		ChargeID: id, Marketplace: "tokopedia", MerchantID: "m-flagship", PayerWallet: payer,
		Amount: amount, Currency: cur, RequestedAt: time.Date(2026, 11, 11, 0, 0, 1, 0, time.UTC),
	}
}

func TestChargeDebitsExactlyOnceUnderConcurrentRedelivery(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	fund(t, s, "w-ana", 1_000_000, money.IDR)
	req := chargeReq("ch-dup", "w-ana", 125_000, "IDR")

	const deliveries = 50
	outs := make([]ledger.ChargeOutcome, deliveries)
	errs := make([]error, deliveries)
	var wg sync.WaitGroup
	for i := range deliveries {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i], errs[i] = s.Charge(ctx, req, money.DefaultLimits())
		}()
	}
	wg.Wait()
	fresh := 0
	for i := range deliveries {
		// A transaction that collides with a concurrent one may be
		// cancelled as retryable; the Broker would redeliver it. Anything
		// else must be a success.
		if errs[i] != nil {
			if fault.IsPermanent(errs[i]) {
				t.Fatalf("delivery %d: permanent error %v", i, errs[i])
			}
			out, err := s.Charge(ctx, req, money.DefaultLimits())
			if err != nil {
				t.Fatalf("delivery %d retried: %v", i, err)
			}
			outs[i] = out
		}
		if outs[i].Status != ledger.ChargeSucceeded {
			t.Fatalf("delivery %d: status %q reason %q, want succeeded", i, outs[i].Status, outs[i].Reason)
		}
		if !outs[i].Replayed {
			fresh++
		}
	}
	if fresh != 1 {
		t.Errorf("%d deliveries applied the charge, want exactly 1", fresh)
	}
	if got, want := balance(t, s, "w-ana", money.IDR), int64(1_000_000-125_000); got != want {
		t.Errorf("balance = %d, want %d", got, want)
	}
	// Every replay reports the time of the first outcome.
	for i := range outs {
		if !outs[i].At.Equal(outs[0].At) {
			t.Errorf("delivery %d At = %v, want %v", i, outs[i].At, outs[0].At)
		}
	}
}

func TestChargeDeclines(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	fund(t, s, "w-budi", 50_00, money.PHP)
	fund(t, s, "w-frozen", 50_00, money.PHP)
	if err := s.SetStatus(ctx, "w-frozen", money.PHP, ledger.WalletFrozen); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		req        events.ChargeRequested
		wantReason string
	}{
		{"insufficient funds", chargeReq("ch-poor", "w-budi", 50_01, "PHP"), events.ReasonInsufficientFunds},
		{"frozen wallet", chargeReq("ch-frozen", "w-frozen", 1_00, "PHP"), events.ReasonWalletFrozen},
		{"currency mismatch", chargeReq("ch-myr", "w-budi", 1_00, "MYR"), events.ReasonCurrencyMismatch},
		{"unknown wallet", chargeReq("ch-ghost", "w-ghost", 1_00, "PHP"), events.ReasonWalletNotFound},
		{"above per-charge limit", chargeReq("ch-huge", "w-budi", 1_000_000_00, "PHP"), events.ReasonAmountLimit},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := s.Charge(ctx, tt.req, money.DefaultLimits())
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(struct{ Status, Reason string }{ledger.ChargeDeclined, tt.wantReason},
				struct{ Status, Reason string }{out.Status, out.Reason}); diff != "" {
				t.Errorf("outcome (-want +got):\n%s", diff)
			}
		})
	}
	if got := balance(t, s, "w-budi", money.PHP); got != 50_00 {
		t.Errorf("w-budi balance = %d after declines, want 5000 untouched", got)
	}
	if got := balance(t, s, "w-frozen", money.PHP); got != 50_00 {
		t.Errorf("w-frozen balance = %d, want 5000 untouched", got)
	}

	// A decline is final for its charge id: funding the wallet and
	// redelivering replays the decline instead of charging.
	if _, err := s.CashIn(ctx, "late-funds", "w-budi", money.Amount{Minor: 100_00, Currency: money.PHP}, "test"); err != nil {
		t.Fatal(err)
	}
	out, err := s.Charge(ctx, tests[0].req, money.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	if out.Status != ledger.ChargeDeclined || !out.Replayed || out.Reason != events.ReasonInsufficientFunds {
		t.Errorf("redelivery after funding = %+v, want replayed insufficient_funds decline", out)
	}
	if got := balance(t, s, "w-budi", money.PHP); got != 150_00 {
		t.Errorf("w-budi balance = %d, want 15000", got)
	}
}

func TestChargeConflictingReuseChangesNothing(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	fund(t, s, "w-citra", 10_000_00, money.MYR)
	first := chargeReq("ch-reused", "w-citra", 10_00, "MYR")
	if out, err := s.Charge(ctx, first, money.DefaultLimits()); err != nil || out.Status != ledger.ChargeSucceeded {
		t.Fatalf("first charge = %+v, %v", out, err)
	}
	for _, changed := range []events.ChargeRequested{
		chargeReq("ch-reused", "w-citra", 99_00, "MYR"), // other amount
		func() events.ChargeRequested { r := first; r.MerchantID = "m-other"; return r }(),
		func() events.ChargeRequested { r := first; r.PayerWallet = "w-other"; return r }(),
	} {
		out, err := s.Charge(ctx, changed, money.DefaultLimits())
		if err != nil {
			t.Fatal(err)
		}
		if !out.Conflict || out.Status != ledger.ChargeDeclined || out.Reason != events.ReasonConflict {
			t.Errorf("reuse with other content = %+v, want a conflict decline", out)
		}
	}
	if got := balance(t, s, "w-citra", money.MYR); got != 10_000_00-10_00 {
		t.Errorf("balance = %d, want only the first charge taken", got)
	}
	c, ok, err := s.GetCharge(ctx, "ch-reused")
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	if c.Amount != 10_00 || c.Status != ledger.ChargeSucceeded {
		t.Errorf("stored charge = %+v, want the first one unchanged", c)
	}
	// The same content again is still a plain duplicate.
	out, err := s.Charge(ctx, first, money.DefaultLimits())
	if err != nil || !out.Replayed || out.Status != ledger.ChargeSucceeded {
		t.Errorf("duplicate of the original = %+v, %v", out, err)
	}
}

func TestCashInIdempotent(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	amt := money.Amount{Minor: 500_00, Currency: money.THB}
	for i := range 3 {
		replayed, err := s.CashIn(ctx, "ci-1", "w-dao", amt, "bank")
		if err != nil {
			t.Fatal(err)
		}
		if replayed != (i > 0) {
			t.Errorf("attempt %d replayed = %v", i, replayed)
		}
	}
	if got := balance(t, s, "w-dao", money.THB); got != 500_00 {
		t.Errorf("balance = %d, want 50000 credited once", got)
	}
	_, err := s.CashIn(ctx, "ci-1", "w-dao", money.Amount{Minor: 1, Currency: money.THB}, "bank")
	if !fault.IsPermanent(err) {
		t.Errorf("cash-in id reused with other amount: err = %v, want permanent conflict", err)
	}
}
