// Package fraud scores payments before money moves. It consumes
// charge.requested and topup.requested and replies charge.screened and
// topup.screened with a score (0–1000), a decision (allow, review, deny) and
// the reasons that fired, signed with fraud's own key (internal/signing) so
// that charge and topup can refuse a screened event fraud did not produce. It
// screens only requests signed by the party allowed to send them: the
// ingress (charge.requested) and the app gateway (topup.requested).
//
// Scoring has three parts:
//   - features (features.go): the payment, plus what the store knows of the
//     paying wallet — velocity over 1 minute, 1 hour and 1 day, amount
//     against its history, new device, new payee, device country, the share
//     of the balance being spent, new wallets on the device;
//   - the store (store_dynamo.go, velocity.go): one UpdateItem per payment
//     that records it and returns the wallet's counters;
//   - rules (rules.go): CEL expressions over the features with per-market
//     thresholds, written by the risk team in a ConfigMap-shaped YAML file,
//     reloaded when it changes (watch.go).
package fraud

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/sebelas/sebelas/events"
	"github.com/sebelas/sebelas/internal/fault"
	"github.com/sebelas/sebelas/internal/function"
	"github.com/sebelas/sebelas/internal/ledger"
	"github.com/sebelas/sebelas/internal/market"
	"github.com/sebelas/sebelas/internal/money"
	"github.com/sebelas/sebelas/internal/redact"
	"github.com/sebelas/sebelas/internal/signing"
	"github.com/sebelas/sebelas/internal/table"
)

// Source is the CloudEvent source of fraud's replies.
const Source = events.SourcePrefix + "fraud"

// scoreMax is certain fraud.
const scoreMax = 1000

// Scorer computes a verdict: store, features, rules. It is the whole of
// screening without CloudEvents, shared by the Handler and `sebelas fraud
// eval`.
type Scorer struct {
	Rules RuleSource
	Store Store
	// Rates, when set, measure each market's own rate (market_surge).
	Rates *MarketRates
}

// Score records p in the store and scores it with the rules in force.
func (s *Scorer) Score(ctx context.Context, p Payment) (Verdict, Features, error) {
	m, err := market.ByCurrency(money.Currency(p.Currency))
	if err != nil {
		return Verdict{}, Features{}, err
	}
	rs := s.Rules.Current()
	// Money leaving to another person (a transfer, a cash-out) reads the
	// balance whatever its size: a slow drain is made of small ones.
	typ := p.TypeOrKind()
	wantBalance := rs.WantsBalance(m.Code, p.Amount) || typ == TypeTransfer || typ == TypeCashOut
	o, err := s.Store.Observe(ctx, p, wantBalance)
	if err != nil {
		return Verdict{}, Features{}, err
	}
	f := NewFeatures(p, o, m)
	if s.Rates != nil {
		f.MarketSurge = s.Rates.Observe(m.Code, p.At)
	}
	return rs.Score(&f), f, nil
}

// PaymentKey is the dedup key of a payment in velocity: its kind and
// business id (charge_id, topup_id), never the CloudEvent id, so resends of
// one payment with fresh event ids count once and do not flip verdicts.
func PaymentKey(kind, businessID string) string { return kind + "\x00" + businessID }

// Handler screens charge.requested and topup.requested.
type Handler struct {
	Scorer *Scorer
	// Signer is fraud's key: it signs every screened event.
	Signer *signing.Signer
	// Requests verifies that a charge.requested comes from the ingress and
	// a topup.requested from the app gateway; nil refuses them all.
	Requests *signing.Verifier
	// AcceptUnsignedRequests skips that check: local development only
	// (signing.EnvDevAcceptUnsigned).
	AcceptUnsignedRequests bool
	Now                    func() time.Time // nil means time.Now
	Log                    *slog.Logger
}

