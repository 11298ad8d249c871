// Package charge is the charge function: it consumes charge.screened (fraud's
// verdict on a marketplace's charge.requested), moves the money through the
// ledger and replies charge.succeeded or charge.declined — or charge.held
// for a charge fraud sent to review, which the risk team's charge.reviewed
// later approves or rejects. Both events must carry a valid signature
// (internal/signing): charge.screened by fraud's key, charge.reviewed by the
// review tool's. Charge holds only their public keys: it can sign nothing.
package charge

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/sebelas/sebelas/events"
	"github.com/sebelas/sebelas/internal/fault"
	"github.com/sebelas/sebelas/internal/function"
	"github.com/sebelas/sebelas/internal/ledger"
	"github.com/sebelas/sebelas/internal/money"
	"github.com/sebelas/sebelas/internal/redact"
	"github.com/sebelas/sebelas/internal/signing"
	"github.com/sebelas/sebelas/internal/table"
)

// Source is the CloudEvent source of the charge function's replies.
const Source = events.SourcePrefix + "charge"

// Ledger is what the charge function needs from the ledger.
type Ledger interface {
	Charge(ctx context.Context, req events.ChargeRequested, limits money.Limits) (ledger.ChargeOutcome, error)
	Decline(ctx context.Context, req events.ChargeRequested, reason, detail string) (ledger.ChargeOutcome, error)
	HoldForReview(ctx context.Context, req events.ChargeRequested) (ledger.ChargeOutcome, error)
	ReviewCharge(ctx context.Context, chargeID string, approve bool, reviewer string, limits money.Limits) (ledger.ChargeOutcome, events.ChargeRequested, error)
}

var _ Ledger = (*ledger.Store)(nil)

// Handler handles charge.screened and charge.reviewed events.
type Handler struct {
	Ledger Ledger
	Limits money.Limits
	// Verifier checks that a screened event comes from fraud and a reviewed
	// one from the risk team's tool (internal/signing): anyone can put an
	// event on the Broker. Nil refuses every event.
	Verifier *signing.Verifier
	Now      func() time.Time // nil means time.Now
	Log      *slog.Logger
}

// Handle is a function.Handler.
func (h *Handler) Handle(ctx context.Context, ev cloudevents.Event) (*cloudevents.Event, error) {
	if ev.Type() != events.TypeChargeScreened && ev.Type() != events.TypeChargeReviewed {
		return nil, fault.Permanentf("unexpected_type", "charge does not handle %.64q", ev.Type())
	}
	// Before anything else: an unsigned, forged or stale event is refused
	// (400, dead-lettered) and moves no money.
	now := time.Now
	if h.Now != nil {
		now = h.Now
	}
	if err := h.Verifier.Verify(ev, now()); err != nil {
		return nil, err
	}
	if ev.Type() == events.TypeChargeReviewed {
		return h.review(ctx, ev)
	}
	var sc events.ChargeScreened
	if err := events.Decode(ev, &sc); err != nil {
		return nil, err
	}
	req := sc.Charge
	var out ledger.ChargeOutcome
	var err error
	switch sc.Screening.Decision {
	case events.DecisionAllow:
		out, err = h.Ledger.Charge(ctx, req, h.Limits)
	case events.DecisionDeny:
		out, err = h.Ledger.Decline(ctx, req, events.ReasonFraud, "declined by fraud screening")
	case events.DecisionReview:
		// Recorded, no money moved, charge.held replied; the risk team's
		// charge.reviewed decides (ledger/review.go).
		out, err = h.Ledger.HoldForReview(ctx, req)
	default:
		// The schema enumerates decisions; reaching here is a schema bug.
		return nil, fault.Permanentf("invalid_event", "unknown decision")
	}
	if err != nil {
		return nil, err
	}
	return h.reply(ev, req, out)
}

// review applies the risk team's decision on a held charge.
func (h *Handler) review(ctx context.Context, ev cloudevents.Event) (*cloudevents.Event, error) {
	var rv events.ChargeReviewed
	if err := events.Decode(ev, &rv); err != nil {
		return nil, err
	}
	out, req, err := h.Ledger.ReviewCharge(ctx, rv.ChargeID, rv.Decision == events.ReviewApprove, rv.Reviewer, h.Limits)
	if err != nil {
		return nil, err
	}
	if h.Log != nil {
		h.Log.Info("charge review", "charge_id", rv.ChargeID, "decision", rv.Decision, "reviewer", rv.Reviewer)
	}
	return h.reply(ev, req, out)
}

// reply builds the outcome event of req.
func (h *Handler) reply(ev cloudevents.Event, req events.ChargeRequested, out ledger.ChargeOutcome) (*cloudevents.Event, error) {
	typ, res := out.Result(req)
	if out.Status == ledger.ChargeInReview {
		typ = events.TypeChargeHeld // not a final outcome: charge.reviewed decides
	}
	// The reply id is derived from the charge so that a replayed duplicate
	// carries the very same outcome event and consumers can drop it; a
	// conflict is a new fact about this delivery, so it gets its own id.
	idBasis := req.ChargeID
	if out.Conflict {
		idBasis = events.DeliveryKey(ev)
	}
	reply, err := events.NewOutcome(typ, Source, idBasis, req.ChargeID, out.At, res)
	if err != nil {
		return nil, err
	}
	if h.Log != nil {
		h.Log.Info("charge", "charge_id", req.ChargeID, "payer", redact.Wallet(req.PayerWallet), "outcome", typ, "reason", out.Reason,
			"replayed", out.Replayed, "conflict", out.Conflict)
	}
	return &reply, nil
}

// Build reads the charge function's configuration and wires its handler. It
// does no network I/O: the DynamoDB client connects on first use.
func Build(ctx context.Context, getenv func(string) string, log *slog.Logger) (function.Handler, error) {
	tc, err := table.ConfigFromEnv(getenv)
	if err != nil {
		return nil, err
	}
	limits := money.DefaultLimits()
	if v := getenv("SEBELAS_CHARGE_LIMITS"); v != "" {
		if limits, err = money.ParseLimits(v); err != nil {
			return nil, fmt.Errorf("SEBELAS_CHARGE_LIMITS: %w", err)
		}
	}
	db, err := table.NewClient(ctx, tc)
	if err != nil {
		return nil, err
	}
	verifier, err := signing.VerifierFromEnv(getenv, signing.RoleFraud, signing.RoleReview)
	if err != nil {
		return nil, err
	}
	h := &Handler{Ledger: ledger.New(db, tc.Table, nil), Limits: limits, Verifier: verifier, Log: log}
	return h.Handle, nil
}
