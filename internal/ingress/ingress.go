// Package ingress is the marketplaces' way in: the only function reachable
// from outside the cluster. It authenticates each marketplace (an
// HMAC-SHA256 signature over a timestamp and the body with a per-marketplace
// secret, two active keys for rotation), refuses replays (a timestamp window
// plus a record of every request seen inside it, a conditional put in the
// table), checks that the marketplace may act for the merchant in the event,
// and only then puts the event on the Broker. Everything refused is refused
// before any event exists, so it can move no money; it is answered 4xx
// (never retried by anyone), logged and counted at /metrics.
//
// Answers:
//
//	202 accepted and on the Broker             {"id": "<event id>"}
//	400 malformed headers or payload            {"error": "<reason>"}
//	401 unknown marketplace, bad signature, timestamp outside the window, replay
//	403 event type, marketplace or merchant not allowed for this marketplace
//	409 refund of a charge that is not (yet) known
//	413 body over the limit
//	429 the marketplace is over its rate (Retry-After says when to resend)
//	429/503 the table or the Broker is not answering: sign again and retry
package ingress

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/sebelas/sebelas/events"
	"github.com/sebelas/sebelas/internal/fault"
	"github.com/sebelas/sebelas/internal/ledger"
	"github.com/sebelas/sebelas/internal/signing"
	"github.com/sebelas/sebelas/internal/table"
	"github.com/sebelas/sebelas/internal/telemetry"
)

// Limits of one request.
const (
	// BodyBytesMax is the largest body accepted: the events' own limit,
	// checked before the body is read.
	BodyBytesMax = events.BodyBytesMax
	// timestampAgeMaxMs is how old a signature may be. Five minutes
	// covers clock skew and a marketplace's queueing; replays inside it
	// are caught by the replay record, older ones by this alone.
	timestampAgeMaxMs = 300_000
	// timestampAheadMaxMs is how far in the future a timestamp may be:
	// NTP-synchronised clocks differ by milliseconds, so a minute ahead
	// is a broken clock or a request signed for later use.
	timestampAheadMaxMs = 60_000
	// storeTimeoutMs bounds the replay record's and the charge lookup's
	// calls, and publishTimeoutMs the Broker's answer: a marketplace
	// waiting longer should get a 503 and retry.
	storeTimeoutMs   = 3_000
	publishTimeoutMs = 5_000
	// invalidDetailBytesMax bounds the explanation of an invalid payload
	// in the answer.
	invalidDetailBytesMax = 512
	// sourcePrefix is the CloudEvent source of what a marketplace sent.
	sourcePrefix = "/marketplaces/"
)

// Outcomes counted at /metrics and named in logs and error answers.
const (
	OutcomeAccepted         = "accepted"
	OutcomeMethodNotAllowed = "method_not_allowed"
	OutcomeTooLarge         = "body_too_large"
	OutcomeMalformed        = "malformed" // with a detail reason in the answer
	// OutcomeUnauthenticated is the one answer (and the one counter) for
	// an unknown marketplace and a bad signature: telling them apart would
	// let anyone list which marketplace ids exist. The log, which is not
	// public, says which (OutcomeUnknownMarketplace, OutcomeBadSignature).
	OutcomeUnauthenticated     = "unauthenticated"
	OutcomeUnknownMarketplace  = "unknown_marketplace"
	OutcomeBadSignature        = "bad_signature"
	OutcomeStaleTimestamp      = "stale_timestamp"
	OutcomeFutureTimestamp     = "future_timestamp"
	OutcomeReplayed            = "replayed"
	OutcomeTypeNotAllowed      = "event_type_not_allowed"
	OutcomeInvalidEvent        = "invalid_event"
	OutcomeMarketplaceMismatch = "marketplace_mismatch"
	OutcomeMerchantNotAllowed  = "merchant_not_allowed"
	OutcomeUnknownCharge       = "unknown_charge"
	OutcomeUnavailable         = "unavailable"
	OutcomeRateLimited         = "rate_limited"
)

// allowedTypes are the only events a marketplace may originate. Everything
// else (screened events, results, top-ups, ticks) is produced inside the
// cluster; a marketplace sending one is refused whatever it signs.
var allowedTypes = map[string]bool{
	events.TypeChargeRequested: true,
	events.TypeRefundRequested: true,
}

// Charges is what the ingress needs to check a refund: the merchant of the
// charge it refunds.
type Charges interface {
	GetCharge(ctx context.Context, chargeID string) (ledger.ChargeRecord, bool, error)
}

