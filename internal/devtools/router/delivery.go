package router

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/cloudevents/sdk-go/v2/types"
	"github.com/rickb777/date/period"
	eventingduckv1 "knative.dev/eventing/pkg/apis/duck/v1"
	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"
	"knative.dev/eventing/pkg/eventfilter"
	"knative.dev/eventing/pkg/eventfilter/attributes"
	"knative.dev/eventing/pkg/eventfilter/subscriptionsapi"
	knerr "knative.dev/eventing/pkg/kncloudevents/attributes"
	duckv1 "knative.dev/pkg/apis/duck/v1"
)

// errorDataMax is how much of a failed response body Knative keeps:
// it reads up to 1024 bytes, base64-encodes them and truncates the text
// to 1024 characters (pkg/channel/attributes).
const errorDataMax = knerr.KnativeErrorDataExtensionMaxLength

// target is where a delivery goes: a Knative Service of the set (resolved
// at delivery time) or an absolute URI.
type target struct {
	service   string
	namespace string
	uri       string
}

func targetOf(ns string, d duckv1.Destination) (target, error) {
	switch {
	case d.Ref != nil && d.Ref.Kind == "Service":
		return target{service: d.Ref.Name, namespace: ns}, nil
	case d.Ref != nil:
		return target{}, fmt.Errorf("ref to a %s is not routable locally, only Services are", d.Ref.Kind)
	case d.URI != nil && d.URI.URL().IsAbs():
		return target{uri: d.URI.String()}, nil
	}
	return target{}, errors.New("destination has neither a Service ref nor an absolute uri")
}

// url resolves the target; for an unresolvable Service it still returns the
// in-cluster address (for knativeerrordest) with ok false.
func (t target) url(r *Router) (string, bool) {
	if t.uri != "" {
		return t.uri, true
	}
	if u, ok := r.resolve(t.service); ok && u != "" {
		return u, true
	}
	return fmt.Sprintf("http://%s.%s.svc.cluster.local", t.service, t.namespace), false
}

func (t target) String() string {
	if t.uri != "" {
		return t.uri
	}
	return "Service " + t.service
}

// policy is a retry policy: Knative's dispatcher for Triggers, the
// CloudEvents SDK's for a PingSource sending straight to a Service.
type policy struct {
	retryMax  int
	backoff   func(retry int) time.Duration // wait before retry number `retry` (0-based)
	retryable func(code int) bool           // code 0: no response (connection error, timeout)
	// retryAfterMax, when set, makes 429/503 Retry-After count (Knative's
	// delivery.retryAfterMax, an alpha field).
	retryAfterMax *time.Duration
	timeout       time.Duration
}

// knativeRetryable is kncloudevents.SelectiveRetry of Knative Eventing
// v0.38: retry when there is no response, and on 5xx, 404, 408, 409, 429.
// 404 is there because a pod that is becoming ready may answer it; 409
// because Knative's own e2e receivers use it.
func knativeRetryable(code int) bool {
	return code == 0 || code >= 500 || code == http.StatusNotFound || code == http.StatusRequestTimeout ||
		code == http.StatusConflict || code == http.StatusTooManyRequests
}

// knativePolicy is kncloudevents.RetryConfigFromDeliverySpec: RetryMax from
// retry (none when unset); backoff only when both backoffPolicy and
// backoffDelay are set, with the retry index starting at 0 as
// go-retryablehttp passes it (so exponential waits delay, 2*delay, 4*delay,
// ... and linear waits 0, delay, 2*delay, ...).
func knativePolicy(d *eventingduckv1.DeliverySpec, defTimeout time.Duration) (policy, error) {
	p := policy{backoff: func(int) time.Duration { return 0 }, retryable: knativeRetryable, timeout: defTimeout}
	if d == nil {
		return p, nil
	}
	if d.Retry != nil {
		p.retryMax = int(*d.Retry)
	}
	if d.BackoffPolicy != nil && d.BackoffDelay != nil {
		delay, err := parseISODuration(*d.BackoffDelay)
		if err != nil {
			return p, fmt.Errorf("delivery.backoffDelay: %w", err)
		}
		switch *d.BackoffPolicy {
		case eventingduckv1.BackoffPolicyExponential:
			p.backoff = func(n int) time.Duration { return delay * time.Duration(math.Exp2(float64(n))) }
		case eventingduckv1.BackoffPolicyLinear:
			p.backoff = func(n int) time.Duration { return delay * time.Duration(n) }
		default:
			return p, fmt.Errorf("delivery.backoffPolicy %q is neither exponential nor linear", *d.BackoffPolicy)
		}
	}
	if d.Timeout != nil {
		t, err := parseISODuration(*d.Timeout)
		if err != nil {
			return p, fmt.Errorf("delivery.timeout: %w", err)
		}
		p.timeout = t
	}
	if d.RetryAfterMax != nil {
		m, err := parseISODuration(*d.RetryAfterMax)
		if err != nil {
			return p, fmt.Errorf("delivery.retryAfterMax: %w", err)
		}
		p.retryAfterMax = &m
	}
	return p, nil
}

