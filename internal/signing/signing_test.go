package signing

import (
	"crypto/ed25519"
	"encoding/base64"
	"strconv"
	"strings"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/sebelas/sebelas/internal/fault"
)

var t0 = time.Date(2026, 11, 11, 0, 0, 30, 0, time.UTC)

// fixedSigner is role's signer from a seed of one repeated byte (made up).
func fixedSigner(t testing.TB, role Role, id string, b byte) *Signer {
	t.Helper()
	s, err := ParseSigner(role, id+":"+base64.StdEncoding.EncodeToString([]byte(strings.Repeat(string(b), ed25519.SeedSize))))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustVerifier(t testing.TB, byRole map[Role]string) *Verifier {
	t.Helper()
	v, err := NewVerifier(byRole)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func event() cloudevents.Event {
	ev := cloudevents.NewEvent()
	ev.SetID("ev-1")
	ev.SetSource("/sebelas/fraud")
	ev.SetType("dev.sebelas.charge.screened")
	ev.SetDataContentType(cloudevents.ApplicationJSON)
	ev.DataEncoded = []byte(`{"charge":{"charge_id":"c-1","amount":100},"screening":{"decision":"allow"}}`)
	return ev
}

func signed(t testing.TB, s *Signer, at time.Time) cloudevents.Event {
	t.Helper()
	ev := event()
	if err := s.Sign(&ev, at); err != nil {
		t.Fatal(err)
	}
	return ev
}

func TestParseKeys(t *testing.T) {
	fraudA := fixedSigner(t, RoleFraud, "a", 'A')
	fraudB := fixedSigner(t, RoleFraud, "b", 'B')
	v := mustVerifier(t, map[Role]string{RoleFraud: fraudA.PublicKey() + " , " + fraudB.PublicKey()})
	if len(v.keys[RoleFraud]) != 2 || !v.Verifies(RoleFraud) || v.Verifies(RoleReview) {
		t.Errorf("verifier keys %v", v.keys)
	}
	seed := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("A", 32)))
	pubA := strings.SplitN(fraudA.PublicKey(), ":", 2)[1]
	for name, bad := range map[string]string{
		"empty":          "",
		"no id":          pubA,
		"bad id":         "Key_1:" + pubA,
		"long id":        strings.Repeat("k", 17) + ":" + pubA,
		"short key":      "s:" + base64.StdEncoding.EncodeToString(make([]byte, 31)),
		"long key":       "s:" + base64.StdEncoding.EncodeToString(make([]byte, 33)),
		"not base64":     "a:***",
		"three keys":     fraudA.PublicKey() + "," + fraudB.PublicKey() + ",c:" + pubA,
		"id given twice": fraudA.PublicKey() + "," + fraudA.PublicKey(),
	} {
		if _, err := NewVerifier(map[Role]string{RoleFraud: bad}); err == nil {
			t.Errorf("verify keys %s: no error", name)
		}
		if _, err := ParseSigner(RoleFraud, strings.ReplaceAll(bad, pubA, seed)); err == nil {
			t.Errorf("signing key %s: no error", name)
		} else if strings.Contains(err.Error(), seed) {
			t.Errorf("signing key %s: error quotes the key: %v", name, err)
		}
	}
	if _, err := ParseSigner(RoleFraud, "a:"+seed+",b:"+seed); err == nil {
		t.Error("a signer with two keys: no error")
	}
	if _, err := ParseSigner("bank", "a:"+seed); err == nil {
		t.Error("unknown role: no error")
	}
	env := map[string]string{EnvRetired: "k:" + seed, EnvSigningKey(RoleFraud): "a:" + seed}
	if _, err := SignerFromEnv(RoleFraud, func(k string) string { return env[k] }); err == nil || !strings.Contains(err.Error(), EnvRetired) {
		t.Errorf("retired shared key still set: %v", err)
	}
	p1, _, err := NewKey(RoleReview, "")
	if err != nil {
		t.Fatal(err)
	}
	if p2, _, _ := NewKey(RoleReview, ""); p1 == p2 {
		t.Error("NewKey returned the same key twice")
	}
}

