package fraud

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/google/go-cmp/cmp"

	"github.com/sebelas/sebelas/events"
	"github.com/sebelas/sebelas/internal/fault"
	"github.com/sebelas/sebelas/internal/signing"
)

func testKeys(t testing.TB) *signing.Keyring {
	t.Helper()
	k, err := signing.ParseKeys(signing.NewDevKey())
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newHandler(t testing.TB, keys *signing.Keyring) *Handler {
	t.Helper()
	return &Handler{
		Scorer: &Scorer{Rules: StaticRules{testDefaultRules(t)}, Store: NewMemoryStore()},
		Keys:   keys,
		Now:    func() time.Time { return t0 },
	}
}

func incoming(t testing.TB, typ string, payload any, id string) cloudevents.Event {
	t.Helper()
	ev, err := events.NewEvent(typ, "/marketplace/tindahan", payload)
	if err != nil {
		t.Fatal(err)
	}
	ev.SetID(id)
	return ev
}

func TestHandleScreensChargeSigned(t *testing.T) {
	keys := testKeys(t)
	h := newHandler(t, keys)
	req := events.ChargeRequested{ChargeID: "ch-1", Marketplace: "tindahan", MerchantID: "m-1", PayerWallet: "w-1",
		Amount: 249900, Currency: "PHP", DeviceID: "dev-a", DeviceCountry: "PH", RequestedAt: t0}
	ev := incoming(t, events.TypeChargeRequested, req, "ev-1")
	reply, err := h.Handle(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if reply.Type() != events.TypeChargeScreened || reply.Source() != Source || reply.Subject() != "ch-1" {
		t.Fatalf("reply %s from %s about %s", reply.Type(), reply.Source(), reply.Subject())
	}
	if err := keys.Verify(*reply, t0); err != nil {
		t.Fatalf("reply signature: %v", err)
	}
	var sc events.ChargeScreened
	if err := events.Decode(*reply, &sc); err != nil {
		t.Fatalf("reply does not validate: %v", err)
	}
	if diff := cmp.Diff(req, sc.Charge); diff != "" {
		t.Errorf("screened charge (-want +got):\n%s", diff)
	}
	want := events.Screening{Score: 0, Decision: events.DecisionAllow, Reasons: []string{}, RulesVersion: testDefaultRules(t).Version}
	if diff := cmp.Diff(want, sc.Screening); diff != "" {
		t.Errorf("screening (-want +got):\n%s", diff)
	}
	// A redelivery yields the same reply id, and is not counted again.
	again, err := h.Handle(context.Background(), ev)
	if err != nil || again.ID() != reply.ID() {
		t.Fatalf("redelivery reply id %v, want %s (err %v)", again.ID(), reply.ID(), err)
	}
	o, _ := h.Scorer.Store.Observe(context.Background(), Payment{Kind: KindCharge, EventKey: "/x|2", Wallet: "w-1",
		Payee: "m-1", DeviceID: "dev-a", Amount: 1, Currency: "PHP", At: t0}, false)
	if o.Count1m != 2 {
		t.Errorf("after a payment and its redelivery, the next sees count_1m %d, want 2", o.Count1m)
	}
}

func TestHandleScreensTopup(t *testing.T) {
	keys := testKeys(t)
	h := newHandler(t, keys)
	req := events.TopupRequested{TopupID: "tu-1", PayerWallet: "w-1", MSISDN: "+63 917 123 4567", Amount: 10000,
		Currency: "PHP", DeviceID: "dev-a", RequestedAt: t0}
	reply, err := h.Handle(context.Background(), incoming(t, events.TypeTopupRequested, req, "ev-t1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := keys.Verify(*reply, t0); err != nil {
		t.Fatalf("reply signature: %v", err)
	}
	var sc events.TopupScreened
	if err := events.Decode(*reply, &sc); err != nil {
		t.Fatal(err)
	}
	if sc.Topup != req || sc.Screening.Decision != events.DecisionAllow {
		t.Errorf("topup.screened = %+v", sc)
	}
	// The phone number is a payee by its digits, however it is written.
	o, _ := h.Scorer.Store.Observe(context.Background(), Payment{Kind: KindTopup, EventKey: "/x|t2", Wallet: "w-1",
		Payee: msisdnDigits("+639171234567"), DeviceID: "dev-a", Amount: 1, Currency: "PHP", At: t0}, false)
	if o.NewPayee {
		t.Error("the same number written differently is a new payee")
	}
}

func TestHandleRejectsBadInput(t *testing.T) {
	h := newHandler(t, testKeys(t))
	raw := func(typ, data string) cloudevents.Event {
		e := cloudevents.NewEvent()
		e.SetID("1")
		e.SetSource("/x")
		e.SetType(typ)
		_ = e.SetData(cloudevents.ApplicationJSON, json.RawMessage(data))
		return e
	}
	for name, ev := range map[string]cloudevents.Event{
		"unexpected type":   raw(events.TypeChargeSucceeded, `{}`),
		"invalid payload":   raw(events.TypeChargeRequested, `{"charge_id":"x"}`),
		"screened as input": raw(events.TypeChargeScreened, `{}`),
	} {
		if _, err := h.Handle(context.Background(), ev); !fault.IsPermanent(err) {
			t.Errorf("%s: err = %v, want permanent", name, err)
		}
	}
}

// TestBuild: the function does not start without a signing key or with
// broken rules.
func TestBuild(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	writeFile(t, good, rulesDoc("v1", 100))
	bad := filepath.Join(dir, "bad.yaml")
	writeFile(t, bad, "rules: [")
	key := signing.NewDevKey()
	for _, tt := range []struct {
		name string
		env  map[string]string
		ok   bool
	}{
		{"default rules", map[string]string{signing.EnvKeys: key}, true},
		{"rules file", map[string]string{signing.EnvKeys: key, EnvRules: good}, true},
		{"no signing key", map[string]string{EnvRules: good}, false},
		{"broken rules", map[string]string{signing.EnvKeys: key, EnvRules: bad}, false},
		{"missing rules", map[string]string{signing.EnvKeys: key, EnvRules: filepath.Join(dir, "none.yaml")}, false},
		{"emergency blocklist", map[string]string{signing.EnvKeys: key, EnvBlockedWallets: "w-mule, w-mule-2"}, true},
		{"bad blocklist", map[string]string{signing.EnvKeys: key, EnvBlockedWallets: "w-mule,,"}, false},
	} {
		ctx, cancel := context.WithCancel(context.Background())
		_, err := Build(ctx, func(k string) string { return tt.env[k] }, nil)
		cancel()
		if (err == nil) != tt.ok {
			t.Errorf("%s: Build error %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}

// BenchmarkScorer is screening without DynamoDB: the in-memory store's
// counters plus the default rules.
func BenchmarkScorer(b *testing.B) {
	s := &Scorer{Rules: StaticRules{testDefaultRules(b)}, Store: NewMemoryStore()}
	ctx := context.Background()
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		p := Payment{Kind: KindCharge, EventKey: "/b|" + time.Duration(i).String(), Wallet: "w-1", Payee: "m-1", DeviceID: "dev-a",
			DeviceCountry: "PH", Amount: 50000, Currency: "PHP", At: t0.Add(time.Duration(i) * 7 * time.Second)}
		if _, _, err := s.Score(ctx, p); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkHandle is the whole handler without DynamoDB: decode, score,
// build and sign the reply.
func BenchmarkHandle(b *testing.B) {
	h := newHandler(b, testKeys(b))
	req := events.ChargeRequested{ChargeID: "ch-1", Marketplace: "tindahan", MerchantID: "m-1", PayerWallet: "w-1",
		Amount: 249900, Currency: "PHP", DeviceID: "dev-a", DeviceCountry: "PH", RequestedAt: t0}
	ev := incoming(b, events.TypeChargeRequested, req, "ev-1")
	if err := events.Warm(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.Handle(context.Background(), ev); err != nil {
			b.Fatal(err)
		}
	}
}