// parseISODuration parses an ISO-8601 duration with the same library
// Knative uses (github.com/rickb777/date/period).
func parseISODuration(s string) (time.Duration, error) {
	p, err := period.Parse(s)
	if err != nil {
		return 0, err
	}
	d, _ := p.Duration()
	return d, nil
}

// route is one Trigger made executable.
type route struct {
	name       string
	trigger    *eventingv1.Trigger
	filter     eventfilter.Filter // nil: no filter, everything passes
	subscriber target
	dls        *target
	policy     policy
	stats      triggerCounters
}

type triggerCounters struct {
	matched, delivered, retried, deadLettered, replies atomic.Int64
}

func (c *triggerCounters) snapshot() TriggerStats {
	return TriggerStats{
		Matched: c.matched.Load(), Delivered: c.delivered.Load(), Retried: c.retried.Load(),
		DeadLettered: c.deadLettered.Load(), Replies: c.replies.Load(),
	}
}

func newRoute(r *Router, b *eventingv1.Broker, t *eventingv1.Trigger) (*route, error) {
	rt := &route{name: t.Name, trigger: t}
	sub, err := targetOf(t.Namespace, t.Spec.Subscriber)
	if err != nil {
		return nil, fmt.Errorf("subscriber: %w", err)
	}
	rt.subscriber = sub
	// The Trigger's delivery replaces the Broker's as a whole (Knative's
	// trigger reconciler: delivery := t.Spec.Delivery, else b.Spec.Delivery);
	// the dead-letter sink falls back to the Broker's on its own.
	d := t.Spec.Delivery
	if d == nil {
		d = b.Spec.Delivery
	}
	if rt.policy, err = knativePolicy(d, r.opts.Timeout); err != nil {
		return nil, err
	}
	var dls *duckv1.Destination
	if t.Spec.Delivery != nil && t.Spec.Delivery.DeadLetterSink != nil {
		dls = t.Spec.Delivery.DeadLetterSink
	} else if b.Spec.Delivery != nil && b.Spec.Delivery.DeadLetterSink != nil {
		dls = b.Spec.Delivery.DeadLetterSink
	}
	if dls != nil {
		dt, err := targetOf(t.Namespace, *dls)
		if err != nil {
			return nil, fmt.Errorf("deadLetterSink: %w", err)
		}
		rt.dls = &dt
	}
	// Filter choice as Knative's broker filter: spec.filters only with the
	// feature flag on, else spec.filter.attributes, else no filter.
	switch {
	case r.opts.NewTriggerFilters && len(t.Spec.Filters) > 0:
		fs, err := materializeFilters(t.Spec.Filters)
		if err != nil {
			return nil, err
		}
		rt.filter = subscriptionsapi.NewAllFilter(fs...)
	case t.Spec.Filter != nil:
		rt.filter = attributes.NewAttributesFilter(t.Spec.Filter.Attributes)
	}
	return rt, nil
}

func (rt *route) matches(ctx context.Context, ev cloudevents.Event) bool {
	if rt.filter == nil {
		return true
	}
	return rt.filter.Filter(ctx, ev) != eventfilter.FailFilter
}

// materializeFilters turns spec.filters into eventfilter.Filters, one
// dialect per entry, as Knative's broker filter does.
func materializeFilters(in []eventingv1.SubscriptionsAPIFilter) ([]eventfilter.Filter, error) {
	out := make([]eventfilter.Filter, 0, len(in))
	for i, f := range in {
		mf, err := materializeFilter(f)
		if err != nil {
			return nil, fmt.Errorf("filters[%d]: %w", i, err)
		}
		if mf != nil {
			out = append(out, mf)
		}
	}
	return out, nil
}

func materializeFilter(f eventingv1.SubscriptionsAPIFilter) (eventfilter.Filter, error) {
	switch {
	case len(f.Exact) > 0:
		return subscriptionsapi.NewExactFilter(f.Exact)
	case len(f.Prefix) > 0:
		return subscriptionsapi.NewPrefixFilter(f.Prefix)
	case len(f.Suffix) > 0:
		return subscriptionsapi.NewSuffixFilter(f.Suffix)
	case len(f.All) > 0:
		fs, err := materializeFilters(f.All)
		if err != nil {
			return nil, err
		}
		return subscriptionsapi.NewAllFilter(fs...), nil
	case len(f.Any) > 0:
		fs, err := materializeFilters(f.Any)
		if err != nil {
			return nil, err
		}
		return subscriptionsapi.NewAnyFilter(fs...), nil
	case f.Not != nil:
		nf, err := materializeFilter(*f.Not)
		if err != nil {
			return nil, err
		}
		return subscriptionsapi.NewNotFilter(nf), nil
	case f.CESQL != "":
		return subscriptionsapi.NewCESQLFilter(f.CESQL)
	}
	return nil, nil
}

