package operator

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
)

// Limits of the simulator.
const (
	// simTopupsMax bounds the top-ups the simulator remembers; beyond it,
	// it answers every new submit operator_unavailable (nothing taken), as
	// an overloaded aggregator would. A festival burst test sends far fewer.
	simTopupsMax = 1_000_000
	// simLatencyMsMax and simResolveMsMax bound the configured delays.
	simLatencyMsMax = 120_000
	simResolveMsMax = 3_600_000
	// simRequestBytesMax bounds a request body (a real one is ~250 bytes).
	simRequestBytesMax = 8 << 10
	// simConfigBytesMax bounds a PUT /sim/config body.
	simConfigBytesMax = 64 << 10
	// simOutagesMax bounds the operators that can be down at once.
	simOutagesMax = 256
	// simFaceValueMax: the aggregator's own sanity bound (10^15 minor
	// units, money.AmountMinorMax).
	simFaceValueMax = 1_000_000_000_000_000
)

// SimConfig is how the simulated aggregator behaves. Rates are
// probabilities in [0, 1], drawn independently for each new submit:
// whether the operator rejects it (FailureRate), whether it answers pending
// first (PendingRate, final ResolveMs later), and whether the answer is
// lost on the way back although the request was taken (UnknownRate: a 504
// without a verdict, which is what a timeout looks like from the caller).
type SimConfig struct {
	LatencyMs   int      `json:"latency_ms"`   // before every submit answer
	JitterMs    int      `json:"jitter_ms"`    // plus 0..JitterMs
	FailureRate float64  `json:"failure_rate"` // definite failures
	UnknownRate float64  `json:"unknown_rate"` // answers lost, request taken
	PendingRate float64  `json:"pending_rate"` // answered pending first
	ResolveMs   int      `json:"resolve_ms"`   // pending -> final after this
	Outages     []string `json:"outages"`      // operators down: submits refused, 503
	APIKey      string   `json:"-"`            // if set, required as bearer token
	Seed        uint64   `json:"seed"`
}

// Validate checks the ranges.
func (c SimConfig) Validate() error {
	for name, r := range map[string]float64{"failure_rate": c.FailureRate, "unknown_rate": c.UnknownRate, "pending_rate": c.PendingRate} {
		if !(r >= 0 && r <= 1) {
			return fmt.Errorf("%s %v: want 0..1", name, r)
		}
	}
	if c.LatencyMs < 0 || c.LatencyMs > simLatencyMsMax || c.JitterMs < 0 || c.JitterMs > simLatencyMsMax {
		return fmt.Errorf("latency_ms and jitter_ms: want 0..%d", simLatencyMsMax)
	}
	if c.ResolveMs < 0 || c.ResolveMs > simResolveMsMax {
		return fmt.Errorf("resolve_ms %d: want 0..%d", c.ResolveMs, simResolveMsMax)
	}
	if len(c.Outages) > simOutagesMax {
		return fmt.Errorf("%d outages: at most %d", len(c.Outages), simOutagesMax)
	}
	return nil
}

// SimStats counts what the simulator did.
type SimStats struct {
	Submits        int64            `json:"submits"`        // new top-ups taken
	Replays        int64            `json:"replays"`        // submits of a reference already taken
	Conflicts      int64            `json:"conflicts"`      // a reference reused with other content
	Refused        int64            `json:"refused"`        // outage, overload, bad key or request: nothing taken
	Delivered      int64            `json:"delivered"`      // top-ups that ended succeeded
	Rejected       int64            `json:"rejected"`       // top-ups that ended failed
	AnswersLost    int64            `json:"answers_lost"`   // 504s sent although the request was taken
	StatusQueries  int64            `json:"status_queries"` // GET /v1/topups/{reference}
	SubmitsPerOper map[string]int64 `json:"submits_per_operator"`
}

type simTopup struct {
	req         Request
	status      string // pending, succeeded, failed
	final       string // succeeded or failed, once resolved
	code        string
	operatorRef string
	resolveAt   time.Time
	receivedAt  time.Time // when the submit was taken: the statement's date
}

// Simulator is an aggregator API (see the package documentation) in
// memory: an http.Handler. It keeps every promise of the API, so the
// top-up function can be tested against it for each way an operator
// answers, including not at all. It also serves GET /sim/stats and
// GET|PUT /sim/config for tests, `sebelas dev` and fault injection.
type Simulator struct {
	now func() time.Time

	mu      sync.Mutex
	cfg     SimConfig
	outages map[string]bool
	rng     *rand.Rand
	topups  map[string]*simTopup
	seq     int64
	stats   SimStats
	mux     *http.ServeMux
}

