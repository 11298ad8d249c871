package burst

import (
	"fmt"
	"strings"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/sebelas/sebelas/events"
)

// Sources of generated events: a marketplace per market for charges and
// refunds, the wallet app for top-ups (DESIGN.md's event flow).
const (
	marketplacePrefix = "mall-"
	appSource         = "/app/wallet"
	chargeDescription = "11.11 flash sale"
	refundReason      = "item returned"
)

// Marketplace is the marketplace of market code.
func Marketplace(code string) string { return marketplacePrefix + strings.ToLower(code) }

// CloudEvent turns ev into the CloudEvent a marketplace or the wallet app
// would send. run prefixes the business ids, so two runs do not collide (the
// same run and seed again is a replay: every event a duplicate). now is the
// request's requested_at: the festival instant is a model time, the request
// is made now.
func (p Profile) CloudEvent(run string, ev Event, now time.Time) (cloudevents.Event, error) {
	if ev.Market < 0 || ev.Market >= len(p.Markets) {
		return cloudevents.Event{}, fmt.Errorf("burst: event %d has market %d of %d", ev.Seq, ev.Market, len(p.Markets))
	}
	m := p.Markets[ev.Market]
	now = now.UTC()
	device := DeviceID(m.Code, ev.Payer)
	switch ev.Kind {
	case KindCharge:
		return events.NewEvent(events.TypeChargeRequested, "/marketplace/"+Marketplace(m.Code), p.ChargeRequest(run, ev, now))
	case KindRefund:
		return events.NewEvent(events.TypeRefundRequested, "/marketplace/"+Marketplace(m.Code), events.RefundRequested{
			RefundID: RefundID(run, ev.Seq), ChargeID: ChargeID(run, ev.RefundOf), Marketplace: Marketplace(m.Code),
			Amount: ev.Amount, Currency: string(m.Currency), Reason: refundReason, RequestedAt: now,
		})
	case KindTopup:
		return events.NewEvent(events.TypeTopupRequested, appSource, events.TopupRequested{
			TopupID: TopupID(run, ev.Seq), PayerWallet: PayerID(m.Code, ev.Payer), MSISDN: MSISDN(m.Code, ev.Payer),
			ProductID: ev.Product, Amount: ev.Amount, Currency: string(m.Currency), DeviceID: device, DeviceCountry: m.Code, RequestedAt: now,
		})
	}
	return cloudevents.Event{}, fmt.Errorf("burst: event %d has unknown kind %v", ev.Seq, ev.Kind)
}

// ChargeRequest is the payload of a charge event (KindCharge): what a
// marketplace asks for. The benchmark's raw ceiling hands it to the ledger
// directly; CloudEvent wraps the very same payload.
func (p Profile) ChargeRequest(run string, ev Event, now time.Time) events.ChargeRequested {
	m := p.Markets[ev.Market]
	return events.ChargeRequested{
		ChargeID: ChargeID(run, ev.Seq), Marketplace: Marketplace(m.Code),
		MerchantID: MerchantID(m.Code, ev.Merchant), PayerWallet: PayerID(m.Code, ev.Payer),
		Amount: ev.Amount, Currency: string(m.Currency), DeviceID: DeviceID(m.Code, ev.Payer), DeviceCountry: m.Code,
		Description: chargeDescription, RequestedAt: now.UTC(),
	}
}

// DeviceID is payer n's phone: one device per payer.
func DeviceID(code string, n int) string { return fmt.Sprintf("d-%s-%06d", strings.ToLower(code), n) }
