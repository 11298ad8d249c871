// Package router is the local stand-in for the Knative Broker, its Triggers
// and the PingSources of infra/knative. `sebelas dev` and the end-to-end tests
// use it to route events between functions running as local HTTP servers.
// It reads the same typed objects the cluster gets (package manifests) and
// follows Knative Eventing v0.38's data plane (the version go.mod pins), so
// local routing and the cluster cannot drift apart:
//
//   - Ingress: CloudEvents in binary or structured mode; 202 once accepted;
//     400 for an event that does not validate; the broker TTL
//     (knativebrokerttl, default 255 hops) guards against reply loops.
//   - Filtering: knative.dev/eventing/pkg/eventfilter/attributes for
//     spec.filter.attributes, and pkg/eventfilter/subscriptionsapi for
//     spec.filters when Options.NewTriggerFilters mirrors the cluster's
//     alpha flag (off by default, as in Knative, which ignores the field).
//   - Delivery: HTTP POST in binary mode with "Prefer: reply". The Trigger's
//     delivery (or else the Broker's) decides retries exactly as Knative's
//     dispatcher does: up to `retry` retries; before retry n (n = 0, 1, ...)
//     wait backoffDelay*2^n (exponential) or backoffDelay*n (linear); retry
//     connection errors, timeouts, 404, 408, 409, 429 and 5xx only
//     (kncloudevents.SelectiveRetry); any other non-2xx dead-letters at once.
//   - Replies: a 2xx carrying a CloudEvent is published back into the Broker
//     (one TTL hop). A 2xx with a body that is not a CloudEvent is a failure
//     (502, as Knative's broker filter answers).
//   - Dead letters: the original event, with knativeerrorcode,
//     knativeerrordest and knativeerrordata (base64 of the failed response
//     body, truncated to 1024 characters), is sent to the dead-letter sink
//     with the same retry policy, handed to Options.OnDeadLetter and kept in
//     a bounded in-memory list.
//   - PingSources: fire on their cron schedule in their time zone with the
//     event Knative's PingSource adapter sends (type dev.knative.sources.ping,
//     source /apis/v1/namespaces/<ns>/pingsources/<name>, data, ceOverrides
//     extensions); to the Broker when the sink is the Broker, else straight
//     to the Service with the adapter's own policy (5 retries, no reply, no
//     dead-letter sink).
//
// Dependency rule: router (like manifests) imports Knative Eventing and
// Serving API packages. That is allowed only because its users are
// cmd/sebelas and tests. functions/ and the domain packages must never
// import router or manifests.
package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/cloudevents/sdk-go/v2/types"
	"github.com/robfig/cron/v3"
	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"

	"github.com/sebelas/sebelas/internal/devtools/manifests"
)

// Knative names and defaults this package mirrors.
const (
	// ttlExtension carries the remaining reply hops inside the Broker;
	// Knative strips it before delivery to a subscriber.
	ttlExtension = "knativebrokerttl"
	// arrivalExtension is set by Knative's broker ingress on every event.
	arrivalExtension = "knativearrivaltime"
	defaultTTL       = 255

	defaultTimeout         = 30 * time.Second
	defaultMaxInFlight     = 64
	defaultMaxBodyBytes    = 1 << 20
	defaultKeepDeadLetters = 100
)

