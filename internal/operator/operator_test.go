package operator_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sebelas/sebelas/internal/operator"
)

// clock is a settable time source for the simulator and the breakers.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 11, 11, 0, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newSim(t *testing.T, cfg operator.SimConfig, c *clock) (*operator.Simulator, *operator.HTTP) {
	t.Helper()
	sim, err := operator.NewSimulator(cfg, c.Now)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	a, err := operator.NewHTTP(srv.URL, cfg.APIKey)
	if err != nil {
		t.Fatal(err)
	}
	return sim, a
}

func request(c *clock, ref, op string) operator.Request {
	return operator.Request{
		Reference: ref, MSISDN: "+6281234567890", Operator: op, Product: "tsel-pulsa-50k",
		Kind: operator.KindAirtime, FaceValue: 50_000, Currency: "IDR", ExpiresAt: c.Now().Add(time.Minute),
	}
}

type outcome struct {
	Outcome string
	Code    string
	HasRef  bool
}

func summary(r operator.Result) outcome {
	return outcome{r.Outcome.String(), r.Code, r.OperatorRef != ""}
}

func TestHTTPAdapterAgainstSimulator(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name       string
		cfg        operator.SimConfig
		req        func(c *clock) operator.Request
		submit     outcome
		status     outcome // right after the submit
		wantSubmit int64   // submits the simulator took
	}{
		{
			name:   "delivered",
			req:    func(c *clock) operator.Request { return request(c, "tu-ok", "telkomsel") },
			submit: outcome{"succeeded", "", true}, status: outcome{"succeeded", "", true}, wantSubmit: 1,
		},
		{
			name:   "operator rejects",
			cfg:    operator.SimConfig{FailureRate: 1},
			req:    func(c *clock) operator.Request { return request(c, "tu-no", "telkomsel") },
			submit: outcome{"failed", operator.CodeRejected, false}, status: outcome{"failed", operator.CodeRejected, false}, wantSubmit: 1,
		},
		{
			name:   "answer lost, request taken and delivered",
			cfg:    operator.SimConfig{UnknownRate: 1},
			req:    func(c *clock) operator.Request { return request(c, "tu-lost", "telkomsel") },
			submit: outcome{"unknown", "http_504", false}, status: outcome{"succeeded", "", true}, wantSubmit: 1,
		},
		{
			name:   "answer lost, request taken and rejected",
			cfg:    operator.SimConfig{UnknownRate: 1, FailureRate: 1},
			req:    func(c *clock) operator.Request { return request(c, "tu-lost-no", "telkomsel") },
			submit: outcome{"unknown", "http_504", false}, status: outcome{"failed", operator.CodeRejected, false}, wantSubmit: 1,
		},
		{
			name:   "pending first",
			cfg:    operator.SimConfig{PendingRate: 1, ResolveMs: 60_000},
			req:    func(c *clock) operator.Request { return request(c, "tu-slow", "telkomsel") },
			submit: outcome{"pending", "", false}, status: outcome{"pending", "", false}, wantSubmit: 1,
		},
		{
			name:   "operator down: nothing taken",
			cfg:    operator.SimConfig{Outages: []string{"xl"}},
			req:    func(c *clock) operator.Request { return request(c, "tu-down", "xl") },
			submit: outcome{"failed", operator.CodeUnavailable, false}, status: outcome{"not_found", operator.CodeNotFound, false},
		},
		{
			name: "arrived after it expired",
			req: func(c *clock) operator.Request {
				r := request(c, "tu-late", "telkomsel")
				r.ExpiresAt = c.Now().Add(-time.Second)
				return r
			},
			submit: outcome{"failed", operator.CodeExpired, false}, status: outcome{"failed", operator.CodeExpired, false}, wantSubmit: 1,
		},
		{
			name: "malformed request",
			req: func(c *clock) operator.Request {
				r := request(c, "tu-bad", "telkomsel")
				r.MSISDN = "0812"
				return r
			},
			submit: outcome{"failed", operator.CodeInvalidRequest, false}, status: outcome{"not_found", operator.CodeNotFound, false},
		},
		{
			name:   "wrong key",
			cfg:    operator.SimConfig{APIKey: "k1"},
			req:    func(c *clock) operator.Request { return request(c, "tu-key", "telkomsel") },
			submit: outcome{"failed", operator.CodeUnauthorized, false}, status: outcome{"unknown", "http_401", false},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClock()
			sim, err := operator.NewSimulator(tt.cfg, c.Now)
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(sim)
			defer srv.Close()
			key := tt.cfg.APIKey
			if key != "" {
				key = "not-" + key
			}
			a, err := operator.NewHTTP(srv.URL+"/", key)
			if err != nil {
				t.Fatal(err)
			}
			req := tt.req(c)
			if diff := cmp.Diff(tt.submit, summary(a.Submit(ctx, req))); diff != "" {
				t.Errorf("submit (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.status, summary(a.Status(ctx, req.Operator, req.Reference))); diff != "" {
				t.Errorf("status (-want +got):\n%s", diff)
			}
			if got := sim.Stats().Submits; got != tt.wantSubmit {
				t.Errorf("simulator took %d submits, want %d", got, tt.wantSubmit)
			}
		})
	}
}

