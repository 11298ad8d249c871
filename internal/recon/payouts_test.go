package recon_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sebelas/sebelas/events"
	"github.com/sebelas/sebelas/internal/devtools/ddbtest"
	"github.com/sebelas/sebelas/internal/ledger"
	"github.com/sebelas/sebelas/internal/market"
	"github.com/sebelas/sebelas/internal/money"
	"github.com/sebelas/sebelas/internal/recon"
	"github.com/sebelas/sebelas/internal/settle"
)

type payWorld struct {
	t      *testing.T
	ctx    context.Context
	clock  *clock
	ledger *ledger.Store
	settle *settle.Store
	ph     market.Market
	n      int
}

func newPayWorld(t *testing.T) *payWorld {
	db, name := ddbtest.New(t)
	c := &clock{t: time.Date(2026, 11, 10, 3, 0, 0, 0, time.UTC)}
	ph, err := market.ByCode("PH")
	if err != nil {
		t.Fatal(err)
	}
	w := &payWorld{t: t, ctx: context.Background(), clock: c, ledger: ledger.New(db, name, c.Now),
		settle: settle.New(db, name, settle.Options{Now: c.Now}), ph: ph}
	if _, err := w.ledger.CashIn(w.ctx, "k-1", "w-1", money.Amount{Minor: 100_000_000, Currency: money.PHP}, "test"); err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *payWorld) charge(at time.Time, merchant string, amount int64) string {
	w.t.Helper()
	w.n++
	id := fmt.Sprintf("c-%d", w.n)
	w.clock.Set(at)
	out, err := w.ledger.Charge(w.ctx, events.ChargeRequested{ChargeID: id, Marketplace: "mp", MerchantID: merchant,
		PayerWallet: "w-1", Amount: amount, Currency: "PHP", RequestedAt: at}, money.DefaultLimits())
	if err != nil || out.Status != ledger.ChargeSucceeded {
		w.t.Fatalf("charge: %+v, %v", out, err)
	}
	return id
}

func (w *payWorld) run(restart bool) {
	w.t.Helper()
	w.clock.Set(time.Date(2026, 11, 11, 3, 0, 0, 0, time.UTC))
	if _, err := w.settle.Run(w.ctx, w.ph, "2026-11-10", settle.RunOptions{Restart: restart}); err != nil {
		w.t.Fatal(err)
	}
}