func TestVerify(t *testing.T) {
	fraud := fixedSigner(t, RoleFraud, "a", 'A')
	v := mustVerifier(t, map[Role]string{RoleFraud: fraud.PublicKey()})
	tests := []struct {
		name   string
		ev     func() cloudevents.Event
		at     time.Time
		reason string // "" means valid
	}{
		{"valid", func() cloudevents.Event { return signed(t, fraud, t0) }, t0, ""},
		{"valid after the Broker's retries", func() cloudevents.Event { return signed(t, fraud, t0) }, t0.Add(4 * time.Minute), ""},
		{"valid at the age limit", func() cloudevents.Event { return signed(t, fraud, t0) }, t0.Add(SignatureAgeMaxMs * time.Millisecond), ""},
		{"re-indented JSON data", func() cloudevents.Event {
			ev := signed(t, fraud, t0)
			ev.DataEncoded = []byte("{\n  \"charge\": {\"charge_id\": \"c-1\", \"amount\": 100},\n  \"screening\": {\"decision\": \"allow\"}\n}")
			return ev
		}, t0, ""},
		{"unsigned", event, t0, ReasonMissing},
		{"data changed", func() cloudevents.Event {
			ev := signed(t, fraud, t0)
			ev.DataEncoded = []byte(strings.Replace(string(ev.DataEncoded), `"allow"`, `"deny"`, 1))
			return ev
		}, t0, ReasonInvalid},
		{"amount changed", func() cloudevents.Event {
			ev := signed(t, fraud, t0)
			ev.DataEncoded = []byte(strings.Replace(string(ev.DataEncoded), `100`, `1000`, 1))
			return ev
		}, t0, ReasonInvalid},
		{"type changed to another fraud type", func() cloudevents.Event {
			ev := signed(t, fraud, t0)
			ev.SetType("dev.sebelas.topup.screened")
			return ev
		}, t0, ReasonInvalid},
		{"id changed", func() cloudevents.Event {
			ev := signed(t, fraud, t0)
			ev.SetID("ev-2")
			return ev
		}, t0, ReasonInvalid},
		{"source changed", func() cloudevents.Event {
			ev := signed(t, fraud, t0)
			ev.SetSource("/attacker")
			return ev
		}, t0, ReasonInvalid},
		{"timestamp changed to look fresh", func() cloudevents.Event {
			ev := signed(t, fraud, t0)
			parts := strings.Split(ev.Extensions()[Extension].(string), ":")
			parts[3] = "1893456000"
			ev.SetExtension(Extension, strings.Join(parts, ":"))
			return ev
		}, t0, ReasonInvalid},
		{"signed with a fraud key not configured", func() cloudevents.Event { return signed(t, fixedSigner(t, RoleFraud, "b", 'B'), t0) }, t0, ReasonUnknownKey},
		{"forger reuses our key id", func() cloudevents.Event { return signed(t, fixedSigner(t, RoleFraud, "a", 'B'), t0) }, t0, ReasonInvalid},
		{"stale", func() cloudevents.Event { return signed(t, fraud, t0) }, t0.Add(SignatureAgeMaxMs*time.Millisecond + time.Second), ReasonStale},
		{"from the future", func() cloudevents.Event { return signed(t, fraud, t0.Add(5*time.Minute)) }, t0, ReasonStale},
		{"garbage", func() cloudevents.Event {
			ev := event()
			ev.SetExtension(Extension, "v2:fraud:a:notanumber:xx")
			return ev
		}, t0, ReasonMalformed},
		{"scheme v1 (the shared HMAC)", func() cloudevents.Event {
			ev := event()
			ev.SetExtension(Extension, "v1:a:1762819205:"+strings.Repeat("A", 43))
			return ev
		}, t0, ReasonMalformed},
		{"truncated signature", func() cloudevents.Event {
			ev := signed(t, fraud, t0)
			v := ev.Extensions()[Extension].(string)
			ev.SetExtension(Extension, v[:len(v)-4])
			return ev
		}, t0, ReasonMalformed},
		{"role label changed", func() cloudevents.Event {
			ev := signed(t, fraud, t0)
			ev.SetExtension(Extension, strings.Replace(ev.Extensions()[Extension].(string), ":fraud:", ":review:", 1))
			return ev
		}, t0, ReasonWrongRole},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkReason(t, v.Verify(tt.ev(), tt.at), tt.reason)
		})
	}
}

func checkReason(t *testing.T, err error, reason string) {
	t.Helper()
	if reason == "" {
		if err != nil {
			t.Fatalf("Verify = %v, want nil", err)
		}
		return
	}
	if !fault.IsPermanent(err) || fault.ReasonOf(err) != reason {
		t.Fatalf("Verify = %v, want permanent %s", err, reason)
	}
}

