package operator_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sebelas/sebelas/internal/operator"
)

// The statement lists what the aggregator took in the period, with its
// status now: delivered, rejected, still pending; a refused submit is not
// listed.
func TestSimulatorStatement(t *testing.T) {
	now := time.Date(2026, 11, 11, 1, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	sim, err := operator.NewSimulator(operator.SimConfig{Seed: 1}, clock)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	defer srv.Close()
	op, err := operator.NewHTTP(srv.URL, "")
	if err != nil {
		t.Fatal(err)
	}
	submit := func(ref string) {
		op.Submit(context.Background(), operator.Request{Reference: ref, MSISDN: "+639171234567", Operator: "globe",
			Kind: operator.KindAirtime, FaceValue: 5000, Currency: "PHP", ExpiresAt: now.Add(time.Minute)})
	}
	submit("tu-ok")
	_ = sim.Configure(operator.SimConfig{FailureRate: 1, Seed: 1})
	submit("tu-rej")
	_ = sim.Configure(operator.SimConfig{PendingRate: 1, ResolveMs: 60_000, Seed: 1})
	submit("tu-slow")
	sim.SetOutage("globe", true)
	submit("tu-refused")

	res, err := http.Get(srv.URL + "/v1/statements?from=2026-11-11T00:00:00Z&to=2026-11-12T00:00:00Z&format=csv")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	want := "reference,operator_ref,operator,kind,product,face_value,currency,status,code,received_at\n" +
		"tu-ok,SIM-GLOBE-000000001,globe,airtime,,5000,PHP,succeeded,,2026-11-11T01:00:00Z\n" +
		"tu-rej,,globe,airtime,,5000,PHP,failed,operator_rejected,2026-11-11T01:00:00Z\n" +
		"tu-slow,,globe,airtime,,5000,PHP,pending,,2026-11-11T01:00:00Z\n"
	if d := cmp.Diff(want, string(body)); d != "" {
		t.Errorf("csv statement (-want +got):\n%s", d)
	}
	var jl bytes.Buffer
	if err := operator.WriteStatement(&jl, operator.StatementFormatJSONL, sim.Statement(now, now.Add(time.Second))); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(jl.String(), "\n"); n != 3 || !strings.Contains(jl.String(), `"status":"pending"`) {
		t.Errorf("jsonl statement:\n%s", jl.String())
	}
	if len(sim.Statement(now.Add(time.Second), now.Add(time.Hour))) != 0 {
		t.Error("statement of a later period lists top-ups")
	}
	for _, q := range []string{"from=x&to=2026-11-12T00:00:00Z", "from=2026-11-12T00:00:00Z&to=2026-11-11T00:00:00Z", "from=2026-01-01T00:00:00Z&to=2026-11-11T00:00:00Z", "from=2026-11-11T00:00:00Z&to=2026-11-12T00:00:00Z&format=xml"} {
		res, err := http.Get(srv.URL + "/v1/statements?" + q)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400", q, res.StatusCode)
		}
	}
}
