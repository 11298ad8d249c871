package topup_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/sebelas/sebelas/events"
	"github.com/sebelas/sebelas/internal/money"
	"github.com/sebelas/sebelas/internal/operator"
	"github.com/sebelas/sebelas/internal/signing"
	"github.com/sebelas/sebelas/internal/topup"
)

func TestTopupSucceedsOnceAndReplays(t *testing.T) {
	f := newFixture(t, options{})
	f.fund("w-ana", 1_000_000, money.IDR)
	req := topupReq("tu-ok", "w-ana", "0812-3456-7890", "tsel-pulsa-50k", 0, "IDR")

	res, id := f.result(f.screened(req, events.DecisionAllow, "ev-1"), events.TypeTopupSucceeded)
	want := events.TopupResult{
		TopupID: "tu-ok", PayerWallet: "w-ana", MSISDNMasked: "+62812****7890", Operator: "Telkomsel",
		ProductID: "tsel-pulsa-50k", Amount: 50_000, Currency: "IDR", At: res.At,
	}
	if diff := cmp.Diff(want, res, cmpopts.IgnoreFields(events.TopupResult{}, "OperatorRef")); diff != "" {
		t.Errorf("topup.succeeded (-want +got):\n%s", diff)
	}
	if !strings.HasPrefix(res.OperatorRef, "SIM-TELKOMSEL-") {
		t.Errorf("operator_ref = %q, want the simulator's receipt", res.OperatorRef)
	}
	if got := f.bal("w-ana", money.IDR); got != (bal{950_000, 0}) {
		t.Errorf("balance = %+v, want {950000 0}", got)
	}
	// A redelivery under a new CloudEvent id replays the very same event,
	// takes nothing more and does not call the operator again.
	res2, id2 := f.result(f.screened(req, events.DecisionAllow, "ev-2"), events.TypeTopupSucceeded)
	if id2 != id || res2.OperatorRef != res.OperatorRef {
		t.Errorf("replay id %s ref %s, want %s %s", id2, res2.OperatorRef, id, res.OperatorRef)
	}
	if got := f.bal("w-ana", money.IDR); got != (bal{950_000, 0}) {
		t.Errorf("balance after the replay = %+v", got)
	}
	// The product is withdrawn from the catalog: a late redelivery still
	// replays its outcome instead of being dead-lettered.
	c, err := topup.ParseCatalog([]byte("version: withdrawn\nmarkets: [{market: ID, operators: [{operator: telkomsel, products: [{id: tsel-pulsa-10k, kind: airtime, face: 10000}]}]}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	f.h.Catalog = c
	if _, id3 := f.result(f.screened(req, events.DecisionAllow, "ev-3"), events.TypeTopupSucceeded); id3 != id {
		t.Errorf("replay after the catalog changed: id %s, want %s", id3, id)
	}
	if st := f.sim.Stats(); st.Submits != 1 || st.Replays != 0 {
		t.Errorf("simulator saw %d submits and %d replays, want 1 and 0", st.Submits, st.Replays)
	}
	if r := f.record("tu-ok"); r.Status != topup.StatusSucceeded || !strings.HasPrefix(r.GSI1PK, "TS#2026-11-10#") {
		t.Errorf("record status %s gsi1pk %q, want succeeded and in the submitted index only", r.Status, r.GSI1PK)
	}
}

func TestGoldenScreenedSampleTopsUp(t *testing.T) {
	f := newFixture(t, options{})
	raw, ok := events.Sample(events.TypeTopupScreened)
	if !ok {
		t.Fatal("no golden topup.screened sample")
	}
	var sc events.TopupScreened
	if err := json.Unmarshal(raw, &sc); err != nil {
		t.Fatal(err)
	}
	f.fund(sc.Topup.PayerWallet, 500_00, money.PHP)
	// The sample is a review; allowed, it is an open PHP 100.00 Globe load.
	res, _ := f.result(f.screened(sc.Topup, events.DecisionAllow, "ev-golden"), events.TypeTopupSucceeded)
	if res.Amount != 100_00 || res.Operator != "Globe" || res.MSISDNMasked != "+63917***0456" {
		t.Errorf("result %+v", res)
	}
	if got := f.bal(sc.Topup.PayerWallet, money.PHP); got != (bal{400_00, 0}) {
		t.Errorf("balance = %+v", got)
	}
}

func TestOperatorRejectsAndTheHoldIsReleased(t *testing.T) {
	f := newFixture(t, options{sim: operator.SimConfig{FailureRate: 1}})
	f.fund("w-budi", 100_000, money.PKR)
	req := topupReq("tu-no", "w-budi", "0300 1234567", "", 500, "PKR")
	res, _ := f.result(f.screened(req, events.DecisionAllow, "ev-1"), events.TypeTopupFailed)
	if res.Reason != topup.ReasonOperatorRejected || res.Amount != 500 || res.Operator != "Jazz" {
		t.Errorf("topup.failed = %+v, want operator_rejected for 500", res)
	}
	if got := f.bal("w-budi", money.PKR); got != (bal{100_000, 0}) {
		t.Errorf("balance = %+v, want all of it back", got)
	}
	if r := f.record("tu-no"); r.OperatorCode != operator.CodeRejected || !strings.HasPrefix(r.GSI1PK, "TS#") {
		t.Errorf("record %+v", r)
	}
}

// TestTimeoutThenReconcile: the operator takes the request but answers too
// late; the top-up is pending with its money held, and the reconcile tick
// finds out from the operator what happened.
func TestTimeoutThenReconcile(t *testing.T) {
	tests := []struct {
		name       string
		sim        operator.SimConfig
		wantType   string
		wantReason string
		wantBal    bal
	}{
		{"delivered", operator.SimConfig{LatencyMs: 60_000}, events.TypeTopupSucceeded, "", bal{1_000_00 - 30_00, 0}},
		{"rejected", operator.SimConfig{LatencyMs: 60_000, FailureRate: 1}, events.TypeTopupFailed, topup.ReasonOperatorRejected, bal{1_000_00, 0}},
		{"answer lost, delivered", operator.SimConfig{UnknownRate: 1}, events.TypeTopupSucceeded, "", bal{1_000_00 - 30_00, 0}},
		{"answer lost, rejected", operator.SimConfig{UnknownRate: 1, FailureRate: 1}, events.TypeTopupFailed, topup.ReasonOperatorRejected, bal{1_000_00, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, options{sim: tt.sim})
			f.fund("w-citra", 1_000_00, money.MYR)
			req := topupReq("tu-slow", "w-citra", "+60 19-234 5678", "cd-reload-30", 30_00, "MYR")
			res, _ := f.result(f.screened(req, events.DecisionAllow, "ev-1"), events.TypeTopupPending)
			if res.Amount != 30_00 || res.Operator != "CelcomDigi" {
				t.Errorf("topup.pending = %+v", res)
			}
			if got := f.bal("w-citra", money.MYR); got != (bal{1_000_00 - 30_00, 30_00}) {
				t.Errorf("balance while pending = %+v, want 30.00 held", got)
			}
			// A redelivery while pending replays pending and calls nobody.
			f.result(f.screened(req, events.DecisionAllow, "ev-2"), events.TypeTopupPending)

			// Not due yet: the tick leaves it alone.
			if evs := f.reconcile(); len(evs) != 0 || f.sim.Stats().StatusQueries != 0 {
				t.Errorf("a tick before the recheck time published %d events, asked %d times", len(evs), f.sim.Stats().StatusQueries)
			}
			f.clock.Advance(time.Duration(topup.RecheckMsDefault) * time.Millisecond)
			evs := f.reconcile()
			if len(evs) != 1 || evs[0].Type() != tt.wantType {
				t.Fatalf("reconcile published %v, want one %s", typeNames(evs), tt.wantType)
			}
			if got := decodeResult(t, evs[0]); got.Reason != tt.wantReason || got.TopupID != "tu-slow" {
				t.Errorf("published %+v, want reason %q", got, tt.wantReason)
			}
			if got := f.bal("w-citra", money.MYR); got != tt.wantBal {
				t.Errorf("balance = %+v, want %+v", got, tt.wantBal)
			}
			// The outbox is empty and the top-up final: the next tick does
			// nothing, and a redelivery replays the reconciled outcome
			// with the id reconcile published.
			if evs2 := f.reconcile(); len(evs2) != 0 {
				t.Errorf("second tick published %v", typeNames(evs2))
			}
			_, id := f.result(f.screened(req, events.DecisionAllow, "ev-3"), tt.wantType)
			if id != evs[0].ID() {
				t.Errorf("replay id %s, reconcile published %s", id, evs[0].ID())
			}
			if st := f.sim.Stats(); st.Submits != 1 {
				t.Errorf("%d submits, want 1", st.Submits)
			}
		})
	}
}

func typeNames(evs []cloudevents.Event) []string {
	var out []string
	for _, ev := range evs {
		out = append(out, ev.Type())
	}
	return out
}

// TestPendingGivenUpAtTheDeadline: an operator that never decides keeps the
// money held only until the deadline.
func TestPendingGivenUpAtTheDeadline(t *testing.T) {
	f := newFixture(t, options{sim: operator.SimConfig{PendingRate: 1, ResolveMs: 3_600_000}})
	f.fund("w-dao", 1_000_00, money.THB)
	req := topupReq("tu-stuck", "w-dao", "083 123 4567", "dtac-topup-100", 0, "THB")
	res, _ := f.result(f.screened(req, events.DecisionAllow, "ev-1"), events.TypeTopupPending)
	if res.Reason != topup.ReasonOperatorPending {
		t.Errorf("pending reason %q", res.Reason)
	}
	for range 3 {
		f.clock.Advance(time.Duration(topup.RecheckMsDefault) * time.Millisecond)
		if evs := f.reconcile(); len(evs) != 0 {
			t.Fatalf("published %v before the deadline", typeNames(evs))
		}
	}
	if r := f.record("tu-stuck"); r.Status != topup.StatusPending || r.Checks != 3 {
		t.Errorf("record status %s checks %d, want pending after 3 checks", r.Status, r.Checks)
	}
	f.clock.Advance(time.Duration(topup.PendingMaxMsDefault) * time.Millisecond)
	evs := f.reconcile()
	if len(evs) != 1 || evs[0].Type() != events.TypeTopupFailed || decodeResult(t, evs[0]).Reason != topup.ReasonOperatorTimeout {
		t.Fatalf("at the deadline: %v, want topup.failed operator_timeout", typeNames(evs))
	}
	if got := f.bal("w-dao", money.THB); got != (bal{1_000_00, 0}) {
		t.Errorf("balance = %+v, want all released", got)
	}
}

// dropSubmits loses every submit before it reaches the operator (as a
// crash right after the hold would) and passes status queries on.
type dropSubmits struct{ operator.Adapter }

func (dropSubmits) Submit(context.Context, operator.Request) operator.Result {
	return operator.Result{Outcome: operator.Unknown, Code: operator.CodeTimeout}
}

// TestNeverReceivedIsReleasedAfterExpiry: the operator has no record of the
// top-up; once the request has expired it never will, and the hold goes
// back.
func TestNeverReceivedIsReleasedAfterExpiry(t *testing.T) {
	f := newFixture(t, options{adapter: func(a operator.Adapter) operator.Adapter { return dropSubmits{a} }})
	f.fund("w-eka", 100_000, money.IDR)
	req := topupReq("tu-lost", "w-eka", "0817 1234 5678", "xl-pulsa-50k", 0, "IDR")
	f.result(f.screened(req, events.DecisionAllow, "ev-1"), events.TypeTopupPending)
	f.clock.Advance(time.Duration(topup.RecheckMsDefault) * time.Millisecond)
	if evs := f.reconcile(); len(evs) != 0 {
		t.Fatalf("published %v before the request expired", typeNames(evs))
	}
	f.clock.Advance(time.Duration(topup.RequestTTLMsDefault) * time.Millisecond)
	evs := f.reconcile()
	if len(evs) != 1 || decodeResult(t, evs[0]).Reason != topup.ReasonOperatorNotReceived {
		t.Fatalf("after expiry: %v, want topup.failed operator_not_received", typeNames(evs))
	}
	if got := f.bal("w-eka", money.IDR); got != (bal{100_000, 0}) {
		t.Errorf("balance = %+v", got)
	}
}

// gate holds every submit at the simulator's door until released.
type gate struct {
	arrived chan struct{}
	release chan struct{}
}

func newGate() *gate { return &gate{arrived: make(chan struct{}, 100), release: make(chan struct{})} }

func (g *gate) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			g.arrived <- struct{}{}
			<-g.release
		}
		next.ServeHTTP(w, r)
	})
}