// TestEachTypeOnlyFromItsRole: a verifier holding every role's public key
// accepts each signed type only from the role Senders names. Another role's
// key — even one the verifier trusts for other types — is refused, and so is
// a key of the right role id signed under another role's label.
func TestEachTypeOnlyFromItsRole(t *testing.T) {
	keys := NewDevKeys()
	v := keys.Verifier()
	for typ, want := range Senders {
		for _, role := range Roles {
			ev := event()
			ev.SetType(typ)
			s := keys.Signers[role]
			if role != want {
				if err := s.Sign(&ev, t0); err == nil {
					t.Errorf("%s signer signed %s", role, typ)
				}
				// A forger holding role's real key writes the extension
				// itself: under its own label, relabelled, and with the
				// right role's key id.
				for _, f := range []struct {
					label  Role
					id     string
					reason string
				}{
					{role, s.id, ReasonWrongRole},
					{want, s.id, ReasonUnknownKey},
					{want, keys.Signers[want].id, ReasonInvalid},
				} {
					ev := event()
					ev.SetType(typ)
					sig := ed25519.Sign(s.key, message(f.label, f.id, t0.Unix(), &ev))
					ev.SetExtension(Extension, scheme+":"+string(f.label)+":"+f.id+":"+strconv.FormatInt(t0.Unix(), 10)+":"+base64.RawURLEncoding.EncodeToString(sig))
					t.Run(typ+" by "+string(role)+" as "+string(f.label), func(t *testing.T) { checkReason(t, v.Verify(ev, t0), f.reason) })
				}
				continue
			}
			if err := s.Sign(&ev, t0); err != nil {
				t.Fatal(err)
			}
			t.Run(typ+" by "+string(role), func(t *testing.T) { checkReason(t, v.Verify(ev, t0), "") })
		}
	}
	// Unsigned types are never accepted, signed or not.
	tick := event()
	tick.SetType("dev.sebelas.settlement.due")
	checkReason(t, v.Verify(tick, t0), ReasonNoKeys)
	// A verifier without a role's keys refuses that role's events.
	onlyFraud := mustVerifier(t, map[Role]string{RoleFraud: keys.Signers[RoleFraud].PublicKey()})
	ev := event()
	ev.SetType("dev.sebelas.charge.reviewed")
	if err := keys.Sign(&ev, t0); err != nil {
		t.Fatal(err)
	}
	checkReason(t, onlyFraud.Verify(ev, t0), ReasonNoKeys)
	var none *Verifier
	checkReason(t, none.Verify(signed(t, keys.Signers[RoleFraud], t0), t0), ReasonNoKeys)
}

// TestRotation walks the three deploy steps of the package doc: at every
// step every verifier accepts what every signer signs.
func TestRotation(t *testing.T) {
	oldKey, newKey := fixedSigner(t, RoleFraud, "old", 'O'), fixedSigner(t, RoleFraud, "new", 'N')
	type deploy struct {
		signer *Signer
		verify string
	}
	steps := [][]deploy{
		{{oldKey, oldKey.PublicKey()}, {oldKey, oldKey.PublicKey() + "," + newKey.PublicKey()}},
		{{oldKey, oldKey.PublicKey() + "," + newKey.PublicKey()}, {newKey, oldKey.PublicKey() + "," + newKey.PublicKey()}},
		{{newKey, oldKey.PublicKey() + "," + newKey.PublicKey()}, {newKey, newKey.PublicKey()}},
	}
	for i, pods := range steps {
		for _, from := range pods {
			for _, to := range pods {
				ev := signed(t, from.signer, t0)
				if err := mustVerifier(t, map[Role]string{RoleFraud: to.verify}).Verify(ev, t0); err != nil {
					t.Errorf("step %d: signed by %s, verified with %s: %v", i+1, from.signer.KeyID(), to.verify[:3], err)
				}
			}
		}
	}
}

func TestAcceptUnsignedFromEnv(t *testing.T) {
	tests := []struct {
		env     map[string]string
		accept  bool
		wantErr bool
	}{
		{map[string]string{}, false, false},
		{map[string]string{EnvDevAcceptUnsigned: "false"}, false, false},
		{map[string]string{EnvDevAcceptUnsigned: "true"}, true, false},
		{map[string]string{EnvDevAcceptUnsigned: "yes"}, false, true},
		{map[string]string{EnvRequireSignedRetired: "true"}, false, false},
		{map[string]string{EnvRequireSignedRetired: "false"}, false, true},
	}
	for _, tt := range tests {
		accept, err := AcceptUnsignedFromEnv(func(k string) string { return tt.env[k] })
		if accept != tt.accept || (err != nil) != tt.wantErr {
			t.Errorf("%v: accept %v, err %v", tt.env, accept, err)
		}
	}
}

func BenchmarkSignVerify(b *testing.B) {
	s := fixedSigner(b, RoleFraud, "a", 'A')
	v := mustVerifier(b, map[Role]string{RoleFraud: s.PublicKey()})
	ev := event()
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Sign(&ev, t0); err != nil {
			b.Fatal(err)
		}
		if err := v.Verify(ev, t0); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSign and BenchmarkVerify split BenchmarkSignVerify: the cost a
// signer and a verifier each add per event (docs/security.md).
func BenchmarkSign(b *testing.B) {
	s := fixedSigner(b, RoleFraud, "a", 'A')
	ev := event()
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Sign(&ev, t0); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	s := fixedSigner(b, RoleFraud, "a", 'A')
	v := mustVerifier(b, map[Role]string{RoleFraud: s.PublicKey()})
	ev := event()
	if err := s.Sign(&ev, t0); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := v.Verify(ev, t0); err != nil {
			b.Fatal(err)
		}
	}
}
