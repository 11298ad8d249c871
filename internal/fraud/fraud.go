// Package fraud scores payments before money moves. It consumes
// charge.requested and topup.requested and replies charge.screened and
// topup.screened with a score (0–1000), a decision and the reasons that fired.
//
// This first version has static rules from configuration: a per-currency
// amount ceiling and blocklists of wallets and devices.
package fraud

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/sebelas/sebelas/events"
	"github.com/sebelas/sebelas/internal/fault"
	"github.com/sebelas/sebelas/internal/function"
	"github.com/sebelas/sebelas/internal/money"
)

// Source is the CloudEvent source of fraud's replies.
const Source = events.SourcePrefix + "fraud"

// Score thresholds: at or above denyScoreMin the payment is denied, at or
// above reviewScoreMin it needs a human. scoreMax is certain fraud.
const (
	scoreMax       = 1000
	denyScoreMin   = 700
	reviewScoreMin = 400
	// blocklistEntriesMax bounds the configured blocklists; a longer list
	// belongs in the table, not in an environment variable.
	blocklistEntriesMax = 10_000
)

// Reasons the static rules give.
const (
	ReasonBlockedWallet = "blocked_wallet"
	ReasonBlockedDevice = "blocked_device"
	ReasonAboveCeiling  = "amount_above_ceiling"
	ReasonNearCeiling   = "amount_near_ceiling"
	ReasonNoDeviceGiven = "no_device"
)

// Config holds the static rules.
type Config struct {
	// Ceilings is the largest amount per currency fraud lets through.
	Ceilings       money.Limits
	BlockedWallets map[string]bool
	BlockedDevices map[string]bool
}

// ConfigFromEnv reads SEBELAS_FRAUD_CEILINGS ("IDR=20000000,PHP=..."),
// SEBELAS_FRAUD_BLOCKED_WALLETS and SEBELAS_FRAUD_BLOCKED_DEVICES
// (comma-separated).
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	c := Config{Ceilings: money.DefaultLimits()}
	var err error
	if v := getenv("SEBELAS_FRAUD_CEILINGS"); v != "" {
		if c.Ceilings, err = money.ParseLimits(v); err != nil {
			return c, fmt.Errorf("SEBELAS_FRAUD_CEILINGS: %w", err)
		}
	}
	if c.BlockedWallets, err = parseSet("SEBELAS_FRAUD_BLOCKED_WALLETS", getenv); err != nil {
		return c, err
	}
	if c.BlockedDevices, err = parseSet("SEBELAS_FRAUD_BLOCKED_DEVICES", getenv); err != nil {
		return c, err
	}
	return c, nil
}

func parseSet(name string, getenv func(string) string) (map[string]bool, error) {
	set := map[string]bool{}
	v := strings.TrimSpace(getenv(name))
	if v == "" {
		return set, nil
	}
	for _, s := range strings.Split(v, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			return nil, fmt.Errorf("%s: empty entry", name)
		}
		set[s] = true
	}
	if len(set) > blocklistEntriesMax {
		return nil, fmt.Errorf("%s: %d entries, at most %d", name, len(set), blocklistEntriesMax)
	}
	return set, nil
}

// Payment is what the rules look at, common to charges and top-ups.
type Payment struct {
	Wallet   string
	DeviceID string
	Amount   int64
	Currency string
}

// Score applies the rules to one payment.
func (c Config) Score(p Payment) events.Screening {
	score := 0
	var reasons []string
	add := func(points int, reason string) {
		score += points
		reasons = append(reasons, reason)
	}
	if c.BlockedWallets[p.Wallet] {
		add(scoreMax, ReasonBlockedWallet)
	}
	if p.DeviceID != "" && c.BlockedDevices[p.DeviceID] {
		add(scoreMax, ReasonBlockedDevice)
	}
	if ceiling, ok := c.Ceilings[money.Currency(p.Currency)]; ok {
		switch {
		case p.Amount > ceiling:
			add(denyScoreMin, ReasonAboveCeiling)
		case p.Amount > ceiling/10*8:
			// The last fifth below the ceiling is where fraudsters who know
			// the ceiling operate; a human looks at it.
			add(reviewScoreMin, ReasonNearCeiling)
		}
	}
	if score > scoreMax {
		score = scoreMax
	}
	decision := events.DecisionAllow
	switch {
	case score >= denyScoreMin:
		decision = events.DecisionDeny
	case score >= reviewScoreMin:
		decision = events.DecisionReview
	}
	if reasons == nil {
		reasons = []string{}
	}
	return events.Screening{Score: score, Decision: decision, Reasons: reasons, RulesVersion: "static-v1"}
}

// Handler screens charge.requested and topup.requested.
type Handler struct {
	Config Config
	Log    *slog.Logger
}

// Handle is a function.Handler.
func (h *Handler) Handle(ctx context.Context, ev cloudevents.Event) (*cloudevents.Event, error) {
	var (
		typ, businessID string
		payload         any
		verdict         events.Screening
	)
	switch ev.Type() {
	case events.TypeChargeRequested:
		var req events.ChargeRequested
		if err := events.Decode(ev, &req); err != nil {
			return nil, err
		}
		verdict = h.Config.Score(Payment{Wallet: req.PayerWallet, DeviceID: req.DeviceID, Amount: req.Amount, Currency: req.Currency})
		typ, businessID, payload = events.TypeChargeScreened, req.ChargeID, events.ChargeScreened{Charge: req, Screening: verdict}
	case events.TypeTopupRequested:
		var req events.TopupRequested
		if err := events.Decode(ev, &req); err != nil {
			return nil, err
		}
		verdict = h.Config.Score(Payment{Wallet: req.PayerWallet, DeviceID: req.DeviceID, Amount: req.Amount, Currency: req.Currency})
		typ, businessID, payload = events.TypeTopupScreened, req.TopupID, events.TopupScreened{Topup: req, Screening: verdict}
	default:
		return nil, fault.Permanentf("unexpected_type", "fraud does not handle %q", ev.Type())
	}
	reply, err := events.NewEvent(typ, Source, payload)
	if err != nil {
		return nil, fmt.Errorf("build reply: %w", err)
	}
	// Deterministic id per delivered event: a redelivery of the same
	// request produces the same screened event.
	reply.SetID(events.ResultID(ev.Source()+"|"+ev.ID(), typ))
	reply.SetSubject(businessID)
	if h.Log != nil {
		h.Log.Info("screened", "type", typ, "id", businessID, "score", verdict.Score, "decision", verdict.Decision, "reasons", verdict.Reasons)
	}
	return &reply, nil
}

// Build reads fraud's configuration and wires its handler.
func Build(ctx context.Context, getenv func(string) string, log *slog.Logger) (function.Handler, error) {
	cfg, err := ConfigFromEnv(getenv)
	if err != nil {
		return nil, err
	}
	h := &Handler{Config: cfg, Log: log}
	return h.Handle, nil
}