// TestDuplicateWhileInFlight: while the first delivery waits on the
// operator, redeliveries are told to come back (503) and never call the
// operator; afterwards they replay the outcome.
func TestDuplicateWhileInFlight(t *testing.T) {
	g := newGate()
	cfg := testConfig()
	cfg.OperatorTimeoutMs = 30_000 // the gate, not the timeout, ends the wait
	cfg.StaleHeldMs, cfg.RequestTTLMs = 60_000, 90_000
	f := newFixture(t, options{simWrap: g.wrap, config: cfg})
	f.fund("w-fajar", 100_000_00, money.INR)
	req := topupReq("tu-dup", "w-fajar", "+91 98765 43210", "airtel-299-28d", 0, "INR")

	type answer struct {
		status int
		reply  *cloudevents.Event
	}
	first := make(chan answer, 1)
	go func() {
		s, r := f.post(f.screened(req, events.DecisionAllow, "ev-first"))
		first <- answer{s, r}
	}()
	<-g.arrived // the first delivery is at the operator
	for i := range 5 {
		status, reply := f.post(f.screened(req, events.DecisionAllow, "ev-dup-"+string(rune('a'+i))))
		if status != http.StatusServiceUnavailable || reply != nil {
			t.Errorf("duplicate %d while in flight: status %d reply %v, want 503", i, status, reply)
		}
	}
	if got := f.bal("w-fajar", money.INR); got != (bal{100_000_00 - 299_00, 299_00}) {
		t.Errorf("balance in flight = %+v, want one hold of 299.00", got)
	}
	close(g.release)
	a := <-first
	if a.status != http.StatusOK || a.reply == nil || a.reply.Type() != events.TypeTopupSucceeded {
		t.Fatalf("first delivery: %d %v", a.status, a.reply)
	}
	_, id := f.result(f.screened(req, events.DecisionAllow, "ev-dup-late"), events.TypeTopupSucceeded)
	if id != a.reply.ID() {
		t.Errorf("late duplicate replayed id %s, want %s", id, a.reply.ID())
	}
	if st := f.sim.Stats(); st.Submits != 1 || st.Replays != 0 {
		t.Errorf("operator got %d submits and %d resubmits, want 1 and 0", st.Submits, st.Replays)
	}
	if len(g.arrived) != 0 {
		t.Errorf("%d more submits reached the operator", len(g.arrived))
	}
	if got := f.bal("w-fajar", money.INR); got != (bal{100_000_00 - 299_00, 0}) {
		t.Errorf("balance = %+v, want charged once", got)
	}
}