var _ Charges = (*ledger.Store)(nil)

// Publisher puts an event on the Broker.
type Publisher interface {
	Publish(ctx context.Context, ev cloudevents.Event) error
}

// Signer vouches for an event with the ingress's own key (signing.Signer of
// role ingress), so a consumer can tell what came through the ingress from
// what someone on the cluster network posted to the Broker.
type Signer interface {
	Sign(ev *cloudevents.Event, now time.Time) error
}

// Handler is the ingress.
type Handler struct {
	signer  Signer
	config  *liveConfig
	rates   *RateLimits
	replays *replayLog
	charges Charges
	broker  Publisher
	now     func() time.Time
	log     *slog.Logger
	metrics metrics
}

// Options build a Handler.
type Options struct {
	// Config is a fixed configuration; or KeysFile/MerchantsFile name
	// files to read and re-read on change (KeysText/MerchantsText when a
	// file is not used).
	Config                  *Config
	KeysFile, MerchantsFile string
	KeysText, MerchantsText string
	DB                      DB
	Table                   string
	Charges                 Charges
	Broker                  Publisher
	Signer                  Signer           // required: signs every event published
	RateLimits              *RateLimits      // nil: RateDefault for every marketplace
	Now                     func() time.Time // nil: time.Now
	Log                     *slog.Logger     // nil: discard
}

