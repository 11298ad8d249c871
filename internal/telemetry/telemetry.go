// Package telemetry holds every metric sebelas exports, in one place, and
// serves them in the Prometheus text format at GET /metrics of each function.
//
// Why not the OpenTelemetry metric SDK with its Prometheus exporter: it made
// the fraud binary 27.4 MB (from 24.6 MB) and prometheus/client_golang alone
// 25.5 MB, both over the 25 MB function target; github.com/VictoriaMetrics/metrics
// writes the same exposition format (counters, gauges, Prometheus histograms
// with le buckets) for +0.16 MB. Names follow Prometheus conventions
// (_total, _seconds) so Knative's own dashboards sit beside ours.
//
// Label values are bounded: each is cut to labelBytesMax and reduced to a
// safe alphabet, and a metric family holds at most seriesMax label sets; past
// that new sets are counted under the value "other". Labels are never wallet
// ids, phone numbers or marketplace names (/metrics is on a public port).
package telemetry

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/sebelas/sebelas/internal/market"
)

const (
	labelBytesMax = 64
	seriesMax     = 2000 // per metric family
	otherValue    = "other"
)

// latencyBuckets are the handler histogram's upper bounds in seconds: the
// charge path's budget is 100 ms p99 per hop (DESIGN.md), so the buckets are
// fine below a second and coarse above.
var latencyBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5, 10}

var (
	set = metrics.NewSet()

	mu       sync.Mutex
	families = map[string]int{} // family name -> series count
)

func init() {
	// # HELP/# TYPE lines: Prometheus and Grafana need the TYPE to tell a
	// counter from a gauge.
	metrics.ExposeMetadata(true)
}

// Handler serves every metric of this process plus Go runtime and process
// metrics (go_*, process_*).
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		Write(w)
	})
}

// Write writes the exposition text of every metric to w.
func Write(w io.Writer) {
	set.WritePrometheus(w)
	metrics.WriteProcessMetrics(w)
}

// name builds a series name from a family and label pairs, bounding the
// family's series count.
func name(family string, kv ...string) string {
	if len(kv)%2 != 0 {
		panic("telemetry: odd label list for " + family)
	}
	var b strings.Builder
	b.WriteString(family)
	if len(kv) > 0 {
		b.WriteByte('{')
		for i := 0; i < len(kv); i += 2 {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "%s=%q", kv[i], clean(kv[i+1]))
		}
		b.WriteByte('}')
	}
	return b.String()
}

// resolve returns n, or the family's overflow series once the family holds
// seriesMax series. Known names are cached; overflow names are not (so the
// cache is bounded too).
func resolve(family, n string, kv []string) string {
	if v, ok := resolved.Load(n); ok {
		return v.(string)
	}
	mu.Lock()
	defer mu.Unlock()
	if v, ok := resolved.Load(n); ok {
		return v.(string)
	}
	if families[family] >= seriesMax {
		for i := 1; i < len(kv); i += 2 {
			kv[i] = otherValue
		}
		return name(family, kv...)
	}
	families[family]++
	resolved.Store(n, n)
	return n
}

var resolved sync.Map // series name -> itself, for series under the bound

func counter(family string, kv ...string) *metrics.Counter {
	return set.GetOrCreateCounter(resolve(family, name(family, kv...), kv))
}

func floatCounter(family string, kv ...string) *metrics.FloatCounter {
	return set.GetOrCreateFloatCounter(resolve(family, name(family, kv...), kv))
}

func histogram(family string, kv ...string) *metrics.PrometheusHistogram {
	return set.GetOrCreatePrometheusHistogramExt(resolve(family, name(family, kv...), kv), latencyBuckets)
}

func gauge(family string, kv ...string) *metrics.Gauge {
	return set.GetOrCreateGauge(resolve(family, name(family, kv...), kv), nil)
}

// clean bounds a label value: at most labelBytesMax bytes of letters, digits
// and ._-/: ; anything else becomes '_'. Empty becomes "none".
func clean(v string) string {
	if v == "" {
		return "none"
	}
	if len(v) > labelBytesMax {
		v = v[:labelBytesMax]
	}
	b := []byte(v)
	for i, c := range b {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == '.', c == '_', c == '-', c == '/', c == ':':
		default:
			b[i] = '_'
		}
	}
	return string(b)
}

