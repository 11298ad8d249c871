package signing

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/sebelas/sebelas/internal/fault"
)

var (
	keyA = "a:" + base64.StdEncoding.EncodeToString([]byte(strings.Repeat("A", 32)))
	keyB = "b:" + base64.StdEncoding.EncodeToString([]byte(strings.Repeat("B", 32)))
	t0   = time.Date(2026, 11, 11, 0, 0, 30, 0, time.UTC)
)

func mustKeys(t testing.TB, s string) *Keyring {
	t.Helper()
	k, err := ParseKeys(s)
	if err != nil {
		t.Fatal(err)
	}
	return k
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

func signed(t testing.TB, k *Keyring, at time.Time) cloudevents.Event {
	t.Helper()
	ev := event()
	if err := k.Sign(&ev, at); err != nil {
		t.Fatal(err)
	}
	return ev
}

func TestParseKeys(t *testing.T) {
	k := mustKeys(t, keyA+" , "+keyB)
	if k.SigningKeyID() != "a" || len(k.keys) != 2 {
		t.Errorf("signing id %q, %d keys", k.SigningKeyID(), len(k.keys))
	}
	short := "s:" + base64.StdEncoding.EncodeToString(make([]byte, 31))
	for name, bad := range map[string]string{
		"empty":          "",
		"no id":          base64.StdEncoding.EncodeToString(make([]byte, 32)),
		"bad id":         "Key_1:" + strings.SplitN(keyA, ":", 2)[1],
		"long id":        strings.Repeat("k", 17) + ":" + strings.SplitN(keyA, ":", 2)[1],
		"short key":      short,
		"not base64":     "a:***",
		"three keys":     keyA + "," + keyB + ",c:" + strings.SplitN(keyA, ":", 2)[1],
		"id given twice": keyA + "," + keyA,
	} {
		_, err := ParseKeys(bad)
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		if strings.Contains(err.Error(), strings.SplitN(keyA, ":", 2)[1]) {
			t.Errorf("%s: error quotes the key: %v", name, err)
		}
	}
	if _, err := ParseKeys(NewDevKey()); err != nil {
		t.Errorf("NewDevKey does not parse: %v", err)
	}
	if NewDevKey() == NewDevKey() {
		t.Error("NewDevKey returned the same key twice")
	}
}

func TestVerify(t *testing.T) {
	k := mustKeys(t, keyA)
	tests := []struct {
		name   string
		ev     func() cloudevents.Event
		at     time.Time
		reason string // "" means valid
	}{
		{"valid", func() cloudevents.Event { return signed(t, k, t0) }, t0, ""},
		{"valid after the Broker's retries", func() cloudevents.Event { return signed(t, k, t0) }, t0.Add(4 * time.Minute), ""},
		{"valid at the age limit", func() cloudevents.Event { return signed(t, k, t0) }, t0.Add(SignatureAgeMaxMs * time.Millisecond), ""},
		{"re-indented JSON data", func() cloudevents.Event {
			ev := signed(t, k, t0)
			ev.DataEncoded = []byte("{\n  \"charge\": {\"charge_id\": \"c-1\", \"amount\": 100},\n  \"screening\": {\"decision\": \"allow\"}\n}")
			return ev
		}, t0, ""},
		{"unsigned", event, t0, ReasonMissing},
		{"data changed", func() cloudevents.Event {
			ev := signed(t, k, t0)
			ev.DataEncoded = []byte(strings.Replace(string(ev.DataEncoded), `"allow"`, `"deny"`, 1))
			return ev
		}, t0, ReasonInvalid},
		{"amount changed", func() cloudevents.Event {
			ev := signed(t, k, t0)
			ev.DataEncoded = []byte(strings.Replace(string(ev.DataEncoded), `100`, `1000`, 1))
			return ev
		}, t0, ReasonInvalid},
		{"type changed", func() cloudevents.Event {
			ev := signed(t, k, t0)
			ev.SetType("dev.sebelas.topup.screened")
			return ev
		}, t0, ReasonInvalid},
		{"id changed", func() cloudevents.Event {
			ev := signed(t, k, t0)
			ev.SetID("ev-2")
			return ev
		}, t0, ReasonInvalid},
		{"source changed", func() cloudevents.Event {
			ev := signed(t, k, t0)
			ev.SetSource("/attacker")
			return ev
		}, t0, ReasonInvalid},
		{"timestamp changed to look fresh", func() cloudevents.Event {
			ev := signed(t, k, t0)
			v := ev.Extensions()[Extension].(string)
			parts := strings.Split(v, ":")
			parts[2] = "1893456000"
			ev.SetExtension(Extension, strings.Join(parts, ":"))
			return ev
		}, t0, ReasonInvalid},
		{"signed with a key not in the ring", func() cloudevents.Event { return signed(t, mustKeys(t, keyB), t0) }, t0, ReasonUnknownKey},
		{"forger reuses our key id", func() cloudevents.Event {
			forger := mustKeys(t, "a:"+strings.SplitN(keyB, ":", 2)[1])
			return signed(t, forger, t0)
		}, t0, ReasonInvalid},
		{"stale", func() cloudevents.Event { return signed(t, k, t0) }, t0.Add(SignatureAgeMaxMs*time.Millisecond + time.Second), ReasonStale},
		{"from the future", func() cloudevents.Event { return signed(t, k, t0.Add(5*time.Minute)) }, t0, ReasonStale},
		{"garbage", func() cloudevents.Event {
			ev := event()
			ev.SetExtension(Extension, "v1:a:notanumber:xx")
			return ev
		}, t0, ReasonMalformed},
		{"other scheme", func() cloudevents.Event {
			ev := signed(t, k, t0)
			ev.SetExtension(Extension, strings.Replace(ev.Extensions()[Extension].(string), "v1:", "v0:", 1))
			return ev
		}, t0, ReasonMalformed},
		{"truncated mac", func() cloudevents.Event {
			ev := signed(t, k, t0)
			v := ev.Extensions()[Extension].(string)
			ev.SetExtension(Extension, v[:len(v)-4])
			return ev
		}, t0, ReasonMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := k.Verify(tt.ev(), tt.at)
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("Verify = %v, want nil", err)
				}
				return
			}
			if !fault.IsPermanent(err) || fault.ReasonOf(err) != tt.reason {
				t.Fatalf("Verify = %v, want permanent %s", err, tt.reason)
			}
		})
	}
}

