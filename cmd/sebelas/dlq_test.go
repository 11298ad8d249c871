package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/sebelas/sebelas/internal/deadletter"
	"github.com/sebelas/sebelas/internal/devtools/ddbtest"
)

// cliBinary is the sebelas binary the CLI tests run, built once.
var cliBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sebelas-cli-")
	if err != nil {
		panic(err)
	}
	cliBinary = filepath.Join(dir, "sebelas")
	if out, err := exec.Command("go", "build", "-o", cliBinary, ".").CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		panic("build sebelas: " + err.Error() + "\n" + string(out))
	}
	defer os.RemoveAll(dir)
	ddbtest.Main(m)
}

// runBinary runs the built sebelas against the test's table.
func runBinary(t *testing.T, endpoint, tableName string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, cliBinary, args...)
	cmd.Env = append(os.Environ(), "AWS_ENDPOINT_URL_DYNAMODB="+endpoint, "SEBELAS_TABLE="+tableName,
		"SEBELAS_BROKER_URL=", "K_SINK=")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// fakeBroker records the events posted to it; while down it answers 503.
type fakeBroker struct {
	mu     sync.Mutex
	events []cloudevents.Event
	down   atomic.Bool
}

func (b *fakeBroker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if b.down.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	ev, err := binding.ToEvent(r.Context(), cehttp.NewMessageFromHttpRequest(r))
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	b.mu.Lock()
	b.events = append(b.events, *ev)
	b.mu.Unlock()
	w.WriteHeader(http.StatusAccepted)
}

func (b *fakeBroker) received() []cloudevents.Event {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]cloudevents.Event(nil), b.events...)
}

func deadEvent(t *testing.T, id, code string, at time.Time) cloudevents.Event {
	t.Helper()
	ev := cloudevents.NewEvent()
	ev.SetID(id)
	ev.SetSource("/sebelas/fraud")
	ev.SetType("dev.sebelas.charge.screened")
	ev.SetSubject("ch-" + id)
	ev.SetTime(at)
	ev.SetExtension("sebelassig", "k1.1764000000.c2lnbmF0dXJl") // a signature must survive the replay
	ev.SetExtension("knativeerrorcode", code)
	ev.SetExtension("knativeerrordest", "http://charge.sebelas.svc.cluster.local")
	ev.SetExtension("knativeerrordata", "eyJlcnJvciI6ImRvd24ifQ==") // {"error":"down"}
	if err := ev.SetData(cloudevents.ApplicationJSON, map[string]any{"charge_id": "ch-" + id, "amount": 1500}); err != nil {
		t.Fatal(err)
	}
	return ev
}

var refPattern = regexp.MustCompile(`\d{4}-\d{2}-\d{2}\.[0-9a-f]{12}`)