// TestConcurrentDeliveriesSubmitOnce: many deliveries of one top-up at the
// same moment start one hold and one submit.
func TestConcurrentDeliveriesSubmitOnce(t *testing.T) {
	f := newFixture(t, options{sim: operator.SimConfig{LatencyMs: 50}})
	f.fund("w-gita", 1_000_00, money.BDT)
	req := topupReq("tu-race", "w-gita", "01712-345678", "gp-data-10gb-30d", 0, "BDT")
	const deliveries = 12
	statuses := make([]int, deliveries)
	var wg sync.WaitGroup
	for i := range deliveries {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i], _ = f.post(f.screened(req, events.DecisionAllow, "ev-"+string(rune('a'+i))))
		}()
	}
	wg.Wait()
	for i, s := range statuses {
		if s != http.StatusOK && s != http.StatusServiceUnavailable && s != http.StatusTooManyRequests {
			t.Errorf("delivery %d: status %d, want 200 or a retryable status", i, s)
		}
	}
	// The Broker's retries: every one ends in the same outcome.
	_, id := f.result(f.screened(req, events.DecisionAllow, "ev-retry"), events.TypeTopupSucceeded)
	_, id2 := f.result(f.screened(req, events.DecisionAllow, "ev-retry-2"), events.TypeTopupSucceeded)
	if id != id2 {
		t.Errorf("replays carry ids %s and %s", id, id2)
	}
	if st := f.sim.Stats(); st.Submits != 1 || st.Replays != 0 {
		t.Errorf("operator got %d submits and %d resubmits, want 1 and 0", st.Submits, st.Replays)
	}
	if got := f.bal("w-gita", money.BDT); got != (bal{1_000_00 - 499_00, 0}) {
		t.Errorf("balance = %+v, want one capture of 499.00", got)
	}
}

