package refund_test

import (
	"context"
	"testing"
	"time"

	ce "github.com/cloudevents/sdk-go/v2"

	"github.com/sebelas/sebelas/events"
	"github.com/sebelas/sebelas/internal/fault"
	"github.com/sebelas/sebelas/internal/ledger"
	"github.com/sebelas/sebelas/internal/refund"
	"github.com/sebelas/sebelas/internal/signing"
)

// countingLedger records whether the handler reached the ledger at all.
type countingLedger struct{ calls int }

func (c *countingLedger) Refund(context.Context, events.RefundRequested) (ledger.RefundOutcome, error) {
	c.calls++
	return ledger.RefundOutcome{}, fault.Transient("not_reached", nil)
}

// A refund.requested that the ingress did not sign never reaches the
// ledger — unsigned, signed with a key not configured, or by another role's
// key; one the ingress signed does. Secure by default: the zero Handler
// verifies too (and refuses everything, holding no keys).
func TestRefundRequestsOnlyFromTheIngress(t *testing.T) {
	now := time.Date(2026, 11, 11, 2, 0, 0, 0, time.UTC)
	keys := signing.NewDevKeys()
	other := signing.NewDevKeys().Signers[signing.RoleIngress]
	l := &countingLedger{}
	h := &refund.Handler{Ledger: l, Verifier: keys.Verifier(), Now: func() time.Time { return now }}
	req := events.RefundRequested{RefundID: "rf-1", ChargeID: "ch-1", Marketplace: "tindahan", Amount: 100,
		Reason: "damaged", RequestedAt: now}
	newEvent := func() *ce.Event {
		ev, err := events.NewEvent(events.TypeRefundRequested, "/marketplace/tindahan", req)
		if err != nil {
			t.Fatal(err)
		}
		return &ev
	}
	unsigned := newEvent()
	if _, err := h.Handle(context.Background(), *unsigned); !fault.IsPermanent(err) {
		t.Errorf("unsigned: err %v, want permanent", err)
	}
	forged := newEvent()
	if err := other.Sign(forged, now); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Handle(context.Background(), *forged); !fault.IsPermanent(err) {
		t.Errorf("foreign key: err %v, want permanent", err)
	}
	for _, role := range []signing.Role{signing.RoleFraud, signing.RoleApp, signing.RoleReview} {
		byOther := newEvent()
		if err := keys.Impostor(role, signing.RoleIngress).Sign(byOther, now); err != nil {
			t.Fatal(err)
		}
		if _, err := h.Handle(context.Background(), *byOther); fault.ReasonOf(err) != signing.ReasonInvalid {
			t.Errorf("signed with %s's key: err %v, want %s", role, err, signing.ReasonInvalid)
		}
	}
	zero := &refund.Handler{Ledger: l}
	if _, err := zero.Handle(context.Background(), *unsigned); !fault.IsPermanent(err) {
		t.Errorf("zero Handler, unsigned: err %v, want permanent", err)
	}
	if l.calls != 0 {
		t.Fatalf("ledger reached %d times by unsigned or forged refunds", l.calls)
	}
	signed := newEvent()
	if err := keys.Sign(signed, now); err != nil {
		t.Fatal(err)
	}
	_, _ = h.Handle(context.Background(), *signed)
	if l.calls != 1 {
		t.Errorf("signed refund reached the ledger %d times, want 1", l.calls)
	}
}