// marketOf returns the market code of a currency code, or "none".
func marketOf(currency string) string {
	for _, m := range market.All() {
		if string(m.Currency) == currency {
			return m.Code
		}
	}
	return "none"
}

// EventReceived counts one event handed to fn's handler.
func EventReceived(fn, eventType string) {
	counter("sebelas_events_received_total", "function", fn, "type", eventType).Inc()
}

// EventHandled counts one handled event by the status code answered and
// records the handler's latency.
func EventHandled(fn, eventType string, status int, took time.Duration) {
	counter("sebelas_events_handled_total", "function", fn, "type", eventType, "status", fmt.Sprint(status)).Inc()
	histogram("sebelas_handler_duration_seconds", "function", fn, "type", eventType).Update(took.Seconds())
}

// Outcome counts one business outcome: the reply event's type, the market
// (from the payment's currency; "none" when it has none) and the reason
// ("none" on success) and, for top-ups, the operator ("none" otherwise).
// Declines by reason per market and top-ups per operator come from here.
func Outcome(fn, replyType, currency, reason, operator string) {
	counter("sebelas_outcomes_total", "function", fn, "type", replyType, "market", marketOf(currency),
		"reason", reason, "operator", operator).Inc()
}

// DeadLetter counts one dead letter stored, by the original event's type
// and the HTTP code of its last failed delivery.
func DeadLetter(eventType, errorCode string) {
	counter("sebelas_dead_letters_total", "type", eventType, "error_code", errorCode).Inc()
}

// BreakerState sets an operator's breaker state gauge: 0 closed, 1 open,
// 2 half-open (the numbers of operator.BreakerState), and counts the change.
func BreakerState(operator string, state int, stateName string) {
	g := gauge("sebelas_operator_breaker_state", "operator", operator)
	if int(g.Get()) != state {
		counter("sebelas_operator_breaker_transitions_total", "operator", operator, "to", stateName).Inc()
	}
	g.Set(float64(state))
}

// WebhookDelivery counts one webhook delivery attempt to a marketplace by
// its result ("delivered", "failed", "rejected", "timeout", ...) and records
// how long it took. The notify function calls it.
func WebhookDelivery(result string, took time.Duration) {
	counter("sebelas_webhook_deliveries_total", "result", result).Inc()
	histogram("sebelas_webhook_delivery_duration_seconds", "result", result).Update(took.Seconds())
}

// IngressRequest counts one marketplace request at the ingress by outcome.
func IngressRequest(outcome string) {
	counter("sebelas_ingress_requests_total", "outcome", outcome).Inc()
}

// IngressReloadFailure counts one failed reload of the ingress's keys or
// merchants files.
func IngressReloadFailure() {
	counter("sebelas_ingress_config_reload_failures_total").Inc()
}

// DynamoCall counts one DynamoDB API call (retries not included).
func DynamoCall(op string) { counter("sebelas_dynamodb_calls_total", "operation", op).Inc() }

// DynamoRetry counts one attempt after the first of a call.
func DynamoRetry(op string) { counter("sebelas_dynamodb_retries_total", "operation", op).Inc() }

// DynamoThrottle counts one throttled attempt (ProvisionedThroughputExceeded,
// Throttling, RequestLimitExceeded).
func DynamoThrottle(op string) { counter("sebelas_dynamodb_throttles_total", "operation", op).Inc() }

// DynamoError counts one call that failed after its retries, by error code.
func DynamoError(op, code string) {
	counter("sebelas_dynamodb_errors_total", "operation", op, "code", code).Inc()
}

// DynamoCapacity adds the capacity units one call consumed.
func DynamoCapacity(op string, units float64) {
	floatCounter("sebelas_dynamodb_consumed_capacity_total", "operation", op).Add(units)
}

// DynamoSeconds records one call's latency, retries included.
func DynamoSeconds(op string, took time.Duration) {
	histogram("sebelas_dynamodb_call_duration_seconds", "operation", op).Update(took.Seconds())
}