// Options tune a Router. The zero value is usable.
type Options struct {
	// Logger receives delivery logs; nil means slog.Default().
	Logger *slog.Logger
	// Timeout bounds one HTTP attempt (a Trigger's delivery.timeout, when
	// set, wins). 0 means 30 s.
	Timeout time.Duration
	// MaxInFlight bounds concurrent HTTP attempts across all deliveries;
	// waiting between retries does not hold a slot. 0 means 64.
	MaxInFlight int
	// MaxBodyBytes bounds an event accepted at the ingress. 0 means 1 MiB.
	MaxBodyBytes int64
	// HTTPClient sends deliveries; nil means a client with default
	// transport. Per-attempt timeouts are applied through the context.
	HTTPClient *http.Client
	// Now is the clock (knativearrivaltime, ping time, dead letters); nil
	// means time.Now.
	Now func() time.Time
	// Sleep waits between retries; nil means a timer that honours ctx.
	// Tests pass a hook that records the duration and returns at once.
	Sleep func(ctx context.Context, d time.Duration) error
	// OnDeadLetter, when set, is called once per dead letter (also when the
	// event could not be handed to a sink), from the delivery goroutine.
	OnDeadLetter func(DeadLetter)
	// KeepDeadLetters bounds the in-memory list DeadLetters returns.
	// 0 means 100; negative keeps none.
	KeepDeadLetters int
	// NewTriggerFilters honours Trigger spec.filters, like Knative's alpha
	// feature flag new-trigger-filters; off, as in Knative by default, the
	// field is ignored.
	NewTriggerFilters bool
	// IngressURL is what knativeerrordest says when a reply could not be
	// published into the Broker. "" means Knative's in-cluster ingress URL.
	IngressURL string
}

// DeadLetter is one event that could not be delivered.
type DeadLetter struct {
	// Event is the original event with the knativeerror* extensions, as sent
	// to the dead-letter sink.
	Event cloudevents.Event
	// Trigger is the Trigger whose delivery failed ("" for a PingSource
	// sending straight to a Service, then PingSource is set).
	Trigger    string
	PingSource string
	// Destination is the URL that failed (the subscriber, or the Broker
	// ingress when a reply was refused).
	Destination string
	// StatusCode is the last HTTP status (500 for a connection error or
	// timeout, as Knative reports it).
	StatusCode int
	// Attempts is the number of HTTP attempts made (1 + retries).
	Attempts int
	// Reason says why in words.
	Reason string
	// Sink is the dead-letter Service ("" when none is configured) and
	// SinkErr is set when the dead letter could not be handed to it.
	Sink    string
	SinkErr error
	At      time.Time
}

// TriggerStats counts one Trigger's work.
type TriggerStats struct {
	Matched      int64 // events that passed the filter
	Delivered    int64 // accepted by the subscriber (2xx)
	Retried      int64 // retries made
	DeadLettered int64 // ended in the dead-letter path
	Replies      int64 // reply events published back into the Broker
}

// Stats is a snapshot of a Router's counters.
type Stats struct {
	Received     int64 // events accepted into the Broker (ingress, Publish, pings)
	Replies      int64 // reply events published back into the Broker
	Delivered    int64
	Retried      int64
	DeadLettered int64
	Pings        map[string]int64 // fires per PingSource
	Triggers     map[string]TriggerStats
}

// Router routes events like the Broker of a manifests.Set.
type Router struct {
	set     *manifests.Set
	broker  *eventingv1.Broker
	resolve func(string) (string, bool)
	opts    Options
	log     *slog.Logger
	client  *http.Client
	routes  []*route
	pings   map[string]*ping
	order   []string // PingSource names in set order
	sem     chan struct{}
	ingress string

	ctx    context.Context // deliveries run under it; Close cancels it
	cancel context.CancelFunc

	mu       sync.Mutex
	inflight int
	idle     chan struct{} // closed while inflight == 0
	dead     []DeadLetter
	cronMu   sync.Mutex
	crons    []*cron.Cron

	received, replies, delivered, retried, deadLettered atomic.Int64
	pingFires                                           map[string]*atomic.Int64
}