// TestOutageTripsTheBreaker: an operator that is down fails the first
// top-ups (released at once); then its breaker opens and the next ones
// fail before any hold, without calling it. Other operators keep working,
// and after the open time one probe finds the operator back.
func TestOutageTripsTheBreaker(t *testing.T) {
	f := newFixture(t, options{
		sim:     operator.SimConfig{Outages: []string{"telkomsel"}},
		breaker: operator.BreakerConfig{Failures: 3, OpenMs: 30_000},
	})
	f.fund("w-hadi", 1_000_000, money.IDR)
	send := func(id, phone, product string) events.TopupResult {
		t.Helper()
		status, reply := f.post(f.screened(topupReq(id, "w-hadi", phone, product, 0, "IDR"), events.DecisionAllow, "ev-"+id))
		if status != http.StatusOK || reply == nil {
			t.Fatalf("%s: status %d", id, status)
		}
		res := decodeResult(t, *reply)
		res.At = time.Time{}
		res.OperatorRef = ""
		if reply.Type() == events.TypeTopupSucceeded {
			res.Reason = "succeeded"
		}
		return res
	}
	for i := range 3 {
		if res := send("tu-down-"+string(rune('a'+i)), "0812-3456-7890", "tsel-pulsa-10k"); res.Reason != topup.ReasonOperatorUnavailable {
			t.Errorf("call %d during the outage: %+v", i, res)
		}
	}
	if refused := f.sim.Stats().Refused; refused != 3 {
		t.Fatalf("operator refused %d calls, want 3", refused)
	}
	for i := range 4 {
		if res := send("tu-fast-"+string(rune('a'+i)), "0812-3456-7890", "tsel-pulsa-10k"); res.Reason != topup.ReasonOperatorUnavailable {
			t.Errorf("top-up %d with the breaker open: %+v", i, res)
		}
	}
	if st := f.sim.Stats(); st.Refused != 3 || st.Submits != 0 {
		t.Errorf("with the breaker open the operator saw %d refused and %d submits, want 3 and 0", st.Refused, st.Submits)
	}
	if got := f.bal("w-hadi", money.IDR); got != (bal{1_000_000, 0}) {
		t.Errorf("balance = %+v, want nothing taken or held", got)
	}
	// XL is not down.
	if res := send("tu-xl", "0817 1234 5678", "xl-pulsa-50k"); res.Reason != "succeeded" {
		t.Errorf("top-up on XL during the Telkomsel outage: %+v", res)
	}
	// The outage ends; after the open time one probe closes the breaker.
	f.sim.SetOutage("telkomsel", false)
	f.clock.Advance(30 * time.Second)
	if res := send("tu-back", "0812-3456-7890", "tsel-pulsa-10k"); res.Reason != "succeeded" {
		t.Errorf("top-up after the outage: %+v", res)
	}
	if got := f.bal("w-hadi", money.IDR); got != (bal{1_000_000 - 50_000 - 11_500, 0}) {
		t.Errorf("balance = %+v, want only the two delivered top-ups taken", got)
	}
}

