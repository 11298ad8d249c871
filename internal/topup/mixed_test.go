package topup_test

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sebelas/sebelas/events"
	"github.com/sebelas/sebelas/internal/money"
	"github.com/sebelas/sebelas/internal/operator"
	"github.com/sebelas/sebelas/internal/topup"
)

// TestHeldReturnsToZeroOnceAllFinal runs a mixed workload against an
// operator that rejects, answers late, loses answers and goes down, with
// duplicate deliveries, then ticks reconcile until every top-up is final.
// Then: no money is held, every wallet lost exactly what its succeeded
// top-ups cost, every succeeded top-up was delivered by the operator and
// no failed one was, and each reconciled outcome was published once.
func TestHeldReturnsToZeroOnceAllFinal(t *testing.T) {
	const (
		seed     = 11
		topups   = 60
		ticksMax = 40
	)
	f := newFixture(t, options{
		sim: operator.SimConfig{FailureRate: 0.2, UnknownRate: 0.25, PendingRate: 0.25, ResolveMs: 90_000, Seed: seed},
		// A breaker that never opens here: this test is about holds.
		breaker: operator.BreakerConfig{Failures: 1_000, OpenMs: 1},
	})
	rng := rand.New(rand.NewPCG(seed, seed))
	type phone struct {
		msisdn, product, cur string
		amount               int64
	}
	phones := []phone{
		{"0812-3456-7890", "tsel-pulsa-50k", "IDR", 0},
		{"0856 1234 5678", "", "IDR", 25_000},
		{"0917 123 4567", "globe-load-100", "PHP", 0},
		{"019-234 5678", "cd-reload-30", "MYR", 0},
		{"083 123 4567", "", "THB", 150_00},
		{"01712-345678", "gp-data-10gb-30d", "BDT", 0},
		{"0300 1234567", "", "PKR", 500},
		{"+91 98765 43210", "airtel-299-28d", "INR", 0},
	}
	funded := map[string]int64{}
	wallets := map[string]money.Currency{}
	for i, p := range phones {
		w := fmt.Sprintf("w-mix-%d", i)
		cur := money.Currency(p.cur)
		funded[w] = 5_000_000
		wallets[w] = cur
		f.fund(w, funded[w], cur)
	}
	var ids []string
	for i := range topups {
		k := rng.IntN(len(phones))
		p := phones[k]
		req := topupReq(fmt.Sprintf("tu-mix-%03d", i), fmt.Sprintf("w-mix-%d", k), p.msisdn, p.product, p.amount, p.cur)
		ids = append(ids, req.TopupID)
		deliveries := 1 + rng.IntN(2)
		for d := range deliveries {
			status, _ := f.post(f.screened(req, events.DecisionAllow, fmt.Sprintf("ev-%s-%d", req.TopupID, d)))
			if status != http.StatusOK {
				t.Fatalf("%s delivery %d: status %d", req.TopupID, d, status)
			}
		}
		if i%10 == 9 {
			f.clock.Advance(20 * time.Second)
		}
		if i == topups/2 {
			// Midway, one operator goes down for a while.
			f.sim.SetOutage("telkomsel", true)
		}
	}
	f.sim.SetOutage("telkomsel", false)
	// With top-ups held and pending, money is still accounted for.
	if r := f.audit(); func() int64 {
		var held int64
		for _, t := range r.Currencies {
			held += t.Held
		}
		return held
	}() == 0 {
		t.Error("nothing held mid-run: the workload does not exercise holds")
	}

	published := map[string]int{}
	open := -1
	for tick := 0; tick < ticksMax && open != 0; tick++ {
		f.clock.Advance(time.Minute)
		for _, ev := range f.reconcile() {
			published[ev.ID()]++
		}
		open = 0
		for _, id := range ids {
			if !f.record(id).Final() {
				open++
			}
		}
	}
	if open != 0 {
		t.Fatalf("%d top-ups still open after %d ticks", open, ticksMax)
	}

	spent := map[string]int64{}
	var succeeded, failed int
	for _, id := range ids {
		r := f.record(id)
		delivered := f.sim.Delivered(id)
		switch r.Status {
		case topup.StatusSucceeded:
			succeeded++
			spent[r.Payer] += r.Amount
			if !delivered {
				t.Errorf("%s captured but the operator never delivered it", id)
			}
		case topup.StatusFailed:
			failed++
			if delivered {
				t.Errorf("%s failed (%s) but the operator delivered it", id, r.Reason)
			}
		}
		// Final: out of the in-flight and outbox partitions; a top-up that
		// was held stays in the submitted index (TS#) for reconciliation.
		if strings.HasPrefix(r.GSI1PK, "TP#") {
			t.Errorf("%s still indexed under %s", id, r.GSI1PK)
		}
	}
	for w, cur := range wallets {
		got := f.bal(w, cur)
		if got.Held != 0 {
			t.Errorf("%s holds %d once every top-up is final", w, got.Held)
		}
		if got.Balance != funded[w]-spent[w] {
			t.Errorf("%s balance %d, want %d funded - %d spent", w, got.Balance, funded[w], spent[w])
		}
	}
	for id, n := range published {
		if n != 1 {
			t.Errorf("event %s published %d times", id, n)
		}
	}
	if succeeded == 0 || failed == 0 || len(published) == 0 {
		t.Errorf("workload too tame: %d succeeded, %d failed, %d reconciled", succeeded, failed, len(published))
	}
	f.audit()
	st := f.sim.Stats()
	t.Logf("%d top-ups: %d succeeded, %d failed, %d finished by reconcile; operator: %+v", topups, succeeded, failed, len(published), st)
	if st.Submits+st.Refused > int64(topups) {
		t.Errorf("%d calls reached the operator for %d top-ups", st.Submits+st.Refused, topups)
	}
}
