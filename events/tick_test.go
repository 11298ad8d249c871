package events

import (
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/sebelas/sebelas/internal/fault"
)

func TestFromTick(t *testing.T) {
	ping := cloudevents.NewEvent()
	ping.SetID("p1")
	ping.SetSource("/apis/v1/namespaces/sebelas/pingsources/settle-in")
	ping.SetType(TypePing)
	ping.SetExtension(TickTypeExtension, TypeSettlementDue)
	_ = ping.SetData(cloudevents.ApplicationJSON, []byte(`{"market":"IN","timezone":"Asia/Kolkata"}`))
	got, err := FromTick(ping)
	if err != nil || got.Type() != TypeSettlementDue || ping.Type() != TypePing {
		t.Fatalf("FromTick = %v, %v; original type %s", got.Type(), err, ping.Type())
	}
	var due SettlementDue
	if err := Decode(got, &due); err != nil || due.Market != "IN" {
		t.Errorf("decode tick: %+v, %v", due, err)
	}
	bad := ping.Clone()
	bad.SetExtension(TickTypeExtension, TypeChargeScreened) // a tick cannot move money
	if _, err := FromTick(bad); !fault.IsPermanent(err) {
		t.Errorf("tick standing for charge.screened: err %v, want permanent", err)
	}
	plain := ping.Clone()
	plain.SetType(TypeSettlementDue)
	if got, err := FromTick(plain); err != nil || got.Type() != TypeSettlementDue {
		t.Errorf("non-tick changed: %v, %v", got.Type(), err)
	}
}

func TestNewOutcomeIsTheSameEventOnReplay(t *testing.T) {
	at := time.Date(2026, 11, 11, 0, 0, 1, 0, time.UTC)
	res := ChargeResult{ChargeID: "ch-1", MerchantID: "m-1", PayerWallet: "w-1", Amount: 100, Currency: "PHP", At: at}
	a, err := NewOutcome(TypeChargeSucceeded, "/sebelas/charge", "ch-1", "ch-1", at, res)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewOutcome(TypeChargeSucceeded, "/sebelas/charge", "ch-1", "ch-1", at, res)
	if err != nil {
		t.Fatal(err)
	}
	if a.ID() != b.ID() || !a.Time().Equal(at) || a.Subject() != "ch-1" || string(a.Data()) != string(b.Data()) {
		t.Errorf("replayed outcome differs: %v vs %v", a, b)
	}
	if c, _ := NewOutcome(TypeChargeDeclined, "/sebelas/charge", "ch-1", "ch-1", at, res); c.ID() == a.ID() {
		t.Error("another outcome type must get another id")
	}
}