// TestRefusedRequestsGet400AndMoveNothing: what the function can never sell
// is dead-lettered with its reason, and no item or money moves.
func TestRefusedRequestsGet400AndMoveNothing(t *testing.T) {
	f := newFixture(t, options{})
	f.fund("w-ika", 1_000_000, money.IDR)
	tests := []struct {
		name string
		req  events.TopupRequested
	}{
		{"landline", topupReq("tu-bad-1", "w-ika", "021 5678 1234", "", 10_000, "IDR")},
		{"number of another market", topupReq("tu-bad-2", "w-ika", "+639170000456", "", 10_000, "IDR")},
		{"operator of no product", topupReq("tu-bad-3", "w-ika", "0828 1234 5678", "", 10_000, "IDR")},
		{"unknown product", topupReq("tu-bad-4", "w-ika", "0812-3456-7890", "tsel-pulsa-7k", 0, "IDR")},
		{"another operator's product", topupReq("tu-bad-5", "w-ika", "0812-3456-7890", "xl-pulsa-50k", 0, "IDR")},
		{"amount not the product's price", topupReq("tu-bad-6", "w-ika", "0812-3456-7890", "tsel-pulsa-50k", 49_000, "IDR")},
		{"open amount below the minimum", topupReq("tu-bad-7", "w-ika", "0812-3456-7890", "", 1_000, "IDR")},
		{"open amount off the step", topupReq("tu-bad-8", "w-ika", "0812-3456-7890", "", 10_500, "IDR")},
		{"products only", topupReq("tu-bad-9", "w-ika", "0881 1234 5678", "", 20_000, "IDR")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, reply := f.post(f.screened(tt.req, events.DecisionAllow, "ev-"+tt.req.TopupID))
			if status != http.StatusBadRequest || reply != nil {
				t.Errorf("status %d reply %v, want 400", status, reply)
			}
			if _, ok, err := f.store.Get(context.Background(), tt.req.TopupID); ok || err != nil {
				t.Errorf("stored: %v %v", ok, err)
			}
		})
	}
	t.Run("unsigned screened event", func(t *testing.T) {
		ev := f.screened(topupReq("tu-forged", "w-ika", "0812-3456-7890", "tsel-pulsa-50k", 0, "IDR"), events.DecisionAllow, "ev-forged")
		ev.SetExtension("sebelassig", nil)
		if status, _ := f.post(ev); status != http.StatusBadRequest {
			t.Errorf("status %d, want 400", status)
		}
	})
	t.Run("screened event altered after signing", func(t *testing.T) {
		ev := f.screened(topupReq("tu-forged-2", "w-ika", "0812-3456-7890", "tsel-pulsa-50k", 0, "IDR"), events.DecisionDeny, "ev-forged-2")
		ev.DataEncoded = []byte(strings.Replace(string(ev.DataEncoded), `"deny"`, `"allow"`, 1))
		if status, _ := f.post(ev); status != http.StatusBadRequest {
			t.Errorf("status %d, want 400", status)
		}
	})
	// A compromised pod signs with its own key under fraud's name: the
	// ingress, the app gateway, a reviewer. None is fraud's key.
	for _, role := range []signing.Role{signing.RoleIngress, signing.RoleApp, signing.RoleReview} {
		t.Run("screened event signed with the "+string(role)+" key", func(t *testing.T) {
			ev := f.screened(topupReq("tu-forged-"+string(role), "w-ika", "0812-3456-7890", "tsel-pulsa-50k", 0, "IDR"), events.DecisionAllow, "ev-forged-"+string(role))
			if err := f.keys.Impostor(role, signing.RoleFraud).Sign(&ev, f.clock.Now()); err != nil {
				t.Fatal(err)
			}
			if status, _ := f.post(ev); status != http.StatusBadRequest {
				t.Errorf("status %d, want 400", status)
			}
		})
	}
	if got := f.bal("w-ika", money.IDR); got != (bal{1_000_000, 0}) {
		t.Errorf("balance = %+v, want untouched", got)
	}
	if st := f.sim.Stats(); st.Submits+st.Refused != 0 {
		t.Errorf("the operator was called: %+v", st)
	}
}