// New builds a Router for the single Broker of set. resolve maps a Knative
// Service name to the URL it listens on locally; it is called at delivery
// time, so functions may start after the Router. An unresolvable subscriber
// counts as a connection error (retried, then dead-lettered).
func New(set *manifests.Set, resolve func(serviceName string) (url string, ok bool), opts Options) (*Router, error) {
	if set == nil {
		return nil, errors.New("router: nil manifest set")
	}
	if resolve == nil {
		return nil, errors.New("router: nil resolve function")
	}
	if len(set.Brokers) != 1 {
		return nil, fmt.Errorf("router: the set must hold exactly one Broker, it holds %d", len(set.Brokers))
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Timeout <= 0 {
		opts.Timeout = defaultTimeout
	}
	if opts.MaxInFlight <= 0 {
		opts.MaxInFlight = defaultMaxInFlight
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = defaultMaxBodyBytes
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Sleep == nil {
		opts.Sleep = sleepCtx
	}
	if opts.KeepDeadLetters == 0 {
		opts.KeepDeadLetters = defaultKeepDeadLetters
	}
	b := set.Brokers[0]
	r := &Router{
		set:       set,
		broker:    b,
		resolve:   resolve,
		opts:      opts,
		log:       opts.Logger.With("broker", b.Namespace+"/"+b.Name),
		client:    opts.HTTPClient,
		pings:     map[string]*ping{},
		sem:       make(chan struct{}, opts.MaxInFlight),
		idle:      make(chan struct{}),
		pingFires: map[string]*atomic.Int64{},
		ingress:   opts.IngressURL,
	}
	close(r.idle)
	if r.client == nil {
		r.client = &http.Client{}
	}
	if r.ingress == "" {
		r.ingress = fmt.Sprintf("http://broker-ingress.knative-eventing.svc.cluster.local/%s/%s", b.Namespace, b.Name)
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())

	var errs []error
	for _, t := range set.TriggersOf(b.Namespace, b.Name) {
		rt, err := newRoute(r, b, t)
		if err != nil {
			errs = append(errs, fmt.Errorf("router: Trigger %s: %w", t.Name, err))
			continue
		}
		r.routes = append(r.routes, rt)
	}
	for _, p := range set.PingSources {
		pg, err := newPing(r, p)
		if err != nil {
			errs = append(errs, fmt.Errorf("router: PingSource %s: %w", p.Name, err))
			continue
		}
		r.pings[p.Name] = pg
		r.order = append(r.order, p.Name)
		r.pingFires[p.Name] = &atomic.Int64{}
	}
	if err := errors.Join(errs...); err != nil {
		r.cancel()
		return nil, err
	}
	return r, nil
}

// Close stops the ping schedules and abandons deliveries still waiting or
// in flight (they are neither retried further nor dead-lettered).
func (r *Router) Close() error {
	r.cronMu.Lock()
	for _, c := range r.crons {
		c.Stop()
	}
	r.crons = nil
	r.cronMu.Unlock()
	r.cancel()
	return nil
}

// ServeHTTP is the Broker ingress. It accepts POST on "/" or on
// "/<namespace>/<broker>" (the path of Knative's ingress), answers 202
// once the event is enqueued, 400 for an event that cannot be read or does
// not validate, 413 when the body is over Options.MaxBodyBytes.
func (r *Router) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	w.Header().Set("Allow", "POST, OPTIONS")
	switch req.Method {
	case http.MethodOptions: // CloudEvents webhook validation, as Knative
		w.Header().Set("WebHook-Allowed-Origin", "*")
		w.Header().Set("WebHook-Allowed-Rate", "*")
		w.WriteHeader(http.StatusOK)
		return
	case http.MethodPost:
	default:
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	if p := strings.TrimSuffix(req.URL.Path, "/"); p != "" && p != "/"+r.broker.Namespace+"/"+r.broker.Name {
		http.Error(w, "no such broker", http.StatusNotFound)
		return
	}
	req.Body = http.MaxBytesReader(w, req.Body, r.opts.MaxBodyBytes)
	msg := cehttp.NewMessageFromHttpRequest(req)
	defer msg.Finish(nil)
	ev, err := binding.ToEvent(req.Context(), msg)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, "event too large", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "not a CloudEvent: "+err.Error(), http.StatusBadRequest)
		return
	}
	if err := r.Publish(req.Context(), *ev); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// Publish puts ev into the Broker as if it had been POSTed to the ingress:
// it validates the event, applies the TTL rules and starts one delivery per
// matching Trigger. It returns once the deliveries are enqueued; Wait waits
// for them.
func (r *Router) Publish(ctx context.Context, ev cloudevents.Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := r.ctx.Err(); err != nil {
		return errors.New("router: closed")
	}
	ttl := int32(defaultTTL)
	if raw, ok := ev.Extensions()[ttlExtension]; ok {
		if v, err := types.ToInteger(raw); err == nil {
			ttl = v - 1 // Knative's ingress decrements an existing TTL
		}
	}
	return r.enter(ev, ttl)
}

// enter is the ingress after TTL handling: validate, stamp, fan out.
func (r *Router) enter(ev cloudevents.Event, ttl int32) error {
	ev = ev.Clone()
	ev.SetExtension(ttlExtension, nil)
	if ttl <= 0 {
		return fmt.Errorf("event %s/%s dropped: broker TTL exhausted (reply loop?)", ev.Source(), ev.ID())
	}
	if err := ev.Validate(); err != nil {
		return fmt.Errorf("invalid CloudEvent: %w", err)
	}
	ev.SetExtension(arrivalExtension, types.Timestamp{Time: r.opts.Now().UTC()})
	r.received.Add(1)
	matched := 0
	for _, rt := range r.routes {
		if !rt.matches(r.ctx, ev) {
			continue
		}
		matched++
		rt.stats.matched.Add(1)
		r.begin()
		go func(rt *route, ev cloudevents.Event) {
			defer r.end()
			r.deliverTrigger(rt, ev, ttl)
		}(rt, ev.Clone())
	}
	r.log.Debug("event accepted", "type", ev.Type(), "source", ev.Source(), "id", ev.ID(), "triggers", matched)
	return nil
}

// Wait blocks until every delivery chain started so far, including
// retries, replies and dead letters, has finished, or ctx is done.
func (r *Router) Wait(ctx context.Context) error {
	for {
		r.mu.Lock()
		n, idle := r.inflight, r.idle
		r.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-idle:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (r *Router) begin() {
	r.mu.Lock()
	if r.inflight == 0 {
		r.idle = make(chan struct{})
	}
	r.inflight++
	r.mu.Unlock()
}

func (r *Router) end() {
	r.mu.Lock()
	r.inflight--
	if r.inflight == 0 {
		close(r.idle)
	}
	r.mu.Unlock()
}

// Stats returns a snapshot of the counters.
func (r *Router) Stats() Stats {
	s := Stats{
		Received:     r.received.Load(),
		Replies:      r.replies.Load(),
		Delivered:    r.delivered.Load(),
		Retried:      r.retried.Load(),
		DeadLettered: r.deadLettered.Load(),
		Pings:        map[string]int64{},
		Triggers:     map[string]TriggerStats{},
	}
	for name, n := range r.pingFires {
		s.Pings[name] = n.Load()
	}
	for _, rt := range r.routes {
		s.Triggers[rt.name] = rt.stats.snapshot()
	}
	return s
}

// DeadLetters returns the most recent dead letters, oldest first (at most
// Options.KeepDeadLetters).
func (r *Router) DeadLetters() []DeadLetter {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]DeadLetter(nil), r.dead...)
}

func (r *Router) recordDeadLetter(dl DeadLetter) {
	r.deadLettered.Add(1)
	if keep := r.opts.KeepDeadLetters; keep > 0 {
		r.mu.Lock()
		r.dead = append(r.dead, dl)
		if len(r.dead) > keep {
			r.dead = append(r.dead[:0:0], r.dead[len(r.dead)-keep:]...)
		}
		r.mu.Unlock()
	}
	if r.opts.OnDeadLetter != nil {
		r.opts.OnDeadLetter(dl)
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
