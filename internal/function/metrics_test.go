package function

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/google/go-cmp/cmp"

	"github.com/sebelas/sebelas/events"
	"github.com/sebelas/sebelas/internal/fault"
	"github.com/sebelas/sebelas/internal/telemetry"
)

// Every function's /metrics counts events in by type, answers by status,
// latency, and outcomes by type, market and reason read from the reply.
func TestMetricsCountEventsAndOutcomes(t *testing.T) {
	const fn = "metricstest"
	calls := 0
	srv, err := NewServer(context.Background(), fn, func(_ context.Context, ev cloudevents.Event) (*cloudevents.Event, error) {
		calls++
		if calls == 3 {
			return nil, fault.Permanent("invalid_event", nil)
		}
		r := cloudevents.NewEvent()
		r.SetID("reply")
		r.SetType(events.TypeChargeDeclined)
		r.SetSource("/sebelas/charge")
		res := events.ChargeResult{ChargeID: "c", Currency: "IDR", Reason: events.ReasonInsufficientFunds}
		if calls == 2 {
			res = events.ChargeResult{ChargeID: "c", Currency: "PHP"}
			r.SetType(events.TypeChargeSucceeded)
		}
		if err := r.SetData(cloudevents.ApplicationJSON, res); err != nil {
			return nil, err
		}
		return &r, nil
	}, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	before := telemetry.Snapshot()
	for range 3 {
		post(t, srv, `{}`)
	}
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "# TYPE sebelas_handler_duration_seconds histogram") {
		t.Fatalf("GET /metrics: %d\n%s", rec.Code, rec.Body.String())
	}
	after, _ := telemetry.Parse(rec.Body)
	series := []string{
		`sebelas_events_received_total{function="metricstest",type="dev.sebelas.test"}`,
		`sebelas_events_handled_total{function="metricstest",type="dev.sebelas.test",status="200"}`,
		`sebelas_events_handled_total{function="metricstest",type="dev.sebelas.test",status="400"}`,
		`sebelas_handler_duration_seconds_count{function="metricstest",type="dev.sebelas.test"}`,
		`sebelas_outcomes_total{function="metricstest",type="dev.sebelas.charge.declined",market="ID",reason="insufficient_funds",operator="none"}`,
		`sebelas_outcomes_total{function="metricstest",type="dev.sebelas.charge.succeeded",market="PH",reason="none",operator="none"}`,
	}
	got := map[string]float64{}
	for _, s := range series {
		got[s] = after[s] - before[s]
	}
	want := map[string]float64{series[0]: 3, series[1]: 2, series[2]: 1, series[3]: 3, series[4]: 1, series[5]: 1}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("metrics (-want +got):\n%s", diff)
	}
}