// A run pass writes one payout file, once; a later pass pays only what
// the earlier files did not; the bank's report on them reconciles, and every
// injected discrepancy in it is reported and nothing else.
func TestPayoutFileOncePerPassAndItsReconcile(t *testing.T) {
	w := newPayWorld(t)
	day := time.Date(2026, 11, 10, 2, 0, 0, 0, time.UTC) // 10:00 in Manila
	w.charge(day, "m-a", 100_000)
	w.charge(day.Add(time.Minute), "m-a", 50_000)
	w.charge(day.Add(2*time.Minute), "m-b", 70_000)
	w.charge(day.Add(3*time.Minute), "m-c", 9_000)
	refunded := w.charge(day.Add(4*time.Minute), "m-d", 20_000)
	w.clock.Set(day.Add(5 * time.Minute))
	if out, err := w.ledger.Refund(w.ctx, events.RefundRequested{RefundID: "r-1", ChargeID: refunded, Marketplace: "mp",
		Amount: 20_000, Reason: "returned", RequestedAt: w.clock.Now()}); err != nil || out.Status != ledger.RefundSucceeded {
		t.Fatalf("refund: %+v, %v", out, err)
	}
	dir := t.TempDir()
	if _, err := recon.WritePayouts(w.ctx, w.settle, w.ph, "2026-11-10", dir); err == nil {
		t.Fatal("payouts written before the run")
	}
	w.run(false)
	pf, err := recon.WritePayouts(w.ctx, w.settle, w.ph, "2026-11-10", dir)
	if err != nil {
		t.Fatal(err)
	}
	want1 := "merchant_id,currency,amount,settlement_ids\n" +
		"m-a,PHP,150000,S-m-a-2026-11-10-PHP\n" +
		"m-b,PHP,70000,S-m-b-2026-11-10-PHP\n" +
		"m-c,PHP,9000,S-m-c-2026-11-10-PHP\n"
	if d := cmp.Diff(want1, read(t, pf.Path)); d != "" || pf.Pass != 1 || pf.Total != 229_000 || pf.AlreadyWritten {
		t.Errorf("pass 1 file %s (-want +got):\n%s\n%+v", pf.Path, d, pf)
	}
	again, err := recon.WritePayouts(w.ctx, w.settle, w.ph, "2026-11-10", dir)
	if err != nil || !again.AlreadyWritten {
		t.Errorf("second write: %+v, %v; want already written", again, err)
	}
	if n, _ := filepath.Glob(filepath.Join(dir, "*")); len(n) != 1 {
		t.Errorf("files %v, want one", n)
	}
	// A charge of the 10th that committed after the run (a pod's clock
	// behind), settled by the operator's re-run: pass 2 pays only it.
	w.charge(day.Add(time.Hour), "m-b", 5_000)
	w.run(true)
	pf2, err := recon.WritePayouts(w.ctx, w.settle, w.ph, "2026-11-10", dir)
	if err != nil {
		t.Fatal(err)
	}
	want2 := "merchant_id,currency,amount,settlement_ids\nm-b,PHP,5000,S-m-b-2026-11-10-PHP\n"
	if d := cmp.Diff(want2, read(t, pf2.Path)); d != "" || pf2.Pass != 2 {
		t.Errorf("pass 2 file (-want +got):\n%s", d)
	}

	// The bank's report on both files.
	report := func(lines ...string) recon.Report {
		t.Helper()
		st, err := recon.ReadPayoutReport(strings.NewReader("merchant_id,currency,amount,settlement_ids,status,bank_ref\n" + strings.Join(lines, "\n") + "\n"))
		if err != nil {
			t.Fatal(err)
		}
		rep, err := recon.Payouts(w.ctx, w.settle, w.ph, "2026-11-10", st)
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	clean := report(
		"m-a,PHP,150000,S-m-a-2026-11-10-PHP,paid,BPI-1",
		"m-b,PHP,70000,S-m-b-2026-11-10-PHP,paid,BPI-2",
		"m-c,PHP,9000,S-m-c-2026-11-10-PHP,paid,BPI-3",
		"m-b,PHP,5000,S-m-b-2026-11-10-PHP,paid,BPI-4")
	if !clean.OK() || clean.Matched != 3 {
		var b strings.Builder
		_ = clean.Write(&b)
		t.Errorf("clean report:\n%s", b.String())
	}
	bad := report(
		"m-a,PHP,150001,S-m-a-2026-11-10-PHP,paid,BPI-1", // wrong amount (line 2)
		"m-b,PHP,70000,S-m-b-2026-11-10-PHP,rejected,BPI-2",
		"m-b,PHP,5000,S-m-b-2026-11-10-PHP,paid,BPI-4",
		"m-x,PHP,1000,S-m-x-2026-11-10-PHP,paid,BPI-5", // a transfer for nothing
		"m-b,PHP,5000,S-m-b-2026-11-10-PHP,paid,BPI-6", // line 6: the same transfer again
		"m-c,PHP,9000,S-m-c-2026-11-10-PHP,sent,BPI-3") // line 7: bad status: skipped, so m-c is missing
	want := []got{
		{recon.AmountMismatch, "S-m-a-2026-11-10-PHP", []int{2}},
		{recon.Duplicate, "S-m-b-2026-11-10-PHP", []int{4, 6}},
		{recon.MissingInLedger, "S-m-x-2026-11-10-PHP", []int{5}},
		{recon.MissingInStatement, "S-m-c-2026-11-10-PHP", nil},
		{recon.StatusMismatch, "S-m-b-2026-11-10-PHP", []int{3, 4}},
	}
	if d := cmp.Diff(want, findings(bad)); d != "" {
		var b strings.Builder
		_ = bad.Write(&b)
		t.Errorf("findings (-want +got):\n%s\n%s", d, b.String())
	}
	if bad.Skipped.Total != 1 || bad.Skipped.Kept[0].Line != 7 {
		t.Errorf("skipped %+v, want line 7", bad.Skipped)
	}
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
