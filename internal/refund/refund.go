// Package refund is the refund function: it consumes refund.requested from a
// marketplace, gives the money back through the ledger and replies
// refund.succeeded or refund.rejected. A refund that overtook its charge is
// answered 503 for a bounded time (ledger.RefundChargeWaitMs) and then 400
// unknown_charge, which dead-letters it.
package refund

import (
	"context"
	"log/slog"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/sebelas/sebelas/events"
	"github.com/sebelas/sebelas/internal/fault"
	"github.com/sebelas/sebelas/internal/function"
	"github.com/sebelas/sebelas/internal/ledger"
	"github.com/sebelas/sebelas/internal/signing"
	"github.com/sebelas/sebelas/internal/table"
)

// Source is the CloudEvent source of the refund function's replies.
const Source = events.SourcePrefix + "refund"

// Ledger is what the refund function needs from the ledger.
type Ledger interface {
	Refund(ctx context.Context, req events.RefundRequested) (ledger.RefundOutcome, error)
}

var _ Ledger = (*ledger.Store)(nil)

// Handler handles refund.requested events.
type Handler struct {
	Ledger Ledger
	Log    *slog.Logger
	// Verifier refuses a refund.requested the ingress did not sign, before
	// any money moves; nil refuses them all. AcceptUnsigned skips the check:
	// local development only (signing.EnvDevAcceptUnsigned).
	Verifier       *signing.Verifier
	AcceptUnsigned bool
	Now            func() time.Time // nil means time.Now
}

// Handle is a function.Handler.
func (h *Handler) Handle(ctx context.Context, ev cloudevents.Event) (*cloudevents.Event, error) {
	if ev.Type() != events.TypeRefundRequested {
		return nil, fault.Permanentf("unexpected_type", "refund does not handle %.64q", ev.Type())
	}
	if !h.AcceptUnsigned {
		now := time.Now
		if h.Now != nil {
			now = h.Now
		}
		if err := h.Verifier.Verify(ev, now()); err != nil {
			return nil, err
		}
	}
	var req events.RefundRequested
	if err := events.Decode(ev, &req); err != nil {
		return nil, err
	}
	out, err := h.Ledger.Refund(ctx, req)
	if err != nil {
		return nil, err
	}
	typ, res := out.Result(req)
	// As for charges: a replayed duplicate carries the very same reply id,
	// a conflict is a new fact about this delivery and gets its own.
	idBasis := req.RefundID
	if out.Conflict {
		idBasis = events.DeliveryKey(ev)
	}
	reply, err := events.NewOutcome(typ, Source, idBasis, req.RefundID, out.At, res)
	if err != nil {
		return nil, err
	}
	if h.Log != nil {
		h.Log.Info("refund", "refund_id", req.RefundID, "charge_id", req.ChargeID, "outcome", typ,
			"reason", out.Reason, "replayed", out.Replayed, "conflict", out.Conflict)
	}
	return &reply, nil
}

// Build reads the refund function's configuration and wires its handler. It
// does no network I/O.
func Build(ctx context.Context, getenv func(string) string, log *slog.Logger) (function.Handler, error) {
	tc, err := table.ConfigFromEnv(getenv)
	if err != nil {
		return nil, err
	}
	db, err := table.NewClient(ctx, tc)
	if err != nil {
		return nil, err
	}
	verifier, acceptUnsigned, err := signing.RequestVerifierFromEnv(getenv, signing.RoleIngress)
	if err != nil {
		return nil, err
	}
	if acceptUnsigned && log != nil {
		log.Warn("INSECURE: accepting unsigned refund requests (local development only)", "env", signing.EnvDevAcceptUnsigned)
	}
	h := &Handler{Ledger: ledger.New(db, tc.Table, nil), Log: log, Verifier: verifier, AcceptUnsigned: acceptUnsigned}
	return h.Handle, nil
}
