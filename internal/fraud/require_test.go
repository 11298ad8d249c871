package fraud

import (
	"context"
	"testing"

	"github.com/sebelas/sebelas/events"
	"github.com/sebelas/sebelas/internal/fault"
)

// With RequireSignedRequests, a charge.requested posted straight onto the
// Broker (not through the ingress, so unsigned or signed with another key)
// is refused before scoring; one signed with the cluster key is screened.
func TestRequireSignedChargeRequests(t *testing.T) {
	keys := testKeys(t)
	h := newHandler(t, keys)
	h.RequireSignedRequests = true
	req := events.ChargeRequested{ChargeID: "ch-1", Marketplace: "tindahan", MerchantID: "m-1", PayerWallet: "w-1",
		Amount: 1000, Currency: "PHP", RequestedAt: t0}

	unsigned := incoming(t, events.TypeChargeRequested, req, "ev-1")
	if _, err := h.Handle(context.Background(), unsigned); !fault.IsPermanent(err) {
		t.Errorf("unsigned charge.requested: err %v, want permanent", err)
	}
	forged := incoming(t, events.TypeChargeRequested, req, "ev-2")
	if err := testKeys(t).Sign(&forged, t0); err != nil { // another key
		t.Fatal(err)
	}
	if _, err := h.Handle(context.Background(), forged); !fault.IsPermanent(err) {
		t.Errorf("charge.requested signed with a foreign key: err %v, want permanent", err)
	}
	signed := incoming(t, events.TypeChargeRequested, req, "ev-3")
	if err := keys.Sign(&signed, t0); err != nil {
		t.Fatal(err)
	}
	reply, err := h.Handle(context.Background(), signed)
	if err != nil || reply.Type() != events.TypeChargeScreened {
		t.Fatalf("signed charge.requested: reply %v, err %v; want charge.screened", reply, err)
	}
}