// TestRotation walks the three deploy steps of the package doc: at every
// step every function verifies what every other function signs.
func TestRotation(t *testing.T) {
	steps := [][]string{
		{keyA, keyA + "," + keyB},              // step 1 rolling out: some pods still on the old ring
		{keyA + "," + keyB, keyB + "," + keyA}, // step 2 rolling out
		{keyB + "," + keyA, keyB},              // step 3 rolling out, after old signatures aged out
	}
	for i, rings := range steps {
		for _, signer := range rings {
			for _, verifier := range rings {
				ev := signed(t, mustKeys(t, signer), t0)
				if err := mustKeys(t, verifier).Verify(ev, t0); err != nil {
					t.Errorf("step %d: signed by %.1s…, verified by %.1s…: %v", i+1, signer, verifier, err)
				}
			}
		}
	}
}

func TestNilKeyringRefuses(t *testing.T) {
	var k *Keyring
	if err := k.Verify(signed(t, mustKeys(t, keyA), t0), t0); fault.ReasonOf(err) != ReasonNoKeys || !fault.IsPermanent(err) {
		t.Errorf("nil Keyring Verify = %v", err)
	}
}

func BenchmarkSignVerify(b *testing.B) {
	k := mustKeys(b, keyA)
	ev := event()
	b.ReportAllocs()
	for b.Loop() {
		if err := k.Sign(&ev, t0); err != nil {
			b.Fatal(err)
		}
		if err := k.Verify(ev, t0); err != nil {
			b.Fatal(err)
		}
	}
}
