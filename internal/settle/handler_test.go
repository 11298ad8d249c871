package settle_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/google/go-cmp/cmp"

	"github.com/sebelas/sebelas/events"
	"github.com/sebelas/sebelas/internal/fault"
	"github.com/sebelas/sebelas/internal/function"
	"github.com/sebelas/sebelas/internal/money"
	"github.com/sebelas/sebelas/internal/settle"
)

// sink records published events; failAfter > 0 makes the publish after
// that many fail, as a Broker that went away.
type sink struct {
	mu        sync.Mutex
	events    []cloudevents.Event
	failAfter int
}

var errSinkDown = errors.New("broker ingress unreachable")

func (s *sink) Publish(_ context.Context, ev cloudevents.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failAfter > 0 && len(s.events) >= s.failAfter {
		return fault.Transient("publish_failed", errSinkDown)
	}
	s.events = append(s.events, ev)
	return nil
}

// tick is the event a settle-<market> PingSource sends, as Knative sends it.
func tick(t *testing.T, marketCode, zone string, at time.Time) cloudevents.Event {
	t.Helper()
	ev := cloudevents.NewEvent()
	ev.SetID("tick-" + marketCode + "-" + at.Format(time.RFC3339))
	ev.SetSource("/apis/v1/namespaces/sebelas/pingsources/settle-" + strings.ToLower(marketCode))
	ev.SetType(events.TypePing)
	ev.SetTime(at)
	ev.SetExtension(events.TickTypeExtension, events.TypeSettlementDue)
	if err := ev.SetData(cloudevents.ApplicationJSON, map[string]string{"market": marketCode, "timezone": zone}); err != nil {
		t.Fatal(err)
	}
	return ev
}