// New builds a Handler.
func New(o Options) (*Handler, error) {
	if o.DB == nil || o.Table == "" || o.Charges == nil || o.Broker == nil || o.Signer == nil {
		// The Signer too: fraud and refund refuse what the ingress did not
		// sign, and there is no "unsigned" mode to fall into by omission.
		panic("ingress.New: DB, Table, Charges, Broker and Signer are required")
	}
	h := &Handler{
		replays: &replayLog{db: o.DB, table: o.Table},
		charges: o.Charges, broker: o.Broker, now: o.Now, log: o.Log, signer: o.Signer, rates: o.RateLimits,
	}
	if h.rates == nil {
		h.rates, _ = ParseRateLimits("") // the default parses
	}
	if h.now == nil {
		h.now = time.Now
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if o.Config != nil {
		h.config = &liveConfig{now: h.now}
		h.config.cur.Store(o.Config)
	} else {
		lc, err := newLiveConfig(source{env: o.KeysText, path: o.KeysFile}, source{env: o.MerchantsText, path: o.MerchantsFile}, h.now,
			func(err error) {
				if err != nil {
					h.metrics.reloadFailures.Add(1)
					telemetry.IngressReloadFailure()
					h.log.Error("ingress config reload: broken entries dropped or files missing (fail closed)", "err", err,
						"marketplaces", len(h.config.cur.Load().Marketplaces))
					return
				}
				h.log.Info("ingress config reloaded", "marketplaces", len(h.config.cur.Load().Marketplaces))
			})
		if err != nil {
			return nil, err
		}
		h.config = lc
	}
	return h, nil
}

// rejection is a refused request: status, outcome and a short detail.
type rejection struct {
	status  int
	outcome string
	reason  string // the answer's "error"; outcome when empty
	why     string // logged only, never answered or counted
	// retryAfter is the Retry-After header of a 429 ("" when none).
	retryAfter string
}

func (r *rejection) Error() string { return r.outcome }

func reject(status int, outcome string) *rejection {
	return &rejection{status: status, outcome: outcome}
}

// ServeHTTP routes: POST / (or /v1/events) ingests, GET /healthz, GET
// /metrics.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/healthz" && r.Method == http.MethodGet:
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "ok\n")
	case r.URL.Path == "/metrics" && r.Method == http.MethodGet:
		telemetry.Handler().ServeHTTP(w, r)
	case r.URL.Path == "/" || r.URL.Path == "/v1/events":
		h.ingest(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (h *Handler) ingest(w http.ResponseWriter, r *http.Request) {
	start := h.now()
	r.Body = http.MaxBytesReader(w, r.Body, BodyBytesMax)
	id, err := h.accept(r)
	var rej *rejection
	switch {
	case err == nil:
		h.metrics.count(OutcomeAccepted)
		writeJSON(w, http.StatusAccepted, map[string]string{"id": id})
		return
	case errors.As(err, &rej):
	default:
		// A storage or Broker fault: retryable, the marketplace signs
		// again and resends.
		status := fault.Status(err)
		if status < 500 && status != http.StatusTooManyRequests {
			status = http.StatusServiceUnavailable
		}
		rej = &rejection{status: status, outcome: OutcomeUnavailable}
	}
	h.metrics.count(rej.outcome)
	reason := rej.reason
	if reason == "" {
		reason = rej.outcome
	}
	// The marketplace header is logged only once it has the id shape: it
	// is caller-chosen and must not forge log lines. Never the signature,
	// never the body.
	mp := r.Header.Get(HeaderMarketplace)
	if !idPattern.MatchString(mp) {
		mp = ""
	}
	level := slog.LevelWarn
	if rej.status >= 500 || (rej.status == http.StatusTooManyRequests && rej.outcome != OutcomeRateLimited) {
		level = slog.LevelError
	}
	h.log.Log(r.Context(), level, "ingress rejected", "outcome", rej.outcome, "reason", reason, "why", rej.why, "status", rej.status,
		"marketplace", mp, "remote", r.RemoteAddr, "ms", h.now().Sub(start).Milliseconds(), "err", errDetail(err))
	if rej.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Sebelas-HMAC-SHA256 realm="sebelas"`)
	}
	if rej.retryAfter != "" {
		w.Header().Set("Retry-After", rej.retryAfter)
	}
	writeJSON(w, rej.status, map[string]string{"error": reason})
}

func errDetail(err error) string {
	var rej *rejection
	if errors.As(err, &rej) {
		return ""
	}
	return err.Error()
}

// accept runs every check in order and publishes. It returns the event id,
// a *rejection, or a storage/Broker fault.
func (h *Handler) accept(r *http.Request) (string, error) {
	if r.Method != http.MethodPost {
		return "", reject(http.StatusMethodNotAllowed, OutcomeMethodNotAllowed)
	}
	// 1. Shape: headers and size, before reading anything or touching a
	// key.
	if r.ContentLength > BodyBytesMax {
		return "", reject(http.StatusRequestEntityTooLarge, OutcomeTooLarge)
	}
	sr, bad := parseHeaders(r.Header)
	if bad != "" {
		return "", &rejection{status: http.StatusBadRequest, outcome: OutcomeMalformed, reason: bad}
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return "", reject(http.StatusRequestEntityTooLarge, OutcomeTooLarge)
		}
		return "", &rejection{status: http.StatusBadRequest, outcome: OutcomeMalformed, reason: "body_unreadable"}
	}

	// 2. Authentication: a known marketplace, a fresh timestamp, a valid
	// signature by one of its active keys.
	now := h.now()
	m, keyID, err := authenticate(h.config.get(), sr, body, now)
	if err != nil {
		return "", err
	}

	// Rate: after authentication, so nobody without the key can spend a
	// marketplace's budget; before storage and the Broker.
	if d := h.rates.wait(m.ID, now); d > 0 {
		return "", &rejection{status: http.StatusTooManyRequests, outcome: OutcomeRateLimited, retryAfter: retryAfterS(d)}
	}

	// 3. Authorisation: what this marketplace may send and for whom.
	payload, businessID, refundOf, err := authorize(m, sr.eventType, body)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(r.Context(), storeTimeoutMs*time.Millisecond)
	defer cancel()
	if refundOf != "" {
		// A refund names no merchant: the charge does. Refunding a charge
		// of a merchant the marketplace does not serve is refused like
		// charging for it.
		c, found, err := h.charges.GetCharge(ctx, refundOf)
		if err != nil {
			return "", err
		}
		if !found {
			return "", reject(http.StatusConflict, OutcomeUnknownCharge)
		}
		if !m.MayActFor(c.MerchantID) {
			return "", reject(http.StatusForbidden, OutcomeMerchantNotAllowed)
		}
	}

	// 4. Replay: the first time this exact signed request is seen.
	digest := requestDigest(sr, body)
	if err := h.replays.record(ctx, sr, keyID, digest, now); err != nil {
		if errors.Is(err, errReplay) {
			return "", reject(http.StatusUnauthorized, OutcomeReplayed)
		}
		return "", err
	}

	// 5. Publish. The event id is derived from the marketplace and the
	// body, so the very same payload sent twice (signed twice) is the same
	// CloudEvent to every consumer that dedupes on source+id.
	out, err := events.NewEvent(sr.eventType, sourcePrefix+m.ID, payload)
	if err != nil {
		return "", fmt.Errorf("build event: %w", err) // the payload passed Decode: a bug
	}
	bodySum := sha256.Sum256(body)
	out.SetID(events.ResultID("ingress|"+m.ID+"|"+hex.EncodeToString(bodySum[:]), sr.eventType))
	out.SetSubject(businessID)
	if err := h.signer.Sign(&out, now); err != nil {
		return "", fmt.Errorf("sign event: %w", err)
	}
	pctx, pcancel := context.WithTimeout(context.WithoutCancel(r.Context()), publishTimeoutMs*time.Millisecond)
	defer pcancel()
	if err := h.broker.Publish(pctx, out); err != nil {
		fctx, fcancel := context.WithTimeout(context.WithoutCancel(r.Context()), storeTimeoutMs*time.Millisecond)
		defer fcancel()
		if ferr := h.replays.forget(fctx, m.ID, sr.nonce); ferr != nil {
			h.log.Error("ingress: could not forget a request the Broker refused; a plain resend will be refused as a replay", "marketplace", m.ID, "err", ferr)
		}
		return "", fault.Transient("broker_unavailable", err)
	}
	h.log.Info("ingress accepted", "marketplace", m.ID, "key", keyID, "type", sr.eventType, "id", out.ID(), "subject", businessID)
	return out.ID(), nil
}

// authenticate checks that sr comes from a configured marketplace, signed
// with one of its active keys at a time inside the window. It reads no
// storage: the replay check comes later, once the request is also allowed.
//
// The window is checked before the marketplace is looked up and an unknown
// marketplace costs the same HMACs as a known one (against unknownKeys), so
// neither the answer nor its timing says whether a marketplace id exists.
func authenticate(cfg *Config, sr signedRequest, body []byte, now time.Time) (*Marketplace, string, error) {
	// In whole seconds, as signed, and in int64: a time.Duration between
	// now and a timestamp centuries away would overflow and pass.
	nowS := now.Unix()
	switch {
	case sr.timestamp < nowS-timestampAgeMaxMs/1000:
		return nil, "", reject(http.StatusUnauthorized, OutcomeStaleTimestamp)
	case sr.timestamp > nowS+timestampAheadMaxMs/1000:
		return nil, "", reject(http.StatusUnauthorized, OutcomeFutureTimestamp)
	}
	m := cfg.Marketplaces[sr.marketplace]
	why := OutcomeBadSignature
	if m == nil {
		m, why = unknownMarketplace, OutcomeUnknownMarketplace
	}
	keyID, ok := verify(m, sr, body)
	if !ok || m == unknownMarketplace {
		return nil, "", &rejection{status: http.StatusUnauthorized, outcome: OutcomeUnauthenticated, why: why}
	}
	return m, keyID, nil
}

// unknownMarketplace stands in for a marketplace that is not configured:
// two random keys nobody has, checked like a real marketplace's.
var unknownMarketplace = func() *Marketplace {
	m := &Marketplace{ID: "", Exact: map[string]bool{}}
	for _, id := range []string{"a", "b"} {
		k := make([]byte, secretBytesMin)
		_, _ = rand.Read(k) // crypto/rand does not fail on supported platforms
		m.Keys = append(m.Keys, Key{ID: id, Secret: k})
	}
	return m
}()

// authorize decodes the payload of an allowed type and checks it is the
// marketplace's own and, for a charge, for a merchant it may act for. For a
// refund it returns the charge id whose merchant the caller must check.
func authorize(m *Marketplace, eventType string, body []byte) (payload any, businessID, refundOf string, err error) {
	if !allowedTypes[eventType] {
		return nil, "", "", reject(http.StatusForbidden, OutcomeTypeNotAllowed)
	}
	ev := cloudevents.NewEvent(cloudevents.VersionV1)
	ev.SetType(eventType)
	ev.DataEncoded = body
	// The marketplace is authenticated by now, so it is told what is wrong
	// (Decode names the field, never its value).
	invalid := func(err error) error {
		detail := err.Error()
		if len(detail) > invalidDetailBytesMax {
			detail = detail[:invalidDetailBytesMax]
		}
		return &rejection{status: http.StatusBadRequest, outcome: OutcomeInvalidEvent, reason: OutcomeInvalidEvent + ": " + detail}
	}
	switch eventType {
	case events.TypeChargeRequested:
		var req events.ChargeRequested
		if err := events.Decode(ev, &req); err != nil {
			return nil, "", "", invalid(err)
		}
		if req.Marketplace != m.ID {
			return nil, "", "", reject(http.StatusForbidden, OutcomeMarketplaceMismatch)
		}
		if !m.MayActFor(req.MerchantID) {
			return nil, "", "", reject(http.StatusForbidden, OutcomeMerchantNotAllowed)
		}
		return req, req.ChargeID, "", nil
	case events.TypeRefundRequested:
		var req events.RefundRequested
		if err := events.Decode(ev, &req); err != nil {
			return nil, "", "", invalid(err)
		}
		if req.Marketplace != m.ID {
			return nil, "", "", reject(http.StatusForbidden, OutcomeMarketplaceMismatch)
		}
		return req, req.RefundID, req.ChargeID, nil
	}
	panic("ingress: allowed type without a decoder: " + eventType)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// metrics counts outcomes per Handler (Counts, for tests and the CLI) and on
// the process's metrics (internal/telemetry), which /metrics serves. Labels
// are outcomes only, never marketplace names: /metrics is on the public
// port, and which marketplaces exist is not for everyone.
type metrics struct {
	mu             sync.Mutex
	byOutcome      map[string]*atomic.Int64
	reloadFailures atomic.Int64
}

func (m *metrics) counter(outcome string) *atomic.Int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.byOutcome == nil {
		m.byOutcome = map[string]*atomic.Int64{}
	}
	c, ok := m.byOutcome[outcome]
	if !ok {
		c = new(atomic.Int64)
		m.byOutcome[outcome] = c
	}
	return c
}

func (m *metrics) count(outcome string) {
	m.counter(outcome).Add(1)
	telemetry.IngressRequest(outcome)
}

// Counts returns the requests counted per outcome so far.
func (h *Handler) Counts() map[string]int64 {
	h.metrics.mu.Lock()
	defer h.metrics.mu.Unlock()
	out := make(map[string]int64, len(h.metrics.byOutcome))
	for k, v := range h.metrics.byOutcome {
		out[k] = v.Load()
	}
	return out
}

// HTTPPublisher posts events to the Broker's ingress in binary mode.
type HTTPPublisher struct {
	URL    string
	Client *http.Client
}

// Publish sends ev and wants a 2xx.
func (p *HTTPPublisher) Publish(ctx context.Context, ev cloudevents.Event) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.URL, nil)
	if err != nil {
		return err
	}
	if err := cehttp.WriteRequest(binding.WithForceBinary(ctx), binding.ToMessage(&ev), req); err != nil {
		return err
	}
	resp, err := p.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode < 200 || resp.StatusCode >= 300 {
		return fmt.Errorf("broker answered %d", resp.StatusCode)
	}
	return nil
}

// Build reads the ingress's configuration and wires its handler. It does
// no network I/O.
func Build(ctx context.Context, getenv func(string) string, log *slog.Logger) (http.Handler, error) {
	tc, err := table.ConfigFromEnv(getenv)
	if err != nil {
		return nil, err
	}
	sink := strings.TrimSpace(getenv(EnvSink))
	if sink == "" {
		sink = strings.TrimSpace(getenv(EnvBrokerURL))
	}
	if u, err := url.Parse(sink); sink == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("ingress: %s or %s must be the Broker's http(s) URL, got %q", EnvSink, EnvBrokerURL, sink)
	}
	// Required: fraud and refund refuse every request the ingress did not
	// sign, so an ingress without its key could only answer 503.
	signer, err := signing.SignerFromEnv(signing.RoleIngress, getenv)
	if err != nil {
		return nil, err
	}
	rates, err := ParseRateLimits(getenv(EnvRateLimits))
	if err != nil {
		return nil, err
	}
	db, err := table.NewClient(ctx, tc)
	if err != nil {
		return nil, err
	}
	h, err := New(Options{
		Signer: signer, RateLimits: rates,
		KeysFile: getenv(EnvKeysFile), MerchantsFile: getenv(EnvMerchantsFile),
		KeysText: getenv(EnvKeys), MerchantsText: getenv(EnvMerchants),
		DB: db, Table: tc.Table, Charges: ledger.New(db, tc.Table, nil),
		Broker: &HTTPPublisher{URL: sink, Client: &http.Client{Timeout: publishTimeoutMs * time.Millisecond}},
		Log:    log,
	})
	if err != nil {
		return nil, err
	}
	if n := len(h.config.get().Marketplaces); n == 0 {
		log.Warn("ingress: no marketplace configured; every request will be refused", "keys", EnvKeysFile+" or "+EnvKeys)
	} else {
		log.Info("ingress: marketplaces configured", "count", n)
	}
	return h, nil
}
