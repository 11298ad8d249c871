package topup_test

import (
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/sebelas/sebelas/events"
	"github.com/sebelas/sebelas/internal/money"
	"github.com/sebelas/sebelas/internal/operator"
	"github.com/sebelas/sebelas/internal/topup"
)

// TestForgedReconcileTicksMoveNoMoneyWrongly: topup.reconcile is not
// signed (a PingSource sends it), so anyone on the cluster network can send
// it, as often as they like, with the largest limit. Its handling is
// harmless whoever sends it: it only looks at top-ups already held and due
// (bounded by the tick's limit, at most 1,000 by the schema), it moves
// money only as the operator's own answer says, and it is idempotent — a
// flood of ticks finishes a top-up once and asks about nothing early.
func TestForgedReconcileTicksMoveNoMoneyWrongly(t *testing.T) {
	f := newFixture(t, options{sim: operator.SimConfig{LatencyMs: 60_000}})
	f.fund("w-citra", 1_000_00, money.MYR)
	req := topupReq("tu-forged-tick", "w-citra", "+60 19-234 5678", "cd-reload-30", 30_00, "MYR")
	f.result(f.screened(req, events.DecisionAllow, "ev-1"), events.TypeTopupPending)
	held := bal{1_000_00 - 30_00, 30_00}

	forged := func(limit int, source string) cloudevents.Event {
		ev := f.tick()
		ev.SetSource(source)
		if limit > 0 {
			_ = ev.SetData(cloudevents.ApplicationJSON, map[string]any{"limit": limit})
		}
		return ev
	}
	// Before the recheck time: 50 forged ticks from anywhere ask the
	// operator nothing and change no balance.
	for i := range 50 {
		if status, reply := f.post(forged(1000, "/attacker")); status != 200 || reply != nil {
			t.Fatalf("forged tick %d: %d %v", i, status, reply)
		}
	}
	if got, q := f.bal("w-citra", money.MYR), f.sim.Stats().StatusQueries; got != held || q != 0 {
		t.Errorf("after forged ticks before due: balance %+v (want %+v), %d operator queries (want 0)", got, held, q)
	}
	// A limit over the schema's bound is refused, not obeyed.
	if status, _ := f.post(forged(1_000_000, "/attacker")); status != 400 {
		t.Errorf("tick with limit 1,000,000: status %d, want 400", status)
	}
	// Due: however many forged ticks arrive, the top-up is captured once,
	// as the operator says, and one outcome is published.
	f.clock.Advance(time.Duration(topup.RecheckMsDefault) * time.Millisecond)
	var published []cloudevents.Event
	for range 20 {
		if status, _ := f.post(forged(1000, "/attacker")); status != 200 {
			t.Fatalf("forged tick after due: %d", status)
		}
		published = append(published, f.pub.take()...)
	}
	if len(published) != 1 || published[0].Type() != events.TypeTopupSucceeded {
		t.Errorf("20 forged ticks published %v, want one topup.succeeded", typeNames(published))
	}
	if got := f.bal("w-citra", money.MYR); got != (bal{1_000_00 - 30_00, 0}) {
		t.Errorf("balance %+v, want 30.00 captured once", got)
	}
	if st := f.sim.Stats(); st.Submits != 1 {
		t.Errorf("%d submits to the operator, want 1", st.Submits)
	}
	f.audit()
}
