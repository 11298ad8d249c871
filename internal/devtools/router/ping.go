package router

import (
	"context"
	"encoding/base64"
	"fmt"
	"math"
	"net/http"
	"sort"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/google/uuid"
	"github.com/robfig/cron/v3"
	sourcesv1 "knative.dev/eventing/pkg/apis/sources/v1"
)

// ping is one PingSource made executable.
type ping struct {
	src      *sourcesv1.PingSource
	spec     string // the cron spec as Knative's adapter builds it
	schedule cron.Schedule
	toBroker bool
	target   target
	event    cloudevents.Event // template; each fire gets a new id and time
}

func newPing(r *Router, p *sourcesv1.PingSource) (*ping, error) {
	pg := &ping{src: p}
	// Knative's mtping adapter: prefix CRON_TZ when a timezone is set and
	// parse with robfig/cron's standard parser.
	spec := p.Spec.Schedule
	if spec == "" {
		spec = "* * * * *" // PingSource's SetDefaults
	}
	if p.Spec.Timezone != "" {
		spec = "CRON_TZ=" + p.Spec.Timezone + " " + spec
	}
	sched, err := cron.ParseStandard(spec)
	if err != nil {
		return nil, fmt.Errorf("schedule %q: %w", spec, err)
	}
	pg.spec, pg.schedule = spec, sched

	sink := p.Spec.Sink
	switch {
	case sink.Ref != nil && sink.Ref.Kind == "Broker":
		if sink.Ref.Name != r.broker.Name || (sink.Ref.Namespace != "" && sink.Ref.Namespace != r.broker.Namespace) {
			return nil, fmt.Errorf("sink Broker %q is not this router's Broker %s/%s", sink.Ref.Name, r.broker.Namespace, r.broker.Name)
		}
		pg.toBroker = true
	default:
		t, err := targetOf(p.Namespace, sink)
		if err != nil {
			return nil, fmt.Errorf("sink: %w", err)
		}
		pg.target = t
	}

	ev, err := pingEvent(p)
	if err != nil {
		return nil, err
	}
	pg.event = ev
	return pg, nil
}

// pingEvent builds the event as makeEvent in Knative's mtping adapter:
// fixed type and source, ceOverrides extensions, data or dataBase64 with
// contentType.
func pingEvent(p *sourcesv1.PingSource) (cloudevents.Event, error) {
	ev := cloudevents.NewEvent()
	ev.SetType(sourcesv1.PingSourceEventType)
	ev.SetSource(sourcesv1.PingSourceSource(p.Namespace, p.Name))
	if ov := p.Spec.CloudEventOverrides; ov != nil {
		for k, v := range ov.Extensions {
			if err := ev.Context.SetExtension(k, v); err != nil {
				return ev, fmt.Errorf("ceOverrides.extensions[%s]: %w", k, err)
			}
		}
	}
	var data []byte
	switch {
	case p.Spec.DataBase64 != "":
		b, err := base64.StdEncoding.DecodeString(p.Spec.DataBase64)
		if err != nil {
			return ev, fmt.Errorf("dataBase64: %w", err)
		}
		data = b
	case p.Spec.Data != "":
		data = []byte(p.Spec.Data)
	}
	if data != nil {
		if err := ev.SetData(p.Spec.ContentType, data); err != nil {
			return ev, fmt.Errorf("data: %w", err)
		}
	}
	return ev, nil
}

// PingSources lists the PingSource names the router fires, in set order.
func (r *Router) PingSources() []string {
	return append([]string(nil), r.order...)
}

// NextPing says when PingSource name fires next after t (in its own time
// zone, as Knative computes it).
func (r *Router) NextPing(name string, after time.Time) (time.Time, error) {
	pg, ok := r.pings[name]
	if !ok {
		return time.Time{}, r.unknownPing(name)
	}
	return pg.schedule.Next(after), nil
}

