package fraud

import (
	"context"
	"testing"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/sebelas/sebelas/events"
	"github.com/sebelas/sebelas/internal/fault"
	"github.com/sebelas/sebelas/internal/signing"
)

// Requests are screened only when signed by the party allowed to send them:
// a charge.requested by the ingress, a topup.requested by the app gateway.
// Unsigned ones (posted straight onto the Broker), ones signed with a key
// not configured, or by another role's key are refused before scoring —
// nothing is counted, no screened event is signed.
func TestRequestsOnlyFromTheirSender(t *testing.T) {
	keys := testKeys(t)
	other := signing.NewDevKeys() // an attacker's keys of every role
	charge := events.ChargeRequested{ChargeID: "ch-1", Marketplace: "tindahan", MerchantID: "m-1", PayerWallet: "w-1",
		Amount: 1000, Currency: "PHP", RequestedAt: t0}
	top := events.TopupRequested{TopupID: "tp-1", PayerWallet: "w-1", MSISDN: "+639170000456", Amount: 100_00, Currency: "PHP",
		RequestedAt: t0}
	tests := []struct {
		name, typ string
		payload   any
		sign      func(t *testing.T, ev *cloudevents.Event)
		reason    string
	}{
		{"unsigned charge", events.TypeChargeRequested, charge, nil, signing.ReasonMissing},
		{"charge signed by another ingress key", events.TypeChargeRequested, charge, by(other, signing.RoleIngress), signing.ReasonInvalid},
		{"charge signed by the app gateway", events.TypeChargeRequested, charge, as(keys, signing.RoleApp, signing.RoleIngress), signing.ReasonInvalid},
		{"charge signed by fraud's own key", events.TypeChargeRequested, charge, as(keys, signing.RoleFraud, signing.RoleIngress), signing.ReasonInvalid},
		{"unsigned top-up", events.TypeTopupRequested, top, nil, signing.ReasonMissing},
		{"top-up signed by another app key", events.TypeTopupRequested, top, by(other, signing.RoleApp), signing.ReasonInvalid},
		{"top-up signed by the ingress", events.TypeTopupRequested, top, as(keys, signing.RoleIngress, signing.RoleApp), signing.ReasonInvalid},
		{"charge signed by the ingress", events.TypeChargeRequested, charge, by(keys, signing.RoleIngress), ""},
		{"top-up signed by the app gateway", events.TypeTopupRequested, top, by(keys, signing.RoleApp), ""},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := NewMemoryStore()
			h := newHandler(t, keys)
			h.Scorer.Store = store
			ev := unsigned(t, tt.typ, tt.payload, "ev-"+string(rune('a'+i)))
			if tt.sign != nil {
				tt.sign(t, &ev)
			}
			reply, err := h.Handle(context.Background(), ev)
			if tt.reason == "" {
				if err != nil || reply == nil {
					t.Fatalf("reply %v, err %v; want a screened event", reply, err)
				}
				return
			}
			if !fault.IsPermanent(err) || fault.ReasonOf(err) != tt.reason || reply != nil {
				t.Fatalf("reply %v, err %v; want permanent %s", reply, err, tt.reason)
			}
			if _, n := store.RoundTrips(); n != 0 {
				t.Errorf("a refused request was counted %d times", n)
			}
		})
	}
	// The local-development switch, and only it, lets unsigned requests in.
	h := newHandler(t, keys)
	h.AcceptUnsignedRequests = true
	if _, err := h.Handle(context.Background(), unsigned(t, events.TypeChargeRequested, charge, "ev-dev")); err != nil {
		t.Errorf("dev switch on: %v", err)
	}
}

// by signs with role's key of k, as that party would.
func by(k signing.DevKeys, role signing.Role) func(*testing.T, *cloudevents.Event) {
	return func(t *testing.T, ev *cloudevents.Event) {
		t.Helper()
		if err := k.Signers[role].Sign(ev, t0); err != nil {
			t.Fatal(err)
		}
	}
}

// as forges: the private key of keyRole (a pod holding it is compromised)
// signs under label's role and key id.
func as(k signing.DevKeys, keyRole, label signing.Role) func(*testing.T, *cloudevents.Event) {
	return func(t *testing.T, ev *cloudevents.Event) {
		t.Helper()
		if err := k.Impostor(keyRole, label).Sign(ev, t0); err != nil {
			t.Fatal(err)
		}
	}
}