func due(t *testing.T, d events.SettlementDue) cloudevents.Event {
	t.Helper()
	ev, err := events.NewEvent(events.TypeSettlementDue, "/operator", d)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func completedOf(t *testing.T, evs []cloudevents.Event) map[string]events.SettlementCompleted {
	t.Helper()
	out := map[string]events.SettlementCompleted{}
	for _, ev := range evs {
		if ev.Type() != events.TypeSettlementCompleted || ev.Source() != settle.Source {
			t.Errorf("published %s from %s", ev.Type(), ev.Source())
		}
		var c events.SettlementCompleted
		if err := events.Decode(ev, &c); err != nil {
			t.Fatalf("published event does not decode: %v", err)
		}
		if want := events.ResultID(c.SettlementID+"."+strconv.FormatInt(c.Version, 10), events.TypeSettlementCompleted); ev.ID() != want {
			t.Errorf("event id %s, want %s derived from the settlement", ev.ID(), want)
		}
		c.At = time.Time{}
		out[ev.ID()] = c
	}
	return out
}

func TestTickSettlesYesterdayAndPublishesPerMerchant(t *testing.T) {
	e := newEnv(t)
	e.fund("w-1", 10_000_000, money.PKR)
	// Karachi is UTC+5: 03:00 UTC is 08:00 local on the 10th.
	e.charge(nov10, "c-1", "m-lahore", "w-1", 4_500, money.PKR)
	e.charge(nov10, "c-2", "m-lahore", "w-1", 500, money.PKR)
	e.charge(nov10, "c-3", "m-karachi", "w-1", 7_000, money.PKR)
	e.refund(nov10.Add(time.Hour), "r-1", "c-1", 2_000)
	// The tick at 00:05 Karachi time on the 11th.
	at := time.Date(2026, 11, 10, 19, 5, 0, 0, time.UTC)
	e.clock.Set(at)
	var out sink
	h := &settle.Handler{Store: e.settler(settle.Options{}), Publisher: &out, Now: e.clock.Now}

	reply, err := h.Handle(e.ctx, tick(t, "PK", "Asia/Karachi", at))
	if err != nil || reply != nil {
		t.Fatalf("tick: reply %v, err %v; want done with no reply", reply, err)
	}
	want := map[string]events.SettlementCompleted{
		events.ResultID("S-m-lahore-2026-11-10-PKR.1", events.TypeSettlementCompleted): {
			SettlementID: "S-m-lahore-2026-11-10-PKR", MerchantID: "m-lahore", Market: "PK", Currency: "PKR",
			BusinessDate: "2026-11-10", ChargesCount: 2, ChargesTotal: 5_000, RefundsCount: 1, RefundsTotal: 2_000, Net: 3_000, Version: 1},
		events.ResultID("S-m-karachi-2026-11-10-PKR.1", events.TypeSettlementCompleted): {
			SettlementID: "S-m-karachi-2026-11-10-PKR", MerchantID: "m-karachi", Market: "PK", Currency: "PKR",
			BusinessDate: "2026-11-10", ChargesCount: 1, ChargesTotal: 7_000, Net: 7_000, Version: 1},
	}
	if diff := cmp.Diff(want, completedOf(t, out.events)); diff != "" {
		t.Errorf("published (-want +got):\n%s", diff)
	}
	// The same tick again (at-least-once): nothing new.
	reply, err = h.Handle(e.ctx, tick(t, "PK", "Asia/Karachi", at))
	if err != nil || reply != nil || len(out.events) != 2 {
		t.Errorf("second tick: reply %v, err %v, %d events; want nothing new", reply, err, len(out.events))
	}
	s := e.settler(settle.Options{})
	if got := e.merchantBalance(s, "m-lahore", money.PKR); got != 3_000 {
		t.Errorf("m-lahore balance = %d, want 3000", got)
	}
}

func TestBudgetRunsOutIntoAContinuation(t *testing.T) {
	e := newEnv(t)
	e.fund("w-1", 1_000_000_00, money.BDT)
	const merchants = 3
	for i := range merchants {
		e.charge(nov10, "c-"+string(rune('a'+i)), "m-"+string(rune('a'+i)), "w-1", 10_00, money.BDT)
	}
	e.clock.Set(nov11)
	// Every reading of the clock is a second later: a 1 ms budget runs out
	// after the first merchant of each delivery.
	ticking := func() time.Time { e.clock.Set(e.clock.Now().Add(time.Second)); return e.clock.Now() }
	var out sink
	h := &settle.Handler{Store: settle.New(e.db, e.table, settle.Options{Now: ticking}), Publisher: &out, BudgetMs: 1, Now: ticking}
	ev := due(t, events.SettlementDue{Market: "BD", TimeZone: "Asia/Dhaka", BusinessDate: "2026-11-10"})
	// Each delivery totals one GSI page of one merchant: 32 shards each.
	const hopsMax = 2 * merchants * 40
	hops := 0
	for ; hops < hopsMax; hops++ {
		reply, err := h.Handle(e.ctx, ev)
		if err != nil {
			t.Fatal(err)
		}
		if reply == nil {
			break
		}
		var next events.SettlementDue
		if err := events.Decode(*reply, &next); err != nil {
			t.Fatalf("continuation does not decode: %v", err)
		}
		if diff := cmp.Diff(events.SettlementDue{Market: "BD", TimeZone: "Asia/Dhaka", BusinessDate: "2026-11-10"}, next); diff != "" {
			t.Fatalf("continuation (-want +got):\n%s", diff)
		}
		if hops == 0 {
			again, err := h.Handle(e.ctx, ev) // a redelivery replies the same id
			if err != nil || again == nil || again.ID() != reply.ID() {
				t.Errorf("redelivered step replied %v, %v; want id %s", again, err, reply.ID())
			}
		}
		ev = *reply
	}
	if hops == hopsMax || hops < merchants {
		t.Errorf("%d hops; want the budget to cut the run into many, and the run to end", hops)
	}
	if got := len(completedOf(t, out.events)); got != merchants {
		t.Errorf("%d distinct settlement.completed, want %d", got, merchants)
	}
}

func TestPublishFailureStopsBeforeTheMerchantAndRetrySendsAgain(t *testing.T) {
	e := newEnv(t)
	e.fund("w-1", 1_000_000, money.INR)
	for _, m := range []string{"m-1", "m-2", "m-3", "m-4"} {
		e.charge(nov10, "c-"+m, m, "w-1", 1_000, money.INR)
	}
	e.clock.Set(nov11)
	out := &sink{failAfter: 2}
	h := &settle.Handler{Store: e.settler(settle.Options{}), Publisher: out, Now: e.clock.Now}
	ev := due(t, events.SettlementDue{Market: "IN", TimeZone: "Asia/Kolkata", BusinessDate: "2026-11-10"})
	_, err := h.Handle(e.ctx, ev)
	if fault.Status(err) != http.StatusServiceUnavailable || !errors.Is(err, errSinkDown) {
		t.Fatalf("delivery with the Broker down: %v, want 503", err)
	}
	out.failAfter = 0 // the Broker is back; the Broker redelivers
	if reply, err := h.Handle(e.ctx, ev); err != nil || reply != nil {
		t.Fatalf("redelivery: %v, %v", reply, err)
	}
	if got := len(completedOf(t, out.events)); got != 4 {
		t.Errorf("%d distinct merchants published, want 4", got)
	}
}

func TestSettlementDueRefused(t *testing.T) {
	e := newEnv(t)
	e.clock.Set(time.Date(2026, 11, 10, 17, 30, 0, 0, time.UTC)) // 00:30 in Jakarta on the 11th, 23:00 in Kolkata
	h := &settle.Handler{Store: e.settler(settle.Options{}), Publisher: &sink{}, Now: e.clock.Now}
	for _, tt := range []struct {
		name   string
		ev     cloudevents.Event
		reason string
	}{
		{"today", due(t, events.SettlementDue{Market: "ID", TimeZone: "Asia/Jakarta", BusinessDate: "2026-11-11"}), settle.ReasonDayOpen},
		{"Kolkata's day is not over", due(t, events.SettlementDue{Market: "IN", TimeZone: "Asia/Kolkata", BusinessDate: "2026-11-10"}), settle.ReasonDayOpen},
		{"Jakarta's 10th is over", due(t, events.SettlementDue{Market: "ID", TimeZone: "Asia/Jakarta", BusinessDate: "2026-11-10"}), ""},
		{"zone of another market", func() cloudevents.Event {
			ev := due(t, events.SettlementDue{Market: "ID", TimeZone: "Asia/Jakarta"})
			ev.DataEncoded = []byte(`{"market":"ID","timezone":"Asia/Manila","business_date":"2026-11-09"}`)
			return ev
		}(), events.ReasonInvalidEvent},
		{"no such date", func() cloudevents.Event {
			ev := due(t, events.SettlementDue{Market: "ID", TimeZone: "Asia/Jakarta"})
			ev.DataEncoded = []byte(`{"market":"ID","timezone":"Asia/Jakarta","business_date":"2026-02-30"}`)
			return ev
		}(), events.ReasonInvalidEvent},
		{"not a settlement", func() cloudevents.Event {
			ev := due(t, events.SettlementDue{Market: "ID", TimeZone: "Asia/Jakarta"})
			ev.SetType(events.TypeTopupReconcile)
			return ev
		}(), "unexpected_type"},
		{"tick for another type", func() cloudevents.Event {
			ev := tick(t, "ID", "Asia/Jakarta", e.clock.Now())
			ev.SetExtension(events.TickTypeExtension, "dev.sebelas.charge.requested")
			return ev
		}(), events.ReasonInvalidEvent},
	} {
		_, err := h.Handle(e.ctx, tt.ev)
		if tt.reason == "" {
			if err != nil {
				t.Errorf("%s: %v, want accepted", tt.name, err)
			}
			continue
		}
		if !fault.IsPermanent(err) || fault.ReasonOf(err) != tt.reason {
			t.Errorf("%s: err %v, want permanent %s", tt.name, err, tt.reason)
		}
	}
}

// TestServedOverHTTP runs the handler behind the function runtime: a tick
// in binary mode, 200 with no reply; a malformed one, 400.
func TestServedOverHTTP(t *testing.T) {
	e := newEnv(t)
	e.clock.Set(nov11)
	var out sink
	h := &settle.Handler{Store: e.settler(settle.Options{}), Publisher: &out, Now: e.clock.Now}
	srv, err := function.NewServer(e.ctx, "settle", h.Handle, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	post := func(body string) int {
		req, _ := http.NewRequest(http.MethodPost, ts.URL, strings.NewReader(body))
		req.Header.Set("Ce-Specversion", "1.0")
		req.Header.Set("Ce-Type", events.TypePing)
		req.Header.Set("Ce-Sebelastype", events.TypeSettlementDue)
		req.Header.Set("Ce-Source", "/apis/v1/namespaces/sebelas/pingsources/settle-th")
		req.Header.Set("Ce-Id", "1")
		req.Header.Set("Ce-Time", nov11.Format(time.RFC3339))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := post(`{"market":"TH","timezone":"Asia/Bangkok"}`); got != http.StatusOK && got != http.StatusNoContent {
		t.Errorf("tick status %d, want 2xx", got)
	}
	if got := post(`{"market":"XX","timezone":"Asia/Bangkok"}`); got != http.StatusBadRequest {
		t.Errorf("bad market status %d, want 400", got)
	}
}

func TestHTTPPublisherAndBuild(t *testing.T) {
	var mu sync.Mutex
	var got []string
	broker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var c events.SettlementCompleted
		if err := json.Unmarshal(body, &c); err != nil {
			t.Errorf("broker got %q: %v", body, err)
		}
		mu.Lock()
		got = append(got, r.Header.Get("Ce-Type")+" "+r.Header.Get("Ce-Id")+" "+c.MerchantID)
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	defer broker.Close()
	p, err := settle.NewHTTPPublisher(broker.URL)
	if err != nil {
		t.Fatal(err)
	}
	r := settle.Result{SettlementID: "S-m-1-2026-11-10-THB", MerchantID: "m-1", Market: "TH", Currency: "THB",
		BusinessDate: "2026-11-10", ChargesCount: 1, ChargesTotal: 5, Net: 5, Version: 2, At: nov11}
	ev, err := settle.CompletedEvent(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Publish(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	want := []string{events.TypeSettlementCompleted + " " + events.ResultID("S-m-1-2026-11-10-THB.2", events.TypeSettlementCompleted) + " m-1"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("broker received (-want +got):\n%s", diff)
	}
	broker.Close()
	if err := p.Publish(context.Background(), ev); fault.Status(err) != http.StatusServiceUnavailable {
		t.Errorf("publish to a closed broker: %v, want transient", err)
	}

	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	if _, err := settle.Build(context.Background(), getenv, nil); err == nil || !strings.Contains(err.Error(), settle.EnvSink) {
		t.Errorf("Build without %s: %v, want an error naming it", settle.EnvSink, err)
	}
	env[settle.EnvSink] = "http://127.0.0.1:1/sebelas/default"
	env[settle.EnvBudgetMs] = "5"
	if _, err := settle.Build(context.Background(), getenv, nil); err == nil {
		t.Error("Build with a 5 ms budget succeeded")
	}
	env[settle.EnvBudgetMs] = "30000"
	if _, err := settle.Build(context.Background(), getenv, nil); err != nil {
		t.Errorf("Build: %v", err)
	}
}