// StartPings fires every PingSource on its schedule until ctx is done or
// the Router is closed. Calling it twice runs the schedules twice.
func (r *Router) StartPings(ctx context.Context) {
	c := cron.New(cron.WithLocation(time.UTC)) // the adapter runs in UTC
	for _, name := range r.order {
		pg := r.pings[name]
		c.Schedule(pg.schedule, cron.FuncJob(func() {
			if err := r.fire(pg); err != nil {
				r.log.Error("ping failed", "pingsource", pg.src.Name, "error", err)
			}
		}))
	}
	r.cronMu.Lock()
	r.crons = append(r.crons, c)
	r.cronMu.Unlock()
	c.Start()
	go func() {
		select {
		case <-ctx.Done():
		case <-r.ctx.Done():
		}
		c.Stop()
	}()
}

// FirePing fires PingSource name now, as if its schedule had come round
// (`sebelas dev --fire settle-id`). It returns once the event is enqueued;
// Wait waits for its deliveries.
func (r *Router) FirePing(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	pg, ok := r.pings[name]
	if !ok {
		return r.unknownPing(name)
	}
	return r.fire(pg)
}

func (r *Router) unknownPing(name string) error {
	names := append([]string(nil), r.order...)
	sort.Strings(names)
	return fmt.Errorf("router: no PingSource %q (have %v)", name, names)
}

func (r *Router) fire(pg *ping) error {
	if r.ctx.Err() != nil {
		return fmt.Errorf("router: closed")
	}
	ev := pg.event.Clone()
	ev.SetID(uuid.NewString())
	ev.SetTime(r.opts.Now()) // the adapter's client stamps the time
	r.pingFires[pg.src.Name].Add(1)
	r.log.Debug("ping", "pingsource", pg.src.Name, "id", ev.ID())
	if pg.toBroker {
		return r.enter(ev, defaultTTL)
	}
	r.begin()
	go func() {
		defer r.end()
		r.deliverPing(pg, ev)
	}()
	return nil
}

// pingPolicy is what the mtping adapter asks of the CloudEvents SDK:
// ContextWithRetriesExponentialBackoff(50ms, 5), i.e. up to 5 retries,
// waiting 50ms*2^n before retry n = 1..5, on no response and on the SDK's
// retriable codes 404, 413, 425, 429, 502, 503 and 504.
func pingPolicy(timeout time.Duration) policy {
	return policy{
		retryMax: 5,
		backoff: func(i int) time.Duration {
			return 50 * time.Millisecond * time.Duration(math.Exp2(float64(i+1)))
		},
		retryable: func(code int) bool {
			switch code {
			case 0, http.StatusNotFound, http.StatusRequestEntityTooLarge, http.StatusTooEarly,
				http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
				return true
			}
			return false
		},
		timeout: timeout,
	}
}

// deliverPing sends a tick straight to a Service. A PingSource has no
// reply path and no dead-letter sink: a reply is dropped, a failed tick is
// lost (recorded here as a dead letter that reached no sink).
func (r *Router) deliverPing(pg *ping, ev cloudevents.Event) {
	log := r.log.With("pingsource", pg.src.Name, "id", ev.ID())
	o, u, attempts := r.send(pg.target, ev, http.Header{}, pingPolicy(r.opts.Timeout), func(retry int, o outcome, wait time.Duration) {
		r.retried.Add(1)
		log.Warn("ping delivery failed, retrying", "status", o.code, "error", o.err, "wait", wait)
	})
	if r.ctx.Err() != nil {
		return
	}
	if o.ok() {
		r.delivered.Add(1)
		if o.reply != nil {
			log.Warn("reply to a PingSource dropped (a PingSource has no reply path; sink the PingSource to the Broker)", "reply_type", o.reply.Type())
		}
		return
	}
	reason := fmt.Sprintf("ping lost after %d attempts: status %d %s", attempts, o.code, errString(o.err))
	log.Error(reason)
	r.recordDeadLetter(DeadLetter{
		Event: withErrorExtensions(ev, u, o.reportedCode(), o.body), PingSource: pg.src.Name,
		Destination: u, StatusCode: o.reportedCode(), Attempts: attempts, Reason: reason,
		SinkErr: fmt.Errorf("a PingSource has no dead-letter sink: tick lost"), At: r.opts.Now(),
	})
}
