// Package appgw is the wallet app's way in for top-ups: it accepts a
// topup.requested only with a valid session token (internal/session) for
// the very wallet the top-up debits, and publishes it signed by the app
// role (internal/signing), the one role fraud accepts topup.requested from.
// Anyone else on the cluster network posting a top-up to the Broker is
// refused by fraud: unsigned, or signed by another role's key.
//
// POST /v1/topups, Authorization: Bearer <session token>, body the JSON of
// events.TopupRequested. Answers:
//
//	202 {"id": "<event id>"}   on the Broker
//	400 {"error": "invalid_event: ..."}   the payload does not validate
//	401 {"error": "unauthenticated"}      no, bad or expired session (one answer)
//	403 {"error": "wallet_mismatch"}      the session is for another wallet
//	413 body over 64 KiB; 503 the Broker did not take it (resend)
package appgw

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/sebelas/sebelas/events"
	"github.com/sebelas/sebelas/internal/fault"
	"github.com/sebelas/sebelas/internal/ingress"
	"github.com/sebelas/sebelas/internal/redact"
	"github.com/sebelas/sebelas/internal/session"
	"github.com/sebelas/sebelas/internal/signing"
)

// Limits.
const (
	bodyBytesMax     = events.BodyBytesMax
	publishTimeoutMs = 5_000
	detailBytesMax   = 512
	// Source is the CloudEvent source of what the gateway publishes.
	Source = "/app"
)

// Publisher puts an event on the Broker.
type Publisher interface {
	Publish(ctx context.Context, ev cloudevents.Event) error
}

// Handler is the app gateway.
type Handler struct {
	Sessions *signing.Verifier // the session role's public keys
	Signer   *signing.Signer   // the app role's private key
	Broker   Publisher
	Now      func() time.Time
	Log      *slog.Logger
}

// New checks the wiring: every part is required, there is no unsigned or
// unauthenticated mode.
func New(h Handler) *Handler {
	if !h.Sessions.Verifies(signing.RoleSession) || h.Signer == nil || h.Signer.Role() != signing.RoleApp || h.Broker == nil {
		panic("appgw.New: session public keys, an app-role Signer and a Broker are required")
	}
	if h.Now == nil {
		h.Now = time.Now
	}
	if h.Log == nil {
		h.Log = slog.New(slog.DiscardHandler)
	}
	return &h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/healthz" && r.Method == http.MethodGet:
		_, _ = io.WriteString(w, "ok\n")
	case r.URL.Path == "/v1/topups" && r.Method == http.MethodPost:
		status, answer := h.topup(r)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="sebelas"`)
		}
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(answer)
	default:
		http.NotFound(w, r)
	}
}

func (h *Handler) topup(r *http.Request) (int, map[string]string) {
	refuse := func(status int, reason, why string) (int, map[string]string) {
		h.Log.Warn("appgw refused", "status", status, "reason", reason, "why", why)
		return status, map[string]string{"error": reason}
	}
	now := h.Now()
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return refuse(http.StatusUnauthorized, "unauthenticated", "no bearer token")
	}
	claims, err := session.Verify(h.Sessions, token, now)
	if err != nil {
		return refuse(http.StatusUnauthorized, "unauthenticated", fault.ReasonOf(err))
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, bodyBytesMax))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return refuse(http.StatusRequestEntityTooLarge, "body_too_large", "")
		}
		return refuse(http.StatusBadRequest, "body_unreadable", "")
	}
	in := cloudevents.NewEvent(cloudevents.VersionV1)
	in.SetType(events.TypeTopupRequested)
	in.DataEncoded = body
	var req events.TopupRequested
	if err := events.Decode(in, &req); err != nil {
		detail := err.Error()
		if len(detail) > detailBytesMax {
			detail = detail[:detailBytesMax]
		}
		return refuse(http.StatusBadRequest, "invalid_event: "+detail, "")
	}
	if req.PayerWallet != claims.Wallet {
		return refuse(http.StatusForbidden, "wallet_mismatch", redact.Wallet(claims.Wallet)+" asked to debit "+redact.Wallet(req.PayerWallet))
	}
	out, err := events.NewEvent(events.TypeTopupRequested, Source, req)
	if err != nil {
		panic(fmt.Sprintf("appgw: a decoded top-up does not encode: %v", err))
	}
	// One top-up, one event id: the app resending it is a duplicate.
	out.SetID(events.ResultID("appgw|"+req.TopupID, events.TypeTopupRequested))
	out.SetSubject(req.TopupID)
	if err := h.Signer.Sign(&out, now); err != nil {
		panic(fmt.Sprintf("appgw: the app role signs top-ups: %v", err))
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), publishTimeoutMs*time.Millisecond)
	defer cancel()
	if err := h.Broker.Publish(ctx, out); err != nil {
		return refuse(http.StatusServiceUnavailable, "unavailable", err.Error())
	}
	h.Log.Info("appgw accepted", "topup", req.TopupID, "wallet", redact.Wallet(req.PayerWallet), "id", out.ID())
	return http.StatusAccepted, map[string]string{"id": out.ID()}
}

// Build reads the gateway's keys and the Broker's address. It does no
// network I/O.
func Build(_ context.Context, getenv func(string) string, log *slog.Logger) (http.Handler, error) {
	sink := strings.TrimSpace(getenv(ingress.EnvSink))
	if sink == "" {
		sink = strings.TrimSpace(getenv(ingress.EnvBrokerURL))
	}
	if u, err := url.Parse(sink); sink == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("appgw: %s or %s must be the Broker's http(s) URL, got %q", ingress.EnvSink, ingress.EnvBrokerURL, sink)
	}
	signer, err := signing.SignerFromEnv(signing.RoleApp, getenv)
	if err != nil {
		return nil, err
	}
	sessions, err := signing.VerifierFromEnv(getenv, signing.RoleSession)
	if err != nil {
		return nil, err
	}
	return New(Handler{Sessions: sessions, Signer: signer, Log: log,
		Broker: &ingress.HTTPPublisher{URL: sink, Client: &http.Client{Timeout: publishTimeoutMs * time.Millisecond}}}), nil
}
