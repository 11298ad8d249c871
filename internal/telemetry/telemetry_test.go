package telemetry

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestLabelValuesAreBounded(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "none"},
		{"dev.sebelas.charge.succeeded", "dev.sebelas.charge.succeeded"},
		{`a"b\c{d} e`, "a_b_c_d__e"},
		{strings.Repeat("x", 100), strings.Repeat("x", labelBytesMax)},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, clean(tt.in)); diff != "" {
			t.Errorf("clean(%q) (-want +got):\n%s", tt.in, diff)
		}
	}
}

// A family past seriesMax label sets counts new ones under "other" instead
// of growing without bound.
func TestSeriesPerFamilyAreBounded(t *testing.T) {
	for i := range seriesMax + 10 {
		counter("sebelas_test_bound_total", "k", fmt.Sprint(i)).Inc()
	}
	s := Snapshot()
	n := 0
	for k := range s {
		if Family(k) == "sebelas_test_bound_total" {
			n++
		}
	}
	if n != seriesMax+1 {
		t.Errorf("%d series, want %d (+1 for other)", n, seriesMax+1)
	}
	if got := s[`sebelas_test_bound_total{k="other"}`]; got != 10 {
		t.Errorf("other = %v, want 10", got)
	}
}

func TestBreakerStateCountsTransitions(t *testing.T) {
	before := Snapshot()
	BreakerState("op-test", 1, "open")
	BreakerState("op-test", 1, "open")
	BreakerState("op-test", 0, "closed")
	s := Snapshot()
	got := map[string]float64{
		"state": s[`sebelas_operator_breaker_state{operator="op-test"}`],
		"open":  s[`sebelas_operator_breaker_transitions_total{operator="op-test",to="open"}`] - before[`sebelas_operator_breaker_transitions_total{operator="op-test",to="open"}`],
	}
	if diff := cmp.Diff(map[string]float64{"state": 0, "open": 1}, got); diff != "" {
		t.Errorf("breaker metrics (-want +got):\n%s", diff)
	}
}

func TestWebhookDelivery(t *testing.T) {
	WebhookDelivery("delivered", 20*time.Millisecond)
	s := Snapshot()
	if s[`sebelas_webhook_deliveries_total{result="delivered"}`] < 1 || s[`sebelas_webhook_delivery_duration_seconds_count{result="delivered"}`] < 1 {
		t.Errorf("webhook delivery not counted: %v", s)
	}
}

func FuzzParse(f *testing.F) {
	f.Add("# TYPE a counter\na 1\nb{x=\"y z\"} 2.5\n")
	f.Add("a{")
	f.Fuzz(func(t *testing.T, in string) {
		m, _ := Parse(strings.NewReader(in))
		if len(m) > seriesReadMax {
			t.Fatalf("%d series", len(m))
		}
	})
}
