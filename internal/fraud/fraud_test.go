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

// devKeys are this test run's keys of every role.
var devKeys = signing.NewDevKeys()

func testKeys(t testing.TB) signing.DevKeys {
	t.Helper()
	return devKeys
}

// newHandler is fraud with its own key, verifying requests against the
// ingress's and the app gateway's public keys of keys.
func newHandler(t testing.TB, keys signing.DevKeys) *Handler {
	t.Helper()
	requests, err := signing.NewVerifier(map[signing.Role]string{
		signing.RoleIngress: keys.Signers[signing.RoleIngress].PublicKey(),
		signing.RoleApp:     keys.Signers[signing.RoleApp].PublicKey(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return &Handler{
		Scorer:   &Scorer{Rules: StaticRules{testDefaultRules(t)}, Store: NewMemoryStore()},
		Signer:   keys.Signers[signing.RoleFraud],
		Requests: requests,
		Now:      func() time.Time { return t0 },
	}
}

// incoming is a request signed by the party allowed to send it (the
// ingress or the app gateway) of devKeys.
func incoming(t testing.TB, typ string, payload any, id string) cloudevents.Event {
	t.Helper()
	ev := unsigned(t, typ, payload, id)
	if err := devKeys.Sign(&ev, t0); err != nil {
		t.Fatal(err)
	}
	return ev
}

func unsigned(t testing.TB, typ string, payload any, id string) cloudevents.Event {
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
	if err := keys.Verifier().Verify(*reply, t0); err != nil {
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
	if err := keys.Verifier().Verify(*reply, t0); err != nil {
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
	keys := signing.NewDevKeys().Env
	with := func(kv ...string) map[string]string {
		env := map[string]string{}
		for k, v := range keys {
			env[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			env[kv[i]] = kv[i+1]
		}
		return env
	}
	without := func(name string) map[string]string {
		env := with()
		delete(env, name)
		return env
	}
	for _, tt := range []struct {
		name string
		env  map[string]string
		ok   bool
	}{
		{"default rules", with(), true},
		{"rules file", with(EnvRules, good), true},
		{"no signing key", without(signing.EnvSigningKey(signing.RoleFraud)), false},
		{"no ingress public key", without(signing.EnvVerifyKeys(signing.RoleIngress)), false},
		{"no app gateway public key", without(signing.EnvVerifyKeys(signing.RoleApp)), false},
		{"dev switch: no request keys needed", map[string]string{signing.EnvSigningKey(signing.RoleFraud): keys[signing.EnvSigningKey(signing.RoleFraud)],
			signing.EnvDevAcceptUnsigned: "true"}, true},
		{"retired opt-in switch off", with(signing.EnvRequireSignedRetired, "false"), false},
		{"retired shared key still set", with(signing.EnvRetired, "k:AAAA"), false},
		{"broken rules", with(EnvRules, bad), false},
		{"missing rules", with(EnvRules, filepath.Join(dir, "none.yaml")), false},
		{"emergency blocklist", with(EnvBlockedWallets, "w-mule, w-mule-2"), true},
		{"bad blocklist", with(EnvBlockedWallets, "w-mule,,"), false},
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
