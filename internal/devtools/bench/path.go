package bench

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/sebelas/sebelas/events"
	"github.com/sebelas/sebelas/internal/devtools/burst"
	"github.com/sebelas/sebelas/internal/function"
	"github.com/sebelas/sebelas/internal/signing"
)

// tracker learns, from inside the functions, when a charge's events pass
// each stage: the Broker's ingress answers 202 at once, so the end of the
// path is only visible where the reply is made.
type tracker struct {
	mu      sync.Mutex
	waiting map[string]*waiter // charge_id -> its waiter
}

type waiter struct {
	screened time.Time   // fraud replied
	verdict  string      // fraud's decision and reasons when not allow
	done     chan string // the charge's outcome
}

func newTracker() *tracker { return &tracker{waiting: map[string]*waiter{}} }

func (t *tracker) expect(id string) *waiter {
	w := &waiter{done: make(chan string, 1)}
	t.mu.Lock()
	t.waiting[id] = w
	t.mu.Unlock()
	return w
}

func (t *tracker) forget(id string) {
	t.mu.Lock()
	delete(t.waiting, id)
	t.mu.Unlock()
}

// replied is called with every reply a function makes.
func (t *tracker) replied(reply *cloudevents.Event) {
	if reply == nil {
		return
	}
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	w := t.waiting[reply.Subject()]
	if w == nil {
		return
	}
	switch reply.Type() {
	case events.TypeChargeScreened:
		if w.screened.IsZero() {
			w.screened = now
		}
		var sc events.ChargeScreened
		if reply.DataAs(&sc) == nil && sc.Screening.Decision != events.DecisionAllow {
			w.verdict = " (" + sc.Screening.Decision + ": " + strings.Join(sc.Screening.Reasons, "+") + ")"
		}
	case events.TypeChargeSucceeded, events.TypeChargeDeclined, events.TypeChargeHeld:
		outcome := outcomeSucceeded
		switch reply.Type() {
		case events.TypeChargeDeclined:
			var res events.ChargeResult
			_ = reply.DataAs(&res)
			outcome = "declined: " + res.Reason
		case events.TypeChargeHeld:
			outcome = outcomeHeld
		}
		outcome += w.verdict
		select {
		case w.done <- outcome:
		default: // a replayed duplicate: the first outcome counts
		}
	}
}

// wrap returns builders whose handlers report their replies to t. The
// handlers themselves are the functions' own, built by their own Builders.
func wrap(builders map[string]function.Builder, t *tracker) map[string]function.Builder {
	out := make(map[string]function.Builder, len(builders))
	for name, build := range builders {
		out[name] = func(ctx context.Context, getenv func(string) string, log *slog.Logger) (function.Handler, error) {
			h, err := build(ctx, getenv, log)
			if err != nil {
				return nil, err
			}
			return func(ctx context.Context, ev cloudevents.Event) (*cloudevents.Event, error) {
				reply, err := h(ctx, ev)
				if err == nil {
					t.replied(reply)
				}
				return reply, err
			}, nil
		}
	}
	return out
}

// pathTimeoutMs bounds one charge's way through the path, retries included
// (the Broker's backoff is minutes; a benchmark charge that slow is failed).
const pathTimeoutMs = 30_000

// pathOp sends charge.requested to the Broker's ingress over HTTP, as a
// marketplace would, and waits for the charge function's reply.
func pathOp(client *http.Client, ingress string, p burst.Profile, run string, t *tracker, keys signing.DevKeys) op {
	return func(ctx context.Context, ev burst.Event) (string, time.Duration) {
		ce, err := p.CloudEvent(run, ev, time.Now())
		if err != nil {
			return "error: " + err.Error(), 0
		}
		// Signed as the marketplace ingress would (before the clock
		// starts): fraud screens only requests the ingress signed.
		if err := keys.Sign(&ce, time.Now()); err != nil {
			return "error: " + err.Error(), 0
		}
		id := burst.ChargeID(run, ev.Seq)
		w := t.expect(id)
		defer t.forget(id)
		start := time.Now()
		if code := burst.Post(ctx, client, ingress, ce); code/100 != 2 {
			return fmt.Sprintf("error: ingress answered %d", code), 0
		}
		timer := time.NewTimer(pathTimeoutMs * time.Millisecond)
		defer timer.Stop()
		select {
		case outcome := <-w.done:
			t.mu.Lock()
			stage := w.screened.Sub(start)
			t.mu.Unlock()
			if stage < 0 {
				stage = 0
			}
			return outcome, stage
		case <-timer.C:
			return outcomeTimeout, 0
		case <-ctx.Done():
			return "error: " + ctx.Err().Error(), 0
		}
	}
}

// rawOp runs the raw steps for the event's charge.
func rawOp(steps []rawStep, p burst.Profile, run string) op {
	return func(ctx context.Context, ev burst.Event) (string, time.Duration) {
		req := p.ChargeRequest(run, ev, time.Now())
		for _, s := range steps {
			if outcome := s.do(ctx, req); outcome != outcomeSucceeded {
				return s.name + ": " + outcome, 0
			}
		}
		return outcomeSucceeded, 0
	}
}
