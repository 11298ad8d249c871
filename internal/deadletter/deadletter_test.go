package deadletter_test

import (
	"context"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/google/go-cmp/cmp"

	"github.com/sebelas/sebelas/internal/ddbtest"
	"github.com/sebelas/sebelas/internal/deadletter"
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
