package fraud

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/google/go-cmp/cmp"

	"github.com/sebelas/sebelas/events"
	"github.com/sebelas/sebelas/internal/fault"
	"github.com/sebelas/sebelas/internal/money"
)

func testConfig() Config {
	return Config{
		Ceilings:       money.Limits{money.IDR: 10_000_000, money.PHP: 50_000_00},
		BlockedWallets: map[string]bool{"w-mule": true},
		BlockedDevices: map[string]bool{"dev-emulator-farm": true},
	}
}

func TestScore(t *testing.T) {
	tests := []struct {
		name string
		p    Payment
		want events.Screening
	}{
		{"clean", Payment{Wallet: "w-1", DeviceID: "d-1", Amount: 50_000, Currency: "IDR"},
			events.Screening{Score: 0, Decision: events.DecisionAllow, Reasons: []string{}}},
		{"at the ceiling is allowed but reviewed", Payment{Wallet: "w-1", Amount: 10_000_000, Currency: "IDR"},
			events.Screening{Score: reviewScoreMin, Decision: events.DecisionReview, Reasons: []string{ReasonNearCeiling}}},
		{"one unit above the ceiling", Payment{Wallet: "w-1", Amount: 10_000_001, Currency: "IDR"},
			events.Screening{Score: denyScoreMin, Decision: events.DecisionDeny, Reasons: []string{ReasonAboveCeiling}}},
		{"80% of the ceiling is not yet near", Payment{Wallet: "w-1", Amount: 8_000_000, Currency: "IDR"},
			events.Screening{Score: 0, Decision: events.DecisionAllow, Reasons: []string{}}},
		{"blocked wallet", Payment{Wallet: "w-mule", Amount: 1, Currency: "PHP"},
			events.Screening{Score: scoreMax, Decision: events.DecisionDeny, Reasons: []string{ReasonBlockedWallet}}},
		{"blocked device, score capped", Payment{Wallet: "w-mule", DeviceID: "dev-emulator-farm", Amount: 1, Currency: "PHP"},
			events.Screening{Score: scoreMax, Decision: events.DecisionDeny, Reasons: []string{ReasonBlockedWallet, ReasonBlockedDevice}}},
		{"currency without ceiling", Payment{Wallet: "w-1", Amount: 1 << 40, Currency: "THB"},
			events.Screening{Score: 0, Decision: events.DecisionAllow, Reasons: []string{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := testConfig().Score(tt.p)
			got.RulesVersion = ""
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Score (-want +got):\n%s", diff)
			}
		})
	}
}

func TestConfigFromEnv(t *testing.T) {
	env := map[string]string{
		"SEBELAS_FRAUD_CEILINGS":        "IDR=5000000",
		"SEBELAS_FRAUD_BLOCKED_WALLETS": "w-a, w-b",
	}
	c, err := ConfigFromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if c.Ceilings[money.IDR] != 5_000_000 || !c.BlockedWallets["w-b"] || len(c.BlockedDevices) != 0 {
		t.Errorf("config = %+v", c)
	}
	for _, bad := range []map[string]string{
		{"SEBELAS_FRAUD_CEILINGS": "USD=1"},
		{"SEBELAS_FRAUD_BLOCKED_WALLETS": "w-a,,w-b"},
	} {
		if _, err := ConfigFromEnv(func(k string) string { return bad[k] }); err == nil {
			t.Errorf("ConfigFromEnv(%v) = nil error", bad)
		}
	}
}

func TestHandleScreensCharge(t *testing.T) {
	h := &Handler{Config: testConfig()}
	req := events.ChargeRequested{ChargeID: "ch-1", Marketplace: "lazada", MerchantID: "m-1", PayerWallet: "w-mule",
		Amount: 100_00, Currency: "PHP", RequestedAt: time.Date(2026, 11, 11, 0, 0, 0, 0, time.UTC)}
	ev, err := events.NewEvent(events.TypeChargeRequested, "/marketplace/lazada", req)
	if err != nil {
		t.Fatal(err)
	}
	reply, err := h.Handle(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if reply.Type() != events.TypeChargeScreened {
		t.Fatalf("reply type %q", reply.Type())
	}
	var sc events.ChargeScreened
	if err := events.Decode(*reply, &sc); err != nil {
		t.Fatalf("reply does not validate: %v", err)
	}
	if diff := cmp.Diff(req, sc.Charge); diff != "" {
		t.Errorf("screened charge (-want +got):\n%s", diff)
	}
	if sc.Screening.Decision != events.DecisionDeny {
		t.Errorf("decision %q, want deny", sc.Screening.Decision)
	}
	// A redelivery yields the same reply id.
	again, err := h.Handle(context.Background(), ev)
	if err != nil || again.ID() != reply.ID() {
		t.Errorf("redelivery reply id %v, want %s (err %v)", again.ID(), reply.ID(), err)
	}
}

func TestHandleRejectsBadInput(t *testing.T) {
	h := &Handler{Config: testConfig()}
	for name, ev := range map[string]cloudevents.Event{
		"unexpected type": func() cloudevents.Event {
			e := cloudevents.NewEvent()
			e.SetID("1")
			e.SetSource("/x")
			e.SetType(events.TypeChargeSucceeded)
			_ = e.SetData(cloudevents.ApplicationJSON, json.RawMessage(`{}`))
			return e
		}(),
		"invalid payload": func() cloudevents.Event {
			e := cloudevents.NewEvent()
			e.SetID("1")
			e.SetSource("/x")
			e.SetType(events.TypeChargeRequested)
			_ = e.SetData(cloudevents.ApplicationJSON, json.RawMessage(`{"charge_id":"x"}`))
			return e
		}(),
	} {
		if _, err := h.Handle(context.Background(), ev); !fault.IsPermanent(err) {
			t.Errorf("%s: err = %v, want permanent", name, err)
		}
	}
}