func TestDeclinesMoveNoMoneyAndCallNobody(t *testing.T) {
	f := newFixture(t, options{})
	f.fund("w-joko", 20_000, money.IDR)
	tests := []struct {
		name     string
		req      events.TopupRequested
		decision string
		reason   string
	}{
		{"fraud denies", topupReq("tu-deny", "w-joko", "0812-3456-7890", "tsel-pulsa-10k", 0, "IDR"), events.DecisionDeny, events.ReasonFraud},
		{"cannot pay", topupReq("tu-poor", "w-joko", "0812-3456-7890", "tsel-pulsa-50k", 0, "IDR"), events.DecisionAllow, events.ReasonInsufficientFunds},
		{"no wallet", topupReq("tu-ghost", "w-ghost", "0812-3456-7890", "tsel-pulsa-10k", 0, "IDR"), events.DecisionAllow, events.ReasonWalletNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, _ := f.result(f.screened(tt.req, tt.decision, "ev-"+tt.req.TopupID), events.TypeTopupFailed)
			if res.Reason != tt.reason {
				t.Errorf("reason %q, want %q", res.Reason, tt.reason)
			}
			// Final for its id: a redelivery replays it.
			res2, _ := f.result(f.screened(tt.req, events.DecisionAllow, "ev-again-"+tt.req.TopupID), events.TypeTopupFailed)
			if res2.Reason != tt.reason {
				t.Errorf("replayed reason %q", res2.Reason)
			}
		})
	}
	if got := f.bal("w-joko", money.IDR); got != (bal{20_000, 0}) {
		t.Errorf("balance = %+v", got)
	}
	if st := f.sim.Stats(); st.Submits != 0 {
		t.Errorf("%d submits, want none", st.Submits)
	}
}

