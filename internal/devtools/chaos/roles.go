package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/sebelas/sebelas/events"
	"github.com/sebelas/sebelas/internal/signing"
)

// Insider attacks with real keys of the wrong role: what a compromised pod
// could sign with the one private key it holds (docs/security.md). Each
// must end as a 400 dead letter, and the charges must not be in the table.
const (
	insiderScreenedByIngress = "insider: charge.screened signed with the ingress's key"
	insiderTopupByIngress    = "insider: topup.requested signed with the ingress's key"
	insiderTopupUnsigned     = "insider: unsigned topup.requested for a victim's wallet"
	insiderTopupScreenedApp  = "insider: topup.screened signed with the app gateway's key"
)

// roleInsider posts, for funded wallets: a charge.screened "allow" forged
// with the ingress's key (relabelled as fraud), top-up requests unsigned and
// signed with the ingress's key, and a topup.screened "allow" signed with
// the app gateway's key.
func (e *env) roleInsider(ctx context.Context) {
	post := func(kind string, ev cloudevents.Event, keyOf, as signing.Role) {
		if keyOf != "" {
			if err := e.keys.Impostor(keyOf, as).Sign(&ev, time.Now()); err != nil {
				panic(err) // the impostor claims the type's own role
			}
		}
		e.publishInsider(ctx, kind, ev)
	}
	for i := range max(2, e.o.Charges/200) {
		w := e.plan.wallets[i%len(e.plan.wallets)]
		c := &chargePlan{id: fmt.Sprintf("cx-%d-role-%d", e.o.Seed, i), mp: e.plan.mps[0], merchant: "m-alpha-1",
			payer: w, amount: max(1, w.funded/10), attack: insiderScreenedByIngress}
		e.mu.Lock()
		e.plan.charges[c.id] = c
		e.mu.Unlock()
		screened, err := events.NewEvent(events.TypeChargeScreened, "/sebelas/fraud", events.ChargeScreened{
			Charge: events.ChargeRequested{ChargeID: c.id, Marketplace: c.mp.id, MerchantID: c.merchant, PayerWallet: w.id,
				Amount: c.amount, Currency: string(w.cur), RequestedAt: time.Now().UTC()},
			Screening: events.Screening{Decision: events.DecisionAllow, Reasons: []string{}}})
		if err != nil {
			panic(err)
		}
		post(insiderScreenedByIngress, screened, signing.RoleIngress, signing.RoleFraud)

		raw, ok := events.Sample(events.TypeTopupRequested)
		if !ok {
			panic("events: no topup.requested sample")
		}
		var req events.TopupRequested
		if err := json.Unmarshal(raw, &req); err != nil {
			panic(err)
		}
		req.PayerWallet, req.RequestedAt = w.id, time.Now().UTC()
		for j, attack := range []struct {
			kind      string
			keyOf, as signing.Role
		}{{insiderTopupUnsigned, "", ""}, {insiderTopupByIngress, signing.RoleIngress, signing.RoleApp}} {
			req.TopupID = fmt.Sprintf("tx-%d-role-%d-%d", e.o.Seed, i, j)
			ev, err := events.NewEvent(events.TypeTopupRequested, "/app", req)
			if err != nil {
				panic(err)
			}
			post(attack.kind, ev, attack.keyOf, attack.as)
		}
		req.TopupID = fmt.Sprintf("tx-%d-role-%d-s", e.o.Seed, i)
		ts, err := events.NewEvent(events.TypeTopupScreened, "/sebelas/fraud", events.TopupScreened{Topup: req,
			Screening: events.Screening{Decision: events.DecisionAllow, Reasons: []string{}}})
		if err != nil {
			panic(err)
		}
		post(insiderTopupScreenedApp, ts, signing.RoleApp, signing.RoleFraud)
	}
}