func TestSubmitIsIdempotentOnReference(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	sim, a := newSim(t, operator.SimConfig{}, c)
	req := request(c, "tu-1", "telkomsel")
	first := a.Submit(ctx, req)
	for range 3 {
		again := a.Submit(ctx, req)
		if diff := cmp.Diff(first, again); diff != "" {
			t.Errorf("resubmit (-first +again):\n%s", diff)
		}
	}
	changed := req
	changed.FaceValue++
	if got := summary(a.Submit(ctx, changed)); got != (outcome{"unknown", operator.CodeConflict, false}) {
		t.Errorf("reference reused with other content: %+v", got)
	}
	st := sim.Stats()
	if st.Submits != 1 || st.Replays != 3 || st.Delivered != 1 || st.Conflicts != 1 {
		t.Errorf("stats %+v, want 1 submit delivered once, 3 replays, 1 conflict", st)
	}
}

func TestPendingResolvesAfterItsTime(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	_, a := newSim(t, operator.SimConfig{PendingRate: 1, ResolveMs: 30_000}, c)
	req := request(c, "tu-p", "smart")
	if got := a.Submit(ctx, req).Outcome; got != operator.Pending {
		t.Fatalf("submit = %v, want pending", got)
	}
	c.Advance(29 * time.Second)
	if got := a.Status(ctx, req.Operator, req.Reference).Outcome; got != operator.Pending {
		t.Errorf("status before its time = %v, want pending", got)
	}
	c.Advance(time.Second)
	if got := summary(a.Status(ctx, req.Operator, req.Reference)); got != (outcome{"succeeded", "", true}) {
		t.Errorf("status after its time = %+v, want succeeded with a receipt", got)
	}
}

func TestCallerTimeoutIsUnknownButTheRequestWasTaken(t *testing.T) {
	c := newClock()
	sim, a := newSim(t, operator.SimConfig{LatencyMs: 60_000}, c)
	req := request(c, "tu-slow", "globe")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if got := summary(a.Submit(ctx, req)); got != (outcome{"unknown", operator.CodeTimeout, false}) {
		t.Errorf("submit = %+v, want unknown timeout", got)
	}
	if !sim.Delivered(req.Reference) {
		t.Error("the simulator did not take the request its caller gave up on")
	}
}

func TestUnreachableAggregator(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	a, err := operator.NewHTTP(url, "")
	if err != nil {
		t.Fatal(err)
	}
	c := newClock()
	// A refused connection sent nothing: a definite failure for a submit,
	// but no verdict at all from a status query.
	if got := summary(a.Submit(context.Background(), request(c, "tu-x", "ais"))); got != (outcome{"failed", operator.CodeUnavailable, false}) {
		t.Errorf("submit = %+v", got)
	}
	if got := a.Status(context.Background(), "ais", "tu-x").Outcome; got != operator.Unknown {
		t.Errorf("status = %v, want unknown", got)
	}
}