// NewSimulator returns a simulator with cfg; now may be nil (time.Now).
func NewSimulator(cfg SimConfig, now func() time.Time) (*Simulator, error) {
	if now == nil {
		now = time.Now
	}
	s := &Simulator{now: now, topups: map[string]*simTopup{}}
	if err := s.Configure(cfg); err != nil {
		return nil, err
	}
	s.stats.SubmitsPerOper = map[string]int64{}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/topups", s.submit)
	mux.HandleFunc("GET /v1/topups/{reference}", s.status)
	mux.HandleFunc("GET /v1/statements", s.statement)
	mux.HandleFunc("GET /sim/stats", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, s.Stats()) })
	mux.HandleFunc("GET /sim/config", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, s.Config()) })
	mux.HandleFunc("PUT /sim/config", s.putConfig)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	s.mux = mux
	return s, nil
}

// Configure replaces the behaviour (the API key stays if cfg has none);
// top-ups already taken keep their outcome. The random stream restarts
// from cfg.Seed.
func (s *Simulator) Configure(cfg SimConfig) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("operator simulator: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if cfg.APIKey == "" {
		cfg.APIKey = s.cfg.APIKey
	}
	cfg.Outages = append([]string(nil), cfg.Outages...)
	s.cfg = cfg
	s.outages = map[string]bool{}
	for _, op := range cfg.Outages {
		s.outages[op] = true
	}
	s.rng = rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x70b5))
	return nil
}

// Config returns the current behaviour.
func (s *Simulator) Config() SimConfig {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.cfg
	c.Outages = nil
	for op := range s.outages {
		c.Outages = append(c.Outages, op)
	}
	sort.Strings(c.Outages)
	return c
}

// SetOutage takes an operator down or brings it back.
func (s *Simulator) SetOutage(operator string, down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if down {
		if len(s.outages) >= simOutagesMax {
			panic("operator simulator: too many outages")
		}
		s.outages[operator] = true
	} else {
		delete(s.outages, operator)
	}
}

// Stats returns the counters so far.
func (s *Simulator) Stats() SimStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.SubmitsPerOper = make(map[string]int64, len(s.stats.SubmitsPerOper))
	for k, v := range s.stats.SubmitsPerOper {
		st.SubmitsPerOper[k] = v
	}
	return st
}

// Delivered reports whether the simulator delivered reference (its final
// state is succeeded): what a test compares captures against.
func (s *Simulator) Delivered(reference string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.topups[reference]
	if !ok {
		return false
	}
	s.resolve(t)
	return t.status == "succeeded" || t.final == "succeeded"
}

// ServeHTTP serves the API.
func (s *Simulator) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

func (s *Simulator) authorized(r *http.Request) bool {
	s.mu.Lock()
	key := s.cfg.APIKey
	s.mu.Unlock()
	if key == "" {
		return true
	}
	got := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	return subtle.ConstantTimeCompare([]byte(got), []byte(key)) == 1
}

func (s *Simulator) refuse(w http.ResponseWriter, status int, code string) {
	s.mu.Lock()
	s.stats.Refused++
	s.mu.Unlock()
	writeJSON(w, status, wireResult{Status: "failed", Code: code})
}

