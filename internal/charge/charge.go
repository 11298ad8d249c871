// Package charge is the charge function: it consumes charge.screened (fraud's
// verdict on a marketplace's charge.requested), moves the money through the
// ledger and replies charge.succeeded or charge.declined.
package charge

import (
	"context"
	"fmt"
	"log/slog"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/sebelas/sebelas/events"
	"github.com/sebelas/sebelas/internal/fault"
	"github.com/sebelas/sebelas/internal/function"
	"github.com/sebelas/sebelas/internal/ledger"
	"github.com/sebelas/sebelas/internal/money"
	"github.com/sebelas/sebelas/internal/table"
)

// Source is the CloudEvent source of the charge function's replies.
const Source = events.SourcePrefix + "charge"

// Ledger is what the charge function needs from the ledger.
type Ledger interface {
	Charge(ctx context.Context, req events.ChargeRequested, limits money.Limits) (ledger.ChargeOutcome, error)
	Decline(ctx context.Context, req events.ChargeRequested, reason, detail string) (ledger.ChargeOutcome, error)
}

var _ Ledger = (*ledger.Store)(nil)

// Handler handles charge.screened events.
type Handler struct {
	Ledger Ledger
	Limits money.Limits
	Log    *slog.Logger
}

// Handle is a function.Handler.
func (h *Handler) Handle(ctx context.Context, ev cloudevents.Event) (*cloudevents.Event, error) {
	if ev.Type() != events.TypeChargeScreened {
		return nil, fault.Permanentf("unexpected_type", "charge does not handle %.64q", ev.Type())
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
		// Manual review is not wired yet: a payment that needs a human is
		// declined rather than taken, which costs a sale but never money.
		out, err = h.Ledger.Decline(ctx, req, events.ReasonFraudReview, "held for fraud review")
	default:
		// The schema enumerates decisions; reaching here is a schema bug.
		return nil, fault.Permanentf("invalid_event", "unknown decision")
	}
	if err != nil {
		return nil, err
	}
	typ, res := out.Result(req)
	// The reply id is derived from the charge so that a replayed duplicate
	// carries the very same outcome event and consumers can drop it; a
	// conflict is a new fact about this delivery, so it gets its own id.
	idBasis := req.ChargeID
	if out.Conflict {
		idBasis = ev.Source() + "|" + ev.ID()
	}
	reply, err := events.NewEvent(typ, Source, res)
	if err != nil {
		return nil, fmt.Errorf("build reply: %w", err)
	}
	reply.SetID(events.ResultID(idBasis, typ))
	reply.SetTime(out.At)
	reply.SetSubject(req.ChargeID)
	if h.Log != nil {
		h.Log.Info("charge", "charge_id", req.ChargeID, "outcome", typ, "reason", out.Reason,
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
	h := &Handler{Ledger: ledger.New(db, tc.Table, nil), Limits: limits, Log: log}
	return h.Handle, nil
}
