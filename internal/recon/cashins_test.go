package recon_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sebelas/sebelas/internal/devtools/ddbtest"
	"github.com/sebelas/sebelas/internal/ledger"
	"github.com/sebelas/sebelas/internal/money"
	"github.com/sebelas/sebelas/internal/recon"
)

func TestCashInsEveryInjectedDiscrepancyAndNothingElse(t *testing.T) {
	ctx := context.Background()
	c := &clock{t: periodFrom.Add(3 * time.Hour)}
	db, name := ddbtest.New(t)
	l := ledger.New(db, name, c.Now)
	for i, id := range []string{"k-ok1", "k-ok2", "k-dup", "k-amt", "k-unbanked"} {
		if _, err := l.CashIn(ctx, id, fmt.Sprintf("w-%d", i), money.Amount{Minor: 100_000, Currency: money.PHP}, "bank-bdo"); err != nil {
			t.Fatal(err)
		}
		c.Advance(time.Minute)
	}
	stmt := strings.Join([]string{
		"bank_ref,cashin_id,amount,currency,booked_at",
		"BDO-1,k-ok1,100000,PHP,2026-11-11T02:59:00Z",
		"BDO-2,k-ok2,100000,PHP,2026-11-11T03:00:00Z",
		"BDO-3,k-dup,100000,PHP,2026-11-11T03:01:00Z",
		"BDO-4,k-amt,150000,PHP,2026-11-11T03:02:00Z",
		"BDO-5,k-dup,100000,PHP,2026-11-11T03:03:00Z",
		"BDO-6,k-never,70000,PHP,2026-11-11T03:04:00Z",
		"BDO-7,k-bad,-5,PHP,2026-11-11T03:05:00Z",
		"BDO-8,k-bad2,5,php,2026-11-11T03:05:00Z",
		"",
	}, "\n") + "\n"
	st, err := recon.ReadCashInStatement(strings.NewReader(stmt))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := recon.CashIns(ctx, l, db, st, recon.CashInOptions{From: periodFrom, To: periodTo, Edge: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	want := []got{
		{recon.AmountMismatch, "k-amt", []int{5}},
		{recon.Duplicate, "k-dup", []int{4, 6}},
		{recon.MissingInLedger, "k-never", []int{7}},
		{recon.MissingInStatement, "k-unbanked", nil},
	}
	if d := cmp.Diff(want, findings(rep)); d != "" {
		var b strings.Builder
		_ = rep.Write(&b)
		t.Errorf("findings (-want +got):\n%s\n%s", d, b.String())
	}
	var skipped []int
	for _, e := range rep.Skipped.Kept {
		skipped = append(skipped, e.Line)
	}
	if d := cmp.Diff([]int{8, 9, 10}, skipped); d != "" {
		t.Errorf("skipped lines (-want +got):\n%s", d)
	}
	if rep.Matched != 2 || rep.Lines != 9 {
		t.Errorf("matched %d of %d lines, want 2 of 9", rep.Matched, rep.Lines)
	}
}
