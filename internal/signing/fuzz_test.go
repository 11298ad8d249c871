package signing

import (
	"strings"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
)

// fuzzSeed is a fixed test signing key (made-up seed bytes).
const fuzzSeed = "k1:" + "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"

// FuzzVerify posts arbitrary signature extensions and data at Verify, as
// anyone on the cluster network can. It must never panic, and must accept
// only an event the fraud key signed, unchanged, inside the age window.
func FuzzVerify(f *testing.F) {
	f.Add("v2:fraud:k1:1762819205:AAAA", []byte(`{"charge_id":"ch-1"}`), int64(0), false)
	f.Add("", []byte(`{}`), int64(0), true)
	f.Add("v2:fraud:k1:-1:"+strings.Repeat("A", 86), []byte(`{}`), int64(0), false)
	f.Add("v2:fraud:k1:99999999999999999:"+strings.Repeat("A", 86), []byte(`{}`), int64(0), false)
	f.Add("v2:review:zz:1:x", []byte(`[]`), int64(0), false)
	f.Add(strings.Repeat(":", 200), []byte(nil), int64(0), false)
	f.Add("", []byte(`{"a": 1}`), int64(-SignatureAgeMaxMs/1000-1), true)
	f.Add("", []byte(`{"a": 1}`), int64(clockSkewMaxMs/1000+2), true)
	s, err := ParseSigner(RoleFraud, fuzzSeed)
	if err != nil {
		f.Fatal(err)
	}
	v, err := NewVerifier(map[Role]string{RoleFraud: s.PublicKey()})
	if err != nil {
		f.Fatal(err)
	}
	now := time.Unix(1762819205, 0)
	f.Fuzz(func(t *testing.T, ext string, data []byte, signedOffsetS int64, sign bool) {
		ev := cloudevents.NewEvent()
		ev.SetID("ev-1")
		ev.SetSource("/sebelas/fraud")
		ev.SetType("dev.sebelas.charge.screened")
		ev.DataEncoded = data
		if sign {
			// Signed at now+offset (bounded so time stays representable).
			offset := max(-10*SignatureAgeMaxMs/1000, min(signedOffsetS, 10*SignatureAgeMaxMs/1000))
			if err := s.Sign(&ev, now.Add(time.Duration(offset)*time.Second)); err != nil {
				t.Fatal(err)
			}
			err := v.Verify(ev, now)
			inWindow := -offset*1000 <= SignatureAgeMaxMs && offset*1000 <= clockSkewMaxMs+1000
			if (err == nil) != inWindow {
				t.Fatalf("signed at now%+ds: Verify = %v, want accepted %v", offset, err, inWindow)
			}
			if len(data) > 0 {
				changed := ev.Clone()
				d := append([]byte(nil), data...)
				d[len(d)/2] ^= 0x20
				changed.DataEncoded = d
				// Flipping 0x20 never turns white space into white space,
				// so even compacted JSON differs.
				if err := v.Verify(changed, now); err == nil {
					t.Fatalf("accepted data changed after signing: %q -> %q", data, d)
				}
			}
			return
		}
		if ext != "" {
			ev.SetExtension(Extension, ext)
		}
		if err := v.Verify(ev, now); err == nil {
			t.Fatalf("accepted a signature not made by the key: %q", ext)
		}
	})
}

// FuzzParseKeys: any SEBELAS_VERIFY_KEYS_<ROLE> or SEBELAS_SIGNING_KEY_<ROLE>
// either fails or keeps the limits, and no error quotes key material.
func FuzzParseKeys(f *testing.F) {
	f.Add(fuzzSeed)
	f.Add(fuzzSeed + ",k2:" + strings.Repeat("B", 43))
	f.Add(fuzzSeed + ",k2:" + strings.Repeat("B", 43) + ",k3:" + strings.Repeat("C", 43))
	f.Add("k1:short")
	f.Add("K1:" + strings.Repeat("A", 43))
	f.Add(":,:,")
	f.Fuzz(func(t *testing.T, s string) {
		quotes := func(err error) {
			for _, part := range strings.Split(s, ",") {
				if _, key, ok := strings.Cut(part, ":"); ok && len(key) >= 16 && strings.Contains(err.Error(), key) {
					t.Fatalf("error quotes key material: %v", err)
				}
			}
		}
		if signer, err := ParseSigner(RoleFraud, s); err != nil {
			quotes(err)
		} else if checkKeyID(signer.KeyID()) != nil {
			t.Fatalf("signer key id %q accepted", signer.KeyID())
		}
		v, err := NewVerifier(map[Role]string{RoleReview: s})
		if err != nil {
			quotes(err)
			return
		}
		if n := len(v.keys[RoleReview]); n < 1 || n > KeysPerRoleMax {
			t.Fatalf("%d keys", n)
		}
		for id, key := range v.keys[RoleReview] {
			if checkKeyID(id) != nil || len(key) != 32 {
				t.Fatalf("key %q of %d bytes accepted", id, len(key))
			}
		}
	})
}