func (s *Simulator) submit(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(r) {
		s.refuse(w, http.StatusUnauthorized, CodeUnauthorized)
		return
	}
	var req Request
	dec := json.NewDecoder(io.LimitReader(r.Body, simRequestBytesMax))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || !validRequest(req) {
		s.refuse(w, http.StatusBadRequest, CodeInvalidRequest)
		return
	}

	s.mu.Lock()
	now := s.now()
	if t, ok := s.topups[req.Reference]; ok {
		if t.req != sameShape(req, t.req) {
			s.stats.Conflicts++
			s.mu.Unlock()
			writeJSON(w, http.StatusConflict, wireResult{Reference: req.Reference, Status: "failed", Code: CodeConflict})
			return
		}
		s.stats.Replays++
		s.resolve(t)
		answer := t.wire()
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, answer)
		return
	}
	if s.outages[req.Operator] || len(s.topups) >= simTopupsMax {
		s.stats.Refused++
		s.mu.Unlock()
		writeJSON(w, http.StatusServiceUnavailable, wireResult{Reference: req.Reference, Status: "failed", Code: CodeUnavailable})
		return
	}
	t := &simTopup{req: req, receivedAt: now}
	s.seq++
	switch {
	case now.After(req.ExpiresAt):
		t.final, t.code = "failed", CodeExpired
	case s.rng.Float64() < s.cfg.FailureRate:
		t.final, t.code = "failed", CodeRejected
	default:
		t.final = "succeeded"
		t.operatorRef = fmt.Sprintf("SIM-%s-%09d", strings.ToUpper(req.Operator), s.seq)
	}
	t.status = t.final
	if t.code != CodeExpired && s.rng.Float64() < s.cfg.PendingRate {
		t.status, t.resolveAt = "pending", now.Add(time.Duration(s.cfg.ResolveMs)*time.Millisecond)
	}
	lost := s.rng.Float64() < s.cfg.UnknownRate
	delay := time.Duration(s.cfg.LatencyMs) * time.Millisecond
	if s.cfg.JitterMs > 0 {
		delay += time.Duration(s.rng.IntN(s.cfg.JitterMs+1)) * time.Millisecond
	}
	s.topups[req.Reference] = t
	s.stats.Submits++
	s.stats.SubmitsPerOper[req.Operator]++
	s.count(t)
	if lost {
		s.stats.AnswersLost++
	}
	answer := t.wire()
	s.mu.Unlock()

	// The request is taken before the delay: a caller that gives up
	// waiting has still topped the phone up, as with a real operator.
	if delay > 0 {
		timer := time.NewTimer(delay)
		select {
		case <-timer.C:
		case <-r.Context().Done():
			timer.Stop()
			return
		}
	}
	if lost {
		w.WriteHeader(http.StatusGatewayTimeout)
		return
	}
	writeJSON(w, http.StatusOK, answer)
}

func (s *Simulator) status(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(r) {
		s.refuse(w, http.StatusUnauthorized, CodeUnauthorized)
		return
	}
	ref := r.PathValue("reference")
	s.mu.Lock()
	s.stats.StatusQueries++
	t, ok := s.topups[ref]
	var answer wireResult
	if ok {
		s.resolve(t)
		answer = t.wire()
	}
	s.mu.Unlock()
	if !ok {
		writeJSON(w, http.StatusNotFound, wireResult{Reference: ref, Status: "failed", Code: CodeNotFound})
		return
	}
	writeJSON(w, http.StatusOK, answer)
}

func (s *Simulator) putConfig(w http.ResponseWriter, r *http.Request) {
	var cfg SimConfig
	dec := json.NewDecoder(io.LimitReader(r.Body, simConfigBytesMax))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		http.Error(w, "config: "+err.Error(), http.StatusBadRequest)
		return
	}
	if err := s.Configure(cfg); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	writeJSON(w, http.StatusOK, s.Config())
}

// resolve makes a pending top-up final once its time has come. Called
// with s.mu held.
func (s *Simulator) resolve(t *simTopup) {
	if t.status == "pending" && !s.now().Before(t.resolveAt) {
		t.status = t.final
	}
}

// count adds a new top-up's final outcome to the stats. Called with s.mu
// held.
func (s *Simulator) count(t *simTopup) {
	if t.final == "succeeded" {
		s.stats.Delivered++
	} else {
		s.stats.Rejected++
	}
}

func (t *simTopup) wire() wireResult {
	w := wireResult{Reference: t.req.Reference, Status: t.status}
	if t.status != "pending" {
		w.OperatorRef, w.Code = t.operatorRef, t.code
	}
	return w
}

// sameShape returns req with the time in the location of prev, so that two
// encodings of one instant compare equal.
func sameShape(req, prev Request) Request {
	if req.ExpiresAt.Equal(prev.ExpiresAt) {
		req.ExpiresAt = prev.ExpiresAt
	}
	return req
}

func validRequest(r Request) bool {
	return referencePattern.MatchString(r.Reference) &&
		e164Like(r.MSISDN) &&
		codePattern.MatchString(r.Operator) &&
		(r.Kind == KindAirtime || r.Kind == KindData) &&
		r.FaceValue > 0 && r.FaceValue <= simFaceValueMax &&
		len(r.Currency) == 3 && strings.ToUpper(r.Currency) == r.Currency &&
		!r.ExpiresAt.IsZero() &&
		(r.Product == "" || referencePattern.MatchString(r.Product))
}

// e164Like: '+' and 7 to 15 digits, the first not 0.
func e164Like(s string) bool {
	if len(s) < 8 || len(s) > 16 || s[0] != '+' || s[1] == '0' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
