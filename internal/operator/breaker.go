package operator

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/sebelas/sebelas/internal/telemetry"
)

// Breaker defaults. Five failures in a row is about one second of an
// operator's outage at the midnight rate of a large market (hundreds of
// top-ups a second spread over four or five operators): after that, every
// top-up for that operator would hold money for the whole operator timeout
// only to fail, so the breaker fails them at once, before any hold. Thirty
// seconds open, then one probe.
const (
	BreakerFailuresDefault = 5
	BreakerOpenMsDefault   = 30_000
	// breakerFailuresMax and breakerOpenMsMax bound the configuration.
	breakerFailuresMax = 1_000
	breakerOpenMsMax   = 3_600_000
	// breakersMax bounds the breakers kept: one per operator id, and
	// operator ids come from a validated table of a few dozen.
	breakersMax = 1_024
)

// BreakerConfig tunes the breakers.
type BreakerConfig struct {
	// Failures is how many failed calls in a row open an operator's
	// breaker.
	Failures int
	// OpenMs is how long it stays open before it lets one probe through.
	OpenMs int
}

// Validate checks the ranges.
func (c BreakerConfig) Validate() error {
	if c.Failures < 1 || c.Failures > breakerFailuresMax {
		return fmt.Errorf("breaker failures %d: want 1..%d", c.Failures, breakerFailuresMax)
	}
	if c.OpenMs < 1 || c.OpenMs > breakerOpenMsMax {
		return fmt.Errorf("breaker open ms %d: want 1..%d", c.OpenMs, breakerOpenMsMax)
	}
	return nil
}

// BreakerState is one breaker's state.
type BreakerState int

const (
	Closed BreakerState = iota
	Open
	HalfOpen // open time is over; one probe is in flight
)

func (s BreakerState) String() string {
	switch s {
	case Open:
		return "open"
	case HalfOpen:
		return "half-open"
	default:
		return "closed"
	}
}

type breaker struct {
	state    BreakerState
	failures int
	openedAt time.Time
}

// Breakers keeps one circuit breaker per operator. It is safe for
// concurrent use; its state is per process (per pod), which is what a
// breaker wants: each pod learns of an outage from its own calls.
type Breakers struct {
	cfg BreakerConfig
	now func() time.Time

	mu sync.Mutex
	m  map[string]*breaker
}

// NewBreakers returns breakers with cfg; now may be nil (time.Now). An
// invalid cfg is a programmer error and panics (configuration readers
// Validate first).
func NewBreakers(cfg BreakerConfig, now func() time.Time) *Breakers {
	if err := cfg.Validate(); err != nil {
		panic("operator: " + err.Error())
	}
	if now == nil {
		now = time.Now
	}
	return &Breakers{cfg: cfg, now: now, m: map[string]*breaker{}}
}

func (b *Breakers) get(key string) *breaker {
	br, ok := b.m[key]
	if !ok {
		if len(b.m) >= breakersMax {
			panic(fmt.Sprintf("operator: more than %d breakers: keys must be operator ids", breakersMax))
		}
		br = &breaker{}
		b.m[key] = br
	}
	return br
}

// Allow reports whether a call to key's operator may go out now, and
// counts it: in the half-open state only one probe goes out until Record
// says how it went. Every allowed call must be followed by a Record.
func (b *Breakers) Allow(key string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	br := b.get(key)
	switch br.state {
	case Closed:
		return true
	case Open:
		if b.now().Sub(br.openedAt) >= time.Duration(b.cfg.OpenMs)*time.Millisecond {
			br.state = HalfOpen
			telemetry.BreakerState(key, int(br.state), br.state.String())
			return true
		}
		return false
	default: // HalfOpen: the probe is out
		return false
	}
}

// Refusing reports whether key's breaker would refuse a call now, without
// counting anything: the top-up function asks it before holding money.
func (b *Breakers) Refusing(key string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	br, ok := b.m[key]
	if !ok {
		return false
	}
	switch br.state {
	case Open:
		return b.now().Sub(br.openedAt) < time.Duration(b.cfg.OpenMs)*time.Millisecond
	case HalfOpen:
		return true
	}
	return false
}

// Record says how an allowed call went.
func (b *Breakers) Record(key string, healthy bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	br := b.get(key)
	was := br.state
	defer func() {
		if br.state != was {
			telemetry.BreakerState(key, int(br.state), br.state.String())
		}
	}()
	if healthy {
		br.state, br.failures = Closed, 0
		return
	}
	br.failures++
	if br.state == HalfOpen || br.failures >= b.cfg.Failures {
		br.state, br.openedAt = Open, b.now()
	}
}

// State returns key's breaker state (Closed for an operator never called).
func (b *Breakers) State(key string) BreakerState {
	b.mu.Lock()
	defer b.mu.Unlock()
	if br, ok := b.m[key]; ok {
		return br.state
	}
	return Closed
}

// healthy says whether a result shows the operator working: any verdict
// does, even a refusal of this one top-up; no verdict, an outage, rate
// limiting and a refused key do not.
func healthy(r Result) bool {
	switch r.Outcome {
	case Unknown:
		return r.Code == CodeConflict // an answer, about our own mistake
	case Failed:
		switch r.Code {
		case CodeUnavailable, CodeRateLimited, CodeUnauthorized:
			return false
		}
	}
	return true
}

// Guarded is an Adapter behind the per-operator breakers.
type Guarded struct {
	next     Adapter
	breakers *Breakers
}

var _ Adapter = (*Guarded)(nil)

// Guard puts next behind breakers.
func Guard(next Adapter, breakers *Breakers) *Guarded {
	if next == nil || breakers == nil {
		panic("operator.Guard: adapter and breakers are required")
	}
	return &Guarded{next: next, breakers: breakers}
}

// Breakers returns the breakers (for Refusing and for tests).
func (g *Guarded) Breakers() *Breakers { return g.breakers }

// Submit sends req unless its operator's breaker is open; a refused submit
// is a definite failure with CodeCircuitOpen: nothing was sent.
func (g *Guarded) Submit(ctx context.Context, req Request) Result {
	if !g.breakers.Allow(req.Operator) {
		return Result{Outcome: Failed, Code: CodeCircuitOpen}
	}
	r := g.next.Submit(ctx, req)
	g.breakers.Record(req.Operator, healthy(r))
	return r
}

// Status asks unless the operator's breaker is open; a refused query is
// Unknown with CodeCircuitOpen: it says nothing about the top-up.
func (g *Guarded) Status(ctx context.Context, operator, reference string) Result {
	if !g.breakers.Allow(operator) {
		return Result{Outcome: Unknown, Code: CodeCircuitOpen}
	}
	r := g.next.Status(ctx, operator, reference)
	g.breakers.Record(operator, healthy(r))
	return r
}