func TestDLQListShowReplay(t *testing.T) {
	db, tableName := ddbtest.New(t)
	endpoint := ddbtest.Endpoint(t)
	ctx := context.Background()
	now := time.Date(2026, 11, 11, 0, 5, 0, 0, time.UTC)
	sink := &deadletter.Sink{DB: db, Table: tableName, Now: func() time.Time { return now }}
	for _, ev := range []cloudevents.Event{deadEvent(t, "ev-down", "503", now.Add(-time.Minute)), deadEvent(t, "ev-bad", "400", now.Add(-2*time.Minute))} {
		if _, err := sink.Handle(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	broker := &fakeBroker{}
	srv := httptest.NewServer(broker)
	defer srv.Close()
	day := "2026-11-11"

	out, err := runBinary(t, endpoint, tableName, "dlq", "list", "--day", day)
	if err != nil || !strings.Contains(out, "2 dead letters") || strings.Count(out, "unresolved") != 2 {
		t.Fatalf("list: %v\n%s", err, out)
	}
	out, err = runBinary(t, endpoint, tableName, "dlq", "list", "--day", day, "--transient")
	if err != nil || !strings.Contains(out, "1 dead letters") || !strings.Contains(out, "ch-ev-down") {
		t.Fatalf("list --transient: %v\n%s", err, out)
	}
	ref := refPattern.FindString(out)
	if ref == "" {
		t.Fatalf("no reference in:\n%s", out)
	}

	out, err = runBinary(t, endpoint, tableName, "dlq", "show", ref)
	if err != nil || !strings.Contains(out, `"sebelassig"`) || !strings.Contains(out, `"charge_id": "ch-ev-down"`) ||
		strings.Contains(out, "knativeerrorcode") || !strings.Contains(out, `{"error":"down"}`) {
		t.Fatalf("show: %v\n%s", err, out)
	}

	// The Broker down: the replay fails and the letter stays unresolved.
	broker.down.Store(true)
	out, err = runBinary(t, endpoint, tableName, "dlq", "replay", ref, "--broker", srv.URL)
	if err == nil || !strings.Contains(out, "FAILED") {
		t.Fatalf("replay to a Broker that is down: %v\n%s", err, out)
	}
	broker.down.Store(false)

	out, err = runBinary(t, endpoint, tableName, "dlq", "replay", ref, "--broker", srv.URL)
	if err != nil || !strings.Contains(out, "posted  "+ref) || !strings.Contains(out, string(deadletter.ResolvedNow)) {
		t.Fatalf("replay: %v\n%s", err, out)
	}
	got := broker.received()
	if len(got) != 1 {
		t.Fatalf("Broker received %d events, want 1", len(got))
	}
	ev := got[0]
	if ev.ID() != "ev-down" || ev.Source() != "/sebelas/fraud" || ev.Type() != "dev.sebelas.charge.screened" ||
		ev.Extensions()["sebelassig"] != "k1.1764000000.c2lnbmF0dXJl" || ev.Extensions()["knativeerrorcode"] != nil ||
		!strings.Contains(string(ev.Data()), `"charge_id":"ch-ev-down"`) {
		t.Errorf("replayed event is not the original: %s", ev)
	}

	// Again: resolved already, nothing posted.
	out, err = runBinary(t, endpoint, tableName, "dlq", "replay", ref, "--broker", srv.URL)
	if err != nil || !strings.Contains(out, "skipped "+ref) || len(broker.received()) != 1 {
		t.Fatalf("second replay: %v (Broker got %d)\n%s", err, len(broker.received()), out)
	}
	out, err = runBinary(t, endpoint, tableName, "dlq", "list", "--day", day)
	if err != nil || !strings.Contains(out, "1 dead letters") || strings.Contains(out, "ch-ev-down") {
		t.Fatalf("list after the replay: %v\n%s", err, out)
	}
	out, err = runBinary(t, endpoint, tableName, "dlq", "list", "--day", day, "--resolved")
	if err != nil || !strings.Contains(out, "2 dead letters") || !strings.Contains(out, " resolved ") {
		t.Fatalf("list --resolved: %v\n%s", err, out)
	}

	// The event fails again and the sink stores it anew: unresolved again,
	// and replay --all takes it (and the 400 one without --transient).
	now = now.Add(time.Minute)
	if _, err := sink.Handle(ctx, deadEvent(t, "ev-down", "503", now.Add(-2*time.Minute))); err != nil {
		t.Fatal(err)
	}
	out, err = runBinary(t, endpoint, tableName, "dlq", "replay", "--all", "--day", day, "--transient", "--broker", srv.URL)
	if err != nil || !strings.Contains(out, "1 letters, 1 posted") || len(broker.received()) != 2 {
		t.Fatalf("replay --all --transient: %v\n%s", err, out)
	}
	out, err = runBinary(t, endpoint, tableName, "dlq", "replay", "--all", "--day", day, "--broker", srv.URL)
	if err != nil || !strings.Contains(out, "1 letters, 1 posted") || !strings.Contains(out, "ch-ev-bad") {
		t.Fatalf("replay --all: %v\n%s", err, out)
	}
	out, err = runBinary(t, endpoint, tableName, "dlq", "list", "--day", day)
	if err != nil || !strings.Contains(out, "0 dead letters") {
		t.Fatalf("list at the end: %v\n%s", err, out)
	}

	for _, bad := range [][]string{{"dlq", "show", "nope"}, {"dlq", "replay", "--broker", srv.URL}, {"dlq", "list", "--day", day, "--from", day}} {
		if out, err := runBinary(t, endpoint, tableName, bad...); err == nil {
			t.Errorf("%v accepted:\n%s", bad, out)
		}
	}
}