// outcome is the result of one HTTP attempt.
type outcome struct {
	code       int    // HTTP status; 0 when there was no response
	body       []byte // failed response body (at most errorDataMax bytes) or dispatch error text
	reply      *cloudevents.Event
	retryAfter time.Duration
	err        error
}

func (o outcome) ok() bool { return o.err == nil && o.code >= 200 && o.code < 300 }

// reportedCode is the status Knative puts in knativeerrorcode: a missing
// response is reported as 500.
func (o outcome) reportedCode() int {
	if o.code == 0 {
		return http.StatusInternalServerError
	}
	return o.code
}

// send makes HTTP attempts to t under p until success, a non-retryable
// answer or exhausted retries, like go-retryablehttp in Knative's
// dispatcher. It returns the last outcome, the URL used and the attempts.
func (r *Router) send(t target, ev cloudevents.Event, headers http.Header, p policy, onRetry func(retry int, o outcome, wait time.Duration)) (outcome, string, int) {
	var o outcome
	var u string
	attempts := 0
	for i := 0; ; i++ {
		var ok bool
		u, ok = t.url(r)
		attempts++
		if ok {
			o = r.attempt(u, ev, headers, p.timeout)
		} else {
			o = outcome{err: fmt.Errorf("%s is not running (no local URL)", t), body: []byte("dispatch error: " + t.String() + " is not running")}
		}
		if r.ctx.Err() != nil {
			return o, u, attempts
		}
		if o.ok() || !p.retryable(o.code) || p.retryMax-i <= 0 {
			return o, u, attempts
		}
		wait := p.backoff(i)
		if p.retryAfterMax != nil && (o.code == http.StatusTooManyRequests || o.code == http.StatusServiceUnavailable) {
			ra := o.retryAfter
			if ra > *p.retryAfterMax {
				ra = *p.retryAfterMax
			}
			if ra > wait {
				wait = ra
			}
		}
		if onRetry != nil {
			onRetry(i, o, wait)
		}
		if err := r.opts.Sleep(r.ctx, wait); err != nil {
			return o, u, attempts
		}
	}
}

// attempt makes one POST of ev in binary mode and classifies the answer the
// way Knative's broker filter does.
func (r *Router) attempt(u string, ev cloudevents.Event, headers http.Header, timeout time.Duration) outcome {
	select {
	case r.sem <- struct{}{}:
		defer func() { <-r.sem }()
	case <-r.ctx.Done():
		return outcome{err: r.ctx.Err()}
	}
	ctx, cancel := context.WithTimeout(r.ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		return outcome{err: err, body: []byte("dispatch error: " + err.Error())}
	}
	for k, vs := range headers {
		req.Header[k] = vs
	}
	if err := cehttp.WriteRequest(binding.WithForceBinary(ctx), binding.ToMessage(&ev), req); err != nil {
		return outcome{err: err, body: []byte("dispatch error: " + err.Error())}
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return outcome{err: err, body: []byte("dispatch error: " + err.Error())}
	}
	defer resp.Body.Close()
	o := outcome{code: resp.StatusCode}
	if resp.StatusCode < 200 || resp.StatusCode >= 300 {
		o.body, _ = io.ReadAll(io.LimitReader(resp.Body, errorDataMax))
		o.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), r.opts.Now())
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return o
	}
	// 2xx: an empty body is a plain ack; a CloudEvent is a reply; anything
	// else is answered 502 by Knative's broker filter (and so retried).
	msg := cehttp.NewMessageFromHttpResponse(resp)
	defer msg.Finish(nil)
	if msg.ReadEncoding() == binding.EncodingUnknown {
		body, _ := io.ReadAll(io.LimitReader(msg.BodyReader, errorDataMax))
		if len(body) == 0 {
			return o
		}
		return outcome{code: http.StatusBadGateway, body: body,
			err: errors.New("2xx response with a body that is not a CloudEvent")}
	}
	reply, err := binding.ToEvent(ctx, msg)
	if err != nil {
		return outcome{code: http.StatusBadGateway, body: []byte(err.Error()), err: fmt.Errorf("malformed reply event: %w", err)}
	}
	o.reply = reply
	return o
}

// parseRetryAfter reads delay-seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return t.Sub(now)
	}
	return 0
}

