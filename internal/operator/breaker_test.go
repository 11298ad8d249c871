package operator_test

import (
	"context"
	"testing"
	"time"

	"github.com/sebelas/sebelas/internal/operator"
)

// scripted answers every call with the next result of its script and
// counts the calls.
type scripted struct {
	results []operator.Result
	calls   int
}

func (s *scripted) next() operator.Result {
	r := s.results[min(s.calls, len(s.results)-1)]
	s.calls++
	return r
}

func (s *scripted) Submit(context.Context, operator.Request) operator.Result { return s.next() }
func (s *scripted) Status(context.Context, string, string) operator.Result   { return s.next() }

func TestBreakerOpensFailsFastAndProbes(t *testing.T) {
	c := newClock()
	down := operator.Result{Outcome: operator.Failed, Code: operator.CodeUnavailable}
	up := operator.Result{Outcome: operator.Succeeded, OperatorRef: "R1"}
	next := &scripted{results: []operator.Result{down, down, down, down, up}}
	g := operator.Guard(next, operator.NewBreakers(operator.BreakerConfig{Failures: 3, OpenMs: 10_000}, c.Now))
	b := g.Breakers()
	req := request(c, "tu", "xl")
	ctx := context.Background()

	for i := range 3 {
		if r := g.Submit(ctx, req); r.Code != operator.CodeUnavailable {
			t.Fatalf("call %d = %+v", i, r)
		}
	}
	if b.State("xl") != operator.Open || !b.Refusing("xl") {
		t.Fatalf("after 3 failures: state %v", b.State("xl"))
	}
	// Open: fails fast, nothing sent; a status query is no verdict.
	if r := g.Submit(ctx, req); r.Outcome != operator.Failed || r.Code != operator.CodeCircuitOpen {
		t.Errorf("submit while open = %+v", r)
	}
	if r := g.Status(ctx, "xl", "tu"); r.Outcome != operator.Unknown || r.Code != operator.CodeCircuitOpen {
		t.Errorf("status while open = %+v", r)
	}
	if next.calls != 3 {
		t.Errorf("%d calls went out, want 3", next.calls)
	}
	// Other operators are not affected.
	if b.Refusing("telkomsel") {
		t.Error("an outage of xl refuses telkomsel")
	}
	// After OpenMs one probe goes out; it fails and the breaker opens again.
	c.Advance(10 * time.Second)
	if b.Refusing("xl") {
		t.Error("still refusing after the open time")
	}
	if r := g.Submit(ctx, req); r.Code != operator.CodeUnavailable || next.calls != 4 {
		t.Errorf("probe = %+v after %d calls", r, next.calls)
	}
	if b.State("xl") != operator.Open {
		t.Errorf("state after a failed probe = %v, want open", b.State("xl"))
	}
	c.Advance(10 * time.Second)
	if r := g.Submit(ctx, req); r.Outcome != operator.Succeeded {
		t.Errorf("second probe = %+v", r)
	}
	if b.State("xl") != operator.Closed {
		t.Errorf("state after a good probe = %v, want closed", b.State("xl"))
	}
}

func TestBreakerHalfOpenLetsOneProbeThrough(t *testing.T) {
	c := newClock()
	b := operator.NewBreakers(operator.BreakerConfig{Failures: 1, OpenMs: 1_000}, c.Now)
	if !b.Allow("ais") {
		t.Fatal("closed breaker refused")
	}
	b.Record("ais", false)
	c.Advance(time.Second)
	if !b.Allow("ais") {
		t.Fatal("no probe after the open time")
	}
	if b.Allow("ais") || !b.Refusing("ais") {
		t.Error("a second call went out while the probe is in flight")
	}
	b.Record("ais", true)
	if !b.Allow("ais") {
		t.Error("closed again but refusing")
	}
}

func TestBreakerCountsOnlyOperatorTrouble(t *testing.T) {
	c := newClock()
	tests := []struct {
		name  string
		r     operator.Result
		opens bool
	}{
		{"a rejection of one number is a working operator", operator.Result{Outcome: operator.Failed, Code: "invalid_msisdn"}, false},
		{"pending is an answer", operator.Result{Outcome: operator.Pending}, false},
		{"timeout", operator.Result{Outcome: operator.Unknown, Code: operator.CodeTimeout}, true},
		{"rate limited", operator.Result{Outcome: operator.Failed, Code: operator.CodeRateLimited}, true},
		{"our key refused", operator.Result{Outcome: operator.Failed, Code: operator.CodeUnauthorized}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := operator.Guard(&scripted{results: []operator.Result{tt.r}}, operator.NewBreakers(operator.BreakerConfig{Failures: 2, OpenMs: 1_000}, c.Now))
			for range 2 {
				g.Submit(context.Background(), request(c, "tu", "dtac"))
			}
			if got := g.Breakers().Refusing("dtac"); got != tt.opens {
				t.Errorf("refusing = %v, want %v", got, tt.opens)
			}
		})
	}
}

func TestBreakerConfigValidation(t *testing.T) {
	for _, cfg := range []operator.BreakerConfig{{0, 1}, {1, 0}, {1001, 1}, {1, 3_600_001}} {
		if cfg.Validate() == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
}