// TestManualReview: fraud's review holds nothing; the first decision wins.
func TestManualReview(t *testing.T) {
	f := newFixture(t, options{})
	f.fund("w-kiki", 100_00, money.PHP)
	approve := topupReq("tu-rev-ok", "w-kiki", "0917 123 4567", "globe-load-100", 0, "PHP")
	reject := topupReq("tu-rev-no", "w-kiki", "0917 123 4567", "globe-go50", 0, "PHP")
	for _, r := range []events.TopupRequested{approve, reject} {
		res, _ := f.result(f.screened(r, events.DecisionReview, "ev-"+r.TopupID), events.TypeTopupPending)
		if res.Reason != events.ReasonFraudReview {
			t.Errorf("%s: pending reason %q", r.TopupID, res.Reason)
		}
	}
	if got := f.bal("w-kiki", money.PHP); got != (bal{100_00, 0}) {
		t.Errorf("balance in review = %+v, want nothing held", got)
	}
	f.clock.Advance(time.Hour) // a person took their time
	// An approval signed with fraud's key (a compromised fraud pod skipping
	// review) is refused and moves nothing; so is one by the ingress's.
	for _, role := range []signing.Role{signing.RoleFraud, signing.RoleIngress} {
		forged := f.reviewed("tu-rev-no", events.ReviewApprove, "rv-forged-"+string(role))
		if err := f.keys.Impostor(role, signing.RoleReview).Sign(&forged, f.clock.Now()); err != nil {
			t.Fatal(err)
		}
		if status, _ := f.post(forged); status != http.StatusBadRequest {
			t.Errorf("approval signed with %s's key: status %d, want 400", role, status)
		}
	}
	if got := f.bal("w-kiki", money.PHP); got != (bal{100_00, 0}) {
		t.Errorf("balance after forged approvals = %+v, want untouched", got)
	}
	f.result(f.reviewed("tu-rev-ok", events.ReviewApprove, "rv-1"), events.TypeTopupSucceeded)
	res, _ := f.result(f.reviewed("tu-rev-no", events.ReviewReject, "rv-2"), events.TypeTopupFailed)
	if res.Reason != events.ReasonFraud {
		t.Errorf("rejected: reason %q", res.Reason)
	}
	// A second, contrary decision replays the first.
	f.result(f.reviewed("tu-rev-ok", events.ReviewReject, "rv-3"), events.TypeTopupSucceeded)
	f.result(f.reviewed("tu-rev-no", events.ReviewApprove, "rv-4"), events.TypeTopupFailed)
	if got := f.bal("w-kiki", money.PHP); got != (bal{0, 0}) {
		t.Errorf("balance = %+v, want the approved 100.00 taken", got)
	}
	// A decision about a top-up not seen yet is retried.
	if status, _ := f.post(f.reviewed("tu-unseen", events.ReviewApprove, "rv-5")); status != http.StatusServiceUnavailable {
		t.Errorf("decision before its top-up: status %d, want 503", status)
	}
	if st := f.sim.Stats(); st.Submits != 1 {
		t.Errorf("%d submits, want 1", st.Submits)
	}
}

func TestConflictingReuseMovesNothing(t *testing.T) {
	f := newFixture(t, options{})
	f.fund("w-lina", 1_000_000, money.IDR)
	first := topupReq("tu-reused", "w-lina", "0812-3456-7890", "tsel-pulsa-50k", 0, "IDR")
	_, id := f.result(f.screened(first, events.DecisionAllow, "ev-1"), events.TypeTopupSucceeded)
	for i, changed := range []events.TopupRequested{
		topupReq("tu-reused", "w-lina", "0812-3456-7890", "tsel-pulsa-100k", 0, "IDR"),
		topupReq("tu-reused", "w-lina", "0812-3456-7891", "tsel-pulsa-50k", 0, "IDR"),
	} {
		res, cid := f.result(f.screened(changed, events.DecisionAllow, "ev-c"+string(rune('a'+i))), events.TypeTopupConflicted)
		if res.Reason != events.ReasonConflict || cid == id {
			t.Errorf("reuse %d: %+v id %s", i, res, cid)
		}
	}
	// The same number written another way is the same top-up.
	same := first
	same.MSISDN = "+62 812 3456 7890"
	if _, rid := f.result(f.screened(same, events.DecisionAllow, "ev-2"), events.TypeTopupSucceeded); rid != id {
		t.Errorf("same request, other spelling: id %s, want the replay %s", rid, id)
	}
	if got := f.bal("w-lina", money.IDR); got != (bal{950_000, 0}) {
		t.Errorf("balance = %+v", got)
	}
}