// deliverTrigger runs one Trigger's delivery chain for ev: attempts and
// retries, then the reply or the dead letter.
func (r *Router) deliverTrigger(rt *route, ev cloudevents.Event, ttl int32) {
	log := r.log.With("trigger", rt.name, "type", ev.Type(), "id", ev.ID())
	headers := http.Header{}
	headers.Set("Prefer", "reply")
	headers.Set("Kn-Namespace", rt.trigger.Namespace)
	o, u, attempts := r.send(rt.subscriber, ev, headers, rt.policy, func(retry int, o outcome, wait time.Duration) {
		rt.stats.retried.Add(1)
		r.retried.Add(1)
		log.Warn("delivery failed, retrying", "subscriber", rt.subscriber.String(), "status", o.code, "error", o.err, "retry", retry+1, "wait", wait)
	})
	if r.ctx.Err() != nil {
		log.Warn("router closed, delivery abandoned")
		return
	}
	if !o.ok() {
		reason := fmt.Sprintf("subscriber answered %d", o.code)
		switch {
		case o.code == 0:
			reason = "no response: " + errString(o.err)
		case o.err != nil:
			reason = fmt.Sprintf("subscriber answered %d: %v", o.code, o.err)
		}
		if rt.policy.retryable(o.code) {
			reason += fmt.Sprintf(" (retries exhausted after %d attempts)", attempts)
		} else {
			reason += " (not retryable)"
		}
		r.deadLetter(rt, ev, u, o.reportedCode(), o.body, attempts, reason)
		return
	}
	rt.stats.delivered.Add(1)
	r.delivered.Add(1)
	log.Debug("delivered", "subscriber", u, "status", o.code, "attempts", attempts)
	if o.reply == nil {
		return
	}
	// The reply goes back into the Broker with one hop less. The ingress
	// refuses it (400, not retried) when its TTL is spent or it does not
	// validate; then, as Knative does, the original event is dead-lettered.
	if err := r.enter(*o.reply, ttl-1); err != nil {
		r.deadLetter(rt, ev, r.ingress, http.StatusBadRequest, []byte(err.Error()), attempts, "reply refused by the broker: "+err.Error())
		return
	}
	rt.stats.replies.Add(1)
	r.replies.Add(1)
}

// deadLetter sends ev with Knative's error extensions to the route's
// dead-letter sink (with the route's retry policy, as Knative does),
// records it and calls the hook.
func (r *Router) deadLetter(rt *route, ev cloudevents.Event, dest string, code int, body []byte, attempts int, reason string) {
	rt.stats.deadLettered.Add(1)
	dl := DeadLetter{
		Event: withErrorExtensions(ev, dest, code, body), Trigger: rt.name, Destination: dest,
		StatusCode: code, Attempts: attempts, Reason: reason, At: r.opts.Now(),
	}
	log := r.log.With("trigger", rt.name, "type", ev.Type(), "id", ev.ID(), "status", code, "attempts", attempts, "reason", reason)
	if rt.dls == nil {
		dl.SinkErr = errors.New("no dead-letter sink configured: event dropped")
		log.Error("event dropped: no dead-letter sink")
		r.recordDeadLetter(dl)
		return
	}
	dl.Sink = rt.dls.String()
	if _, ok := rt.dls.url(r); !ok {
		// Locally the recorder may not run; on a cluster the Trigger would
		// not be Ready. Record it without waiting through the retries.
		dl.SinkErr = fmt.Errorf("dead-letter sink %s is not running", rt.dls)
	} else {
		o, _, _ := r.send(*rt.dls, dl.Event, http.Header{"Kn-Namespace": {rt.trigger.Namespace}}, rt.policy, nil)
		if !o.ok() {
			dl.SinkErr = fmt.Errorf("dead-letter sink answered %d: %s", o.code, errString(o.err))
		}
	}
	if dl.SinkErr != nil {
		log.Error("dead letter not stored", "sink", dl.Sink, "error", dl.SinkErr)
	} else {
		log.Warn("dead-lettered", "sink", dl.Sink)
	}
	r.recordDeadLetter(dl)
}

// withErrorExtensions returns a copy of ev carrying knativeerrordest,
// knativeerrorcode and knativeerrordata (base64 of the body, cut to 1024
// characters), as Knative's dispatcher adds them.
func withErrorExtensions(ev cloudevents.Event, dest string, code int, body []byte) cloudevents.Event {
	out := ev.Clone()
	if u, err := url.Parse(dest); err == nil {
		out.SetExtension(knerr.KnativeErrorDestExtensionKey, types.URI{URL: *u})
	} else {
		out.SetExtension(knerr.KnativeErrorDestExtensionKey, dest)
	}
	out.SetExtension(knerr.KnativeErrorCodeExtensionKey, int32(code))
	data := base64.StdEncoding.EncodeToString(body)
	if len(data) > errorDataMax {
		data = data[:errorDataMax]
	}
	out.SetExtension(knerr.KnativeErrorDataExtensionKey, data)
	return out
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