// Handle is a function.Handler.
func (h *Handler) Handle(ctx context.Context, ev cloudevents.Event) (*cloudevents.Event, error) {
	now := time.Now
	if h.Now != nil {
		now = h.Now
	}
	p := Payment{At: now().UTC()}
	var (
		typ, businessID string
		reply           func(events.Screening) any
	)
	if ev.Type() != events.TypeChargeRequested && ev.Type() != events.TypeTopupRequested {
		return nil, fault.Permanentf("unexpected_type", "fraud does not handle %.64q", ev.Type())
	}
	// Before anything is scored or counted: a request the ingress or the
	// app gateway did not sign is refused (400, dead-lettered).
	if !h.AcceptUnsignedRequests {
		if err := h.Requests.Verify(ev, now()); err != nil {
			return nil, err
		}
	}
	switch ev.Type() {
	case events.TypeChargeRequested:
		var req events.ChargeRequested
		if err := events.Decode(ev, &req); err != nil {
			return nil, err
		}
		p.Kind, p.Wallet, p.Payee, p.Amount, p.Currency = KindCharge, req.PayerWallet, req.MerchantID, req.Amount, req.Currency
		p.DeviceID, p.DeviceCountry = req.DeviceID, req.DeviceCountry
		typ, businessID = events.TypeChargeScreened, req.ChargeID
		p.EventKey = PaymentKey(KindCharge, req.ChargeID)
		reply = func(s events.Screening) any { return events.ChargeScreened{Charge: req, Screening: s} }
	case events.TypeTopupRequested:
		var req events.TopupRequested
		if err := events.Decode(ev, &req); err != nil {
			return nil, err
		}
		p.Kind, p.Wallet, p.Payee, p.Amount, p.Currency = KindTopup, req.PayerWallet, msisdnDigits(req.MSISDN), req.Amount, req.Currency
		p.DeviceID, p.DeviceCountry = req.DeviceID, req.DeviceCountry
		typ, businessID = events.TypeTopupScreened, req.TopupID
		p.EventKey = PaymentKey(KindTopup, req.TopupID)
		reply = func(s events.Screening) any { return events.TopupScreened{Topup: req, Screening: s} }
	default:
		return nil, fault.Permanentf("unexpected_type", "fraud does not handle %.64q", ev.Type())
	}
	verdict, _, err := h.Scorer.Score(ctx, p)
	if err != nil {
		return nil, err
	}
	out, err := events.NewEvent(typ, Source, reply(verdict.Screening))
	if err != nil {
		return nil, fmt.Errorf("build reply: %w", err)
	}
	// Deterministic id per delivered event: a redelivery of the same
	// request produces the same screened event id.
	out.SetID(events.ResultID(events.DeliveryKey(ev), typ))
	out.SetSubject(businessID)
	// Signing is the last change to the event.
	if err := h.Signer.Sign(&out, now()); err != nil {
		return nil, err
	}
	if h.Log != nil {
		attrs := []any{"type", typ, "id", businessID, "wallet", redact.Wallet(p.Wallet), "score", verdict.Score, "decision", verdict.Decision,
			"reasons", verdict.Reasons, "rules_version", verdict.RulesVersion}
		if len(verdict.Errors) > 0 {
			h.Log.Warn("fraud rule failed to evaluate", append(attrs, "errors", verdict.Errors)...)
		} else {
			h.Log.Info("screened", attrs...)
		}
	}
	return &out, nil
}

// msisdnDigits keeps the digits of a phone number: "+62 812-3456" and
// "+628123456" are one payee. The number itself is never logged or stored
// (the store keeps a hash).
func msisdnDigits(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// Build reads fraud's configuration and wires its handler: fraud's signing
// key and the ingress's and app gateway's public keys (required), the rules (SEBELAS_FRAUD_RULES, watched; unset means the
// built-in default rules) and the table. It does no network I/O.
func Build(ctx context.Context, getenv func(string) string, log *slog.Logger) (function.Handler, error) {
	signer, err := signing.SignerFromEnv(signing.RoleFraud, getenv)
	if err != nil {
		return nil, err
	}
	requests, acceptUnsigned, err := signing.RequestVerifierFromEnv(getenv, signing.RoleIngress, signing.RoleApp)
	if err != nil {
		return nil, err
	}
	extra, err := ListsFromEnv(getenv)
	if err != nil {
		return nil, err
	}
	var rules RuleSource
	if path := getenv(EnvRules); path != "" {
		w, err := NewWatcher(path, extra, log)
		if err != nil {
			return nil, err
		}
		go w.Run(ctx, 0)
		rules = w
	} else {
		rs, err := ParseRulesWithLists(defaultRules, extra)
		if err != nil {
			return nil, fmt.Errorf("built-in fraud rules: %w", err)
		}
		rules = StaticRules{rs}
	}
	tc, err := table.ConfigFromEnv(getenv)
	if err != nil {
		return nil, err
	}
	db, err := table.NewClient(ctx, tc)
	if err != nil {
		return nil, err
	}
	h := &Handler{
		Scorer:                 &Scorer{Rules: rules, Store: NewDynamoStore(db, tc.Table, ledger.New(db, tc.Table, nil))},
		Signer:                 signer,
		Requests:               requests,
		AcceptUnsignedRequests: acceptUnsigned,
		Log:                    log,
	}
	if log != nil {
		rs := rules.Current()
		log.Info("fraud rules in force", "version", rs.Version, "rules", rs.Rules(), "signing_key", signer.KeyID())
		if acceptUnsigned {
			log.Warn("INSECURE: accepting unsigned charge and top-up requests (local development only)", "env", signing.EnvDevAcceptUnsigned)
		}
	}
	return h.Handle, nil
}