// TestOutboxRetriesUntilPublished: an outcome reconcile could not publish
// is published by a later tick, with the same event id.
func TestOutboxRetriesUntilPublished(t *testing.T) {
	f := newFixture(t, options{sim: operator.SimConfig{UnknownRate: 1}})
	f.fund("w-mira", 1_000_00, money.MYR)
	f.result(f.screened(topupReq("tu-ob", "w-mira", "012-345 6789", "hotlink-reload-30", 0, "MYR"), events.DecisionAllow, "ev-1"), events.TypeTopupPending)
	f.pub.failures = 1
	f.clock.Advance(time.Minute)
	if evs := f.reconcile(); len(evs) != 0 {
		t.Fatalf("published %v through a failing sink", typeNames(evs))
	}
	if r := f.record("tu-ob"); r.Status != topup.StatusSucceeded || !strings.HasPrefix(r.GSI1PK, "TP#outbox#") {
		t.Fatalf("record %s in %q, want succeeded and in the outbox", r.Status, r.GSI1PK)
	}
	evs := f.reconcile()
	if len(evs) != 1 || evs[0].Type() != events.TypeTopupSucceeded {
		t.Fatalf("retry published %v", typeNames(evs))
	}
	if r := f.record("tu-ob"); !strings.HasPrefix(r.GSI1PK, "TS#") {
		t.Errorf("indexed as %q after publishing, want the submitted index", r.GSI1PK)
	}
}

func TestConfigValidation(t *testing.T) {
	if err := topup.DefaultConfig().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for name, mutate := range map[string]func(*topup.Config){
		"TTL not above the operator timeout":  func(c *topup.Config) { c.RequestTTLMs = c.OperatorTimeoutMs },
		"stale-held not above the timeout":    func(c *topup.Config) { c.StaleHeldMs = c.OperatorTimeoutMs },
		"deadline before the request expires": func(c *topup.Config) { c.PendingMaxMs = c.RequestTTLMs },
		"zero recheck":                        func(c *topup.Config) { c.RecheckMs = 0 },
		"status timeout over an hour":         func(c *topup.Config) { c.StatusTimeoutMs = 3_600_001 },
	} {
		c := topup.DefaultConfig()
		mutate(&c)
		if c.Validate() == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	env := map[string]string{topup.EnvOperatorTimeoutMs: "20000", topup.EnvBreakerFailures: "7"}
	c, b, err := topup.ConfigFromEnv(func(k string) string { return env[k] })
	if err != nil || c.OperatorTimeoutMs != 20_000 || c.StaleHeldMs <= 20_000 || c.RequestTTLMs <= 20_000 || b.Failures != 7 {
		t.Errorf("ConfigFromEnv = %+v %+v %v", c, b, err)
	}
	short := map[string]string{topup.EnvOperatorTimeoutMs: "500", topup.EnvRequestTTLMs: "2000", topup.EnvStaleHeldMs: "1000",
		topup.EnvRecheckMs: "500", topup.EnvPendingMaxMs: "5000"}
	c, _, err = topup.ConfigFromEnv(func(k string) string { return short[k] })
	if err != nil || c.RequestTTLMs != 2_000 || c.StaleHeldMs != 1_000 || c.RecheckMs != 500 || c.PendingMaxMs != 5_000 {
		t.Errorf("short windows: %+v %v", c, err)
	}
	short[topup.EnvStaleHeldMs] = "400" // not above the operator timeout
	if _, _, err := topup.ConfigFromEnv(func(k string) string { return short[k] }); err == nil {
		t.Error("a stale-held window below the operator timeout was accepted")
	}
	env[topup.EnvBreakerOpenMs] = "soon"
	if _, _, err := topup.ConfigFromEnv(func(k string) string { return env[k] }); err == nil {
		t.Error("a non-numeric breaker open time was accepted")
	}
}
