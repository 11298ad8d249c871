package deadletter_test

import (
	"context"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/google/go-cmp/cmp"

	"github.com/sebelas/sebelas/internal/deadletter"
	"github.com/sebelas/sebelas/internal/devtools/ddbtest"
)

func TestMain(m *testing.M) { ddbtest.Main(m) }

func TestStoresAndListsDeadLetters(t *testing.T) {
	db, name := ddbtest.New(t)
	now := time.Date(2026, 11, 11, 0, 3, 0, 0, time.UTC)
	s := &deadletter.Sink{DB: db, Table: name, Now: func() time.Time { return now }}
	ctx := context.Background()
	for i, id := range []string{"ev-1", "ev-2", "ev-1"} { // ev-1 delivered twice
		ev := cloudevents.NewEvent()
		ev.SetID(id)
		ev.SetSource("/marketplace/lazada")
		ev.SetType("dev.sebelas.charge.requested")
		ev.SetTime(now.Add(-time.Duration(len(id)+i) * time.Second))
		if id == "ev-1" {
			ev.SetTime(now.Add(-time.Minute))
		}
		ev.SetExtension("knativeerrorcode", 400)
		ev.SetExtension("knativeerrordest", "http://charge.sebelas.svc")
		_ = ev.SetData(cloudevents.ApplicationJSON, map[string]any{"charge_id": id})
		if _, err := s.Handle(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.List(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, l := range got {
		ids = append(ids, l.ID+":"+l.ErrorCode)
	}
	if diff := cmp.Diff([]string{"ev-1:400", "ev-2:400"}, ids); diff != "" {
		t.Errorf("dead letters (-want +got):\n%s", diff)
	}
	if string(got[0].Data) != `{"charge_id":"ev-1"}` {
		t.Errorf("stored data %q", got[0].Data)
	}
}

// A letter read for a replay, then stored anew by the sink (the event
// failed again) before the replay marks it: the mark is refused, the
// letter stays unresolved.
func TestResolveRefusesALetterStoredAgain(t *testing.T) {
	db, name := ddbtest.New(t)
	ctx := context.Background()
	now := time.Date(2026, 11, 11, 8, 0, 0, 0, time.UTC)
	sink := &deadletter.Sink{DB: db, Table: name, Now: func() time.Time { return now }}
	store := &deadletter.Store{DB: db, Table: name}
	ev := cloudevents.NewEvent()
	ev.SetID("ev-1")
	ev.SetSource("/sebelas/fraud")
	ev.SetType("dev.sebelas.charge.screened")
	ev.SetTime(now.Add(-time.Hour))
	ev.SetExtension("knativeerrorcode", "503")
	if _, err := sink.Handle(ctx, ev); err != nil {
		t.Fatal(err)
	}
	list := func() []deadletter.Letter {
		t.Helper()
		ls, err := store.List(ctx, deadletter.Filter{From: now, To: now, Unresolved: true})
		if err != nil {
			t.Fatal(err)
		}
		return ls
	}
	read := list()
	if len(read) != 1 {
		t.Fatalf("%d letters", len(read))
	}
	now = now.Add(time.Second)
	if _, err := sink.Handle(ctx, ev); err != nil {
		t.Fatal(err)
	}
	got, err := store.Resolve(ctx, read[0], "test")
	if err != nil || got != deadletter.DeadLetteredAgain {
		t.Fatalf("resolve: %q, %v", got, err)
	}
	again := list()
	if len(again) != 1 {
		t.Fatalf("%d unresolved after the refused mark", len(again))
	}
	for _, want := range []deadletter.Resolution{deadletter.ResolvedNow, deadletter.AlreadyResolved} {
		if got, err := store.Resolve(ctx, again[0], "test"); err != nil || got != want {
			t.Errorf("resolve: %q, %v; want %q", got, err, want)
		}
	}
	if n := len(list()); n != 0 {
		t.Errorf("%d unresolved after the mark", n)
	}
}

// FuzzLetterCloudEvent: the stored event of a letter is outside input (any
// event the Broker could not deliver); rebuilding it must never panic.
func FuzzLetterCloudEvent(f *testing.F) {
	f.Add([]byte(`{"specversion":"1.0","id":"a","source":"/s","type":"t","data":{"x":1}}`), "ch-1", []byte(`{"a":1}`))
	f.Add([]byte(`{"specversion":"0.3"}`), "", []byte{0xff})
	f.Add([]byte{}, "x", []byte(nil))
	f.Fuzz(func(t *testing.T, stored []byte, subject string, data []byte) {
		l := deadletter.Letter{PK: "DL#2026-11-11#01", SK: "2026-11-11T00:00:00Z#/s#a", ID: "a", Source: "/s", Type: "t",
			Subject: subject, Data: data, Event: stored}
		_, _ = l.CloudEvent()
		_ = l.Ref()
	})
}

// TestIdempotentWithoutTime: three deliveries of one event without ce-time,
// the last one after the UTC midnight, make one dead letter, stored where the
// first delivery put it.
func TestIdempotentWithoutTime(t *testing.T) {
	db, name := ddbtest.New(t)
	ctx := context.Background()
	first := time.Date(2026, 11, 11, 23, 59, 0, 0, time.UTC)
	now := first
	s := &deadletter.Sink{DB: db, Table: name, Now: func() time.Time { return now }}
	ev := cloudevents.NewEvent()
	ev.SetID("ev-timeless")
	ev.SetSource("/marketplace/lazada")
	ev.SetType("dev.sebelas.charge.requested")
	ev.SetExtension("knativeerrorcode", 400)
	_ = ev.SetData(cloudevents.ApplicationJSON, map[string]any{"charge_id": "ch-1"})
	for _, at := range []time.Duration{0, 30 * time.Second, 2 * time.Minute} {
		now = first.Add(at)
		if _, err := s.Handle(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	var ids []string
	for _, day := range []time.Time{first, first.Add(24 * time.Hour)} {
		got, err := s.List(ctx, day)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range got {
			ids = append(ids, l.Day()+":"+l.ID)
		}
	}
	if diff := cmp.Diff([]string{"2026-11-11:ev-timeless"}, ids); diff != "" {
		t.Errorf("dead letters (-want +got):\n%s", diff)
	}
}
