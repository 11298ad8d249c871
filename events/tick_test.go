package events

import (
	"testing"

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
