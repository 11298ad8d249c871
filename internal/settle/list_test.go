package settle_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sebelas/sebelas/internal/money"
	"github.com/sebelas/sebelas/internal/settle"
)

// Settlements lists exactly a market-day's settlements with their current
// figures, and GetRun says when the run is done: what the payout file reads.
func TestSettlementsListsTheMarketDay(t *testing.T) {
	e := newEnv(t)
	id, ph := mustMarket(t, "ID"), mustMarket(t, "PH")
	s := e.settler(settle.Options{})
	e.fund("w-1", 10_000_000, money.IDR)
	e.fund("w-p", 10_000_000, money.PHP)
	e.charge(nov10, "c-1", "m-a", "w-1", 100_000, money.IDR)
	e.charge(nov10.Add(time.Minute), "c-2", "m-b", "w-1", 40_000, money.IDR)
	e.refund(nov10.Add(2*time.Minute), "r-1", "c-2", 10_000)
	e.charge(nov10, "c-p", "m-a", "w-p", 7_000, money.PHP) // another market: another list
	e.clock.Set(nov11)
	if _, ok, err := s.GetRun(e.ctx, "ID", "2026-11-10"); err != nil || ok {
		t.Fatalf("run before it started: ok %v, %v", ok, err)
	}
	for _, m := range []string{"ID", "PH"} {
		mk := id
		if m == "PH" {
			mk = ph
		}
		if _, err := s.Run(e.ctx, mk, "2026-11-10", settle.RunOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	run, ok, err := s.GetRun(e.ctx, "ID", "2026-11-10")
	if err != nil || !ok || run.Status != settle.RunDone || run.Pass != 1 || run.FinishedAt.IsZero() {
		t.Fatalf("run = %+v, %v, %v; want done, pass 1", run, ok, err)
	}
	got := map[string]int64{}
	st, err := s.Settlements(e.ctx, "ID", "2026-11-10", func(r settle.Result) error {
		got[r.SettlementID] = r.Net
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{"S-m-a-2026-11-10-IDR": 100_000, "S-m-b-2026-11-10-IDR": 30_000}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("settlements (-want +got):\n%s", d)
	}
	if st.QueryPages != settle.ListShards || st.PointReads != 2 {
		t.Errorf("reads %+v, want %d query pages and 2 point reads", st, settle.ListShards)
	}
	n := 0
	if _, err := s.Settlements(context.Background(), "ID", "2026-11-09", func(settle.Result) error { n++; return nil }); err != nil || n != 0 {
		t.Errorf("another day listed %d settlements, %v", n, err)
	}
}
