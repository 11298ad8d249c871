package deadletter_test

import (
	"context"
	"strings"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/sebelas/sebelas/internal/deadletter"
	"github.com/sebelas/sebelas/internal/devtools/ddbtest"
)

// TestLongSourceAndIDAreStored: CloudEvents puts no bound on source and id,
// and a dead letter is by nature an event that broke the rules. Up to the
// HTTP header limit (32 KiB) either must still be stored, and found again,
// though DynamoDB caps a sort key at 1024 bytes.
func TestLongSourceAndIDAreStored(t *testing.T) {
	db, name := ddbtest.New(t)
	now := time.Date(2026, 11, 11, 0, 3, 0, 0, time.UTC)
	s := &deadletter.Sink{DB: db, Table: name, Now: func() time.Time { return now }}
	ctx := context.Background()
	edge := deadletter.KeyPartsBytesMax
	tests := []struct{ source, id string }{
		{"/s", strings.Repeat("i", edge-len("/s"))}, // exactly at the edge: kept as is
		{"/s", strings.Repeat("i", edge-len("/s")+1)},
		{strings.Repeat("s", 16<<10), strings.Repeat("i", 16<<10)},
	}
	for i, tt := range tests {
		ev := cloudevents.NewEvent()
		ev.SetID(tt.id)
		ev.SetSource(tt.source)
		ev.SetType("dev.sebelas.charge.requested")
		ev.SetTime(now.Add(time.Duration(i) * time.Second))
		ev.SetExtension("knativeerrorcode", 400)
		if _, err := s.Handle(ctx, ev); err != nil {
			t.Fatalf("case %d (%d+%d bytes): %v", i, len(tt.source), len(tt.id), err)
		}
		// A redelivery lands on the same item.
		if _, err := s.Handle(ctx, ev); err != nil {
			t.Fatalf("case %d again: %v", i, err)
		}
	}
	got, err := s.List(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(tests) {
		t.Fatalf("listed %d dead letters, want %d", len(got), len(tests))
	}
	for i, l := range got {
		if l.Source != tests[i].source || l.ID != tests[i].id || l.ErrorCode != "400" {
			t.Errorf("dead letter %d: source %d bytes, id %d bytes, code %q; want the event's own", i, len(l.Source), len(l.ID), l.ErrorCode)
		}
	}
}