// TestAnswersThatProveNothing: only the API's own verdicts are believed.
func TestAnswersThatProveNothing(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		query  bool
		want   outcome
	}{
		{"5xx without a body", 500, "", false, outcome{"unknown", "http_500", false}},
		{"proxy HTML", 502, "<html>bad gateway</html>", false, outcome{"unknown", "http_502", false}},
		{"unknown status word", 200, `{"reference":"tu-a","status":"done"}`, false, outcome{"unknown", operator.CodeBadResponse, false}},
		{"verdict about another top-up", 200, `{"reference":"tu-b","status":"failed"}`, false, outcome{"unknown", operator.CodeBadResponse, false}},
		{"404 from a router, not the API", 404, `{"message":"no route"}`, true, outcome{"unknown", "http_404", false}},
		{"error answer to a status query", 503, `{"status":"failed","code":"operator_unavailable"}`, true, outcome{"unknown", "http_503", false}},
		{"body over the limit", 200, `{"status":"succeeded","operator_ref":"` + strings.Repeat("x", 20<<10) + `"}`, false, outcome{"unknown", operator.CodeBadResponse, false}},
		{"code that is not snake_case", 200, `{"status":"failed","code":"Bad Code!"}`, false, outcome{"failed", operator.CodeRejected, false}},
		{"receipt with spaces dropped", 200, `{"status":"succeeded","operator_ref":"A B"}`, false, outcome{"succeeded", "", false}},
		{"503 refusal", 503, `{"status":"failed","code":"operator_unavailable"}`, false, outcome{"failed", operator.CodeUnavailable, false}},
		{"429 refusal", 429, `{"status":"failed","code":"rate_limited"}`, false, outcome{"failed", operator.CodeRateLimited, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			a, err := operator.NewHTTP(srv.URL, "")
			if err != nil {
				t.Fatal(err)
			}
			var r operator.Result
			if tt.query {
				r = a.Status(context.Background(), "ais", "tu-a")
			} else {
				r = a.Submit(context.Background(), request(newClock(), "tu-a", "ais"))
			}
			if diff := cmp.Diff(tt.want, summary(r)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestNewHTTPRejectsBadURLs(t *testing.T) {
	for _, u := range []string{"", "localhost:8080", "ftp://x", "http://", "http://x/?q=1"} {
		if _, err := operator.NewHTTP(u, ""); err == nil {
			t.Errorf("NewHTTP(%q) accepted", u)
		}
	}
}

func TestSimulatorConfigValidation(t *testing.T) {
	for _, cfg := range []operator.SimConfig{
		{FailureRate: 1.5}, {UnknownRate: -0.1}, {LatencyMs: -1}, {ResolveMs: 3_600_001},
	} {
		if _, err := operator.NewSimulator(cfg, nil); err == nil {
			t.Errorf("NewSimulator(%+v) accepted", cfg)
		}
	}
}

func TestSimulatorConfigOverHTTP(t *testing.T) {
	c := newClock()
	sim, a := newSim(t, operator.SimConfig{}, c)
	srv := httptest.NewServer(sim)
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodPut, srv.URL+"/sim/config", strings.NewReader(`{"outages":["zong"],"failure_rate":0}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT /sim/config = %d", resp.StatusCode)
	}
	if got := a.Submit(context.Background(), request(c, "tu-z", "zong")); got.Code != operator.CodeUnavailable {
		t.Errorf("submit to an operator taken down over HTTP = %+v", got)
	}
	sim.SetOutage("zong", false)
	if got := a.Submit(context.Background(), request(c, "tu-z", "zong")); got.Outcome != operator.Succeeded {
		t.Errorf("submit after the outage = %+v", got)
	}
}
