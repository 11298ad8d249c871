package ingress

import (
	"bytes"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// fuzzSecret is a made-up test key.
var fuzzSecret = bytes.Repeat([]byte{0x5e}, 32)

func fuzzConfig(t testing.TB) *Config {
	c, err := ParseConfig([]byte("tokopedia k1 "+base64.StdEncoding.EncodeToString(fuzzSecret)), []byte("tokopedia m-toko-* m-flagship"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// FuzzRequest feeds arbitrary headers and bodies through everything the
// ingress does before storage: header parsing, authentication and
// authorisation. It must never panic, must answer only the statuses of the
// contract, and must accept a request only if it was signed with the key.
// With sign set, the fuzzer's body is signed properly, so the decoding of
// authenticated payloads is explored too, and flipping any one bit of the
// body must then fail the signature.
func FuzzRequest(f *testing.F) {
	const ts = "1762819205"
	charge := `{"charge_id":"ch-1","marketplace":"tokopedia","merchant_id":"m-flagship","payer_wallet":"w-ana","amount":125000,"currency":"IDR","requested_at":"2026-11-11T00:00:05Z"}`
	refund := `{"refund_id":"rf-1","charge_id":"ch-1","marketplace":"tokopedia","amount":5000,"reason":"damaged","requested_at":"2026-11-11T00:00:05Z"}`
	const nonce = "q3Vx9r2T8bYp0LmN4kZs1A"
	f.Add("tokopedia", "dev.sebelas.charge.requested", ts, nonce, "", []byte(charge), true)
	f.Add("tokopedia", "dev.sebelas.refund.requested", ts, nonce, "", []byte(refund), true)
	f.Add("tokopedia", "dev.sebelas.topup.requested", ts, nonce, "", []byte(`{}`), true)
	f.Add("tokopedia", "dev.sebelas.charge.requested", ts, nonce, "v1="+string(bytes.Repeat([]byte("0"), 64)), []byte(charge), false)
	f.Add("tokopedia\n", "dev.sebelas.charge.requested", ts, nonce, "v1=", []byte(charge), false)
	f.Add("tokopedia", "dev.sebelas.charge.requested", "99999999999999999999", nonce, "v1=", []byte(charge), false)
	f.Add("shopee", "x", "0", "short", "v1=ab", []byte{0xff, 0xfe}, true)
	f.Add("tokopedia", "dev.sebelas.charge.requested", "100000000000", nonce, "", []byte(charge), true)
	f.Add("tokopedia", "dev.sebelas.charge.requested", ts, nonce+"\n", "", []byte(`{"charge_id":"ch-1","marketplace":"lazada"}`), true)
	cfg := fuzzConfig(f)
	now := time.Unix(1762819205, 0)
	f.Fuzz(func(t *testing.T, marketplace, eventType, timestamp, nonce, signature string, body []byte, sign bool) {
		if sign {
			signature = Sign(fuzzSecret, marketplace, eventType, mustInt(timestamp), nonce, body)
		}
		h := http.Header{}
		h.Set(HeaderMarketplace, marketplace)
		h.Set(HeaderEventType, eventType)
		h.Set(HeaderTimestamp, timestamp)
		h.Set(HeaderNonce, nonce)
		h.Set(HeaderSignature, signature)
		sr, bad := parseHeaders(h)
		if bad != "" {
			return // a 400 before any key is used
		}
		if len(body) > BodyBytesMax {
			return // refused by size before this point
		}
		m, _, err := authenticate(cfg, sr, body, now)
		if err != nil {
			var rej *rejection
			if !errors.As(err, &rej) || rej.status != http.StatusUnauthorized {
				t.Fatalf("authenticate: %v, want a 401 rejection", err)
			}
			return
		}
		// Authenticated: only inside the window, only with the key, and
		// never once one bit changed.
		if sr.timestamp < now.Unix()-timestampAgeMaxMs/1000 || sr.timestamp > now.Unix()+timestampAheadMaxMs/1000 {
			t.Fatalf("accepted timestamp %d outside the window around %d", sr.timestamp, now.Unix())
		}
		if !bytes.Equal(fuzzSig(sr, body), sr.mac[:]) {
			t.Fatalf("accepted a signature the key did not make")
		}
		if len(body) > 0 {
			flipped := bytes.Clone(body)
			flipped[len(flipped)/2] ^= 1
			if _, _, err := authenticate(cfg, sr, flipped, now); err == nil {
				t.Fatalf("accepted a body changed after signing")
			}
		}
		payload, id, refundOf, err := authorize(m, sr.eventType, body)
		if err != nil {
			var rej *rejection
			if !errors.As(err, &rej) || (rej.status != http.StatusBadRequest && rej.status != http.StatusForbidden) {
				t.Fatalf("authorize: %v, want a 400 or 403 rejection", err)
			}
			return
		}
		if payload == nil || id == "" {
			t.Fatalf("authorize accepted without a payload and business id")
		}
		if sr.eventType == "dev.sebelas.refund.requested" && refundOf == "" {
			t.Fatalf("refund accepted without the charge to check")
		}
	})
}

func mustInt(s string) int64 {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0
	}
	return n
}

func fuzzSig(sr signedRequest, body []byte) []byte {
	return mac(fuzzSecret, message(sr.marketplace, sr.eventType, sr.tsText, sr.nonce, body))
}

// FuzzParseConfig: any Secret content either fails with an error or gives a
// configuration that keeps the limits: at most two keys per marketplace,
// secrets of 32..64 bytes, no empty merchant prefix, every marketplace with
// at least one merchant pattern.
func FuzzParseConfig(f *testing.F) {
	k := base64.StdEncoding.EncodeToString(fuzzSecret)
	f.Add([]byte("a k1 "+k), []byte("a m-*"))
	f.Add([]byte("a k1 "+k+"\na k2 "+k+"\na k3 "+k), []byte("a m-*"))
	f.Add([]byte("a k1 "+k+";b k1 "+k), []byte("a m-1;b *"))
	f.Add([]byte("# only a comment\n"), []byte(""))
	f.Add([]byte("a k1 "+k[:10]), []byte("a x"))
	f.Add([]byte("a\tk1\t"+k+"\r\n"), []byte("a\tm-1 m-2*\r\n"))
	f.Fuzz(func(t *testing.T, keys, merchants []byte) {
		c, err := ParseConfig(keys, merchants)
		if err != nil {
			return
		}
		for id, m := range c.Marketplaces {
			if !idPattern.MatchString(id) || id != m.ID {
				t.Fatalf("marketplace id %q", id)
			}
			if len(m.Keys) < 1 || len(m.Keys) > KeysPerMarketplaceMax {
				t.Fatalf("%s has %d keys", id, len(m.Keys))
			}
			for _, key := range m.Keys {
				if len(key.Secret) < secretBytesMin || len(key.Secret) > secretBytesMax {
					t.Fatalf("%s/%s secret of %d bytes", id, key.ID, len(key.Secret))
				}
			}
			if len(m.Exact)+len(m.Prefixes) == 0 {
				t.Fatalf("%s may act for nobody but was accepted", id)
			}
			for _, p := range m.Prefixes {
				if p == "" {
					t.Fatalf("%s has an empty prefix: any merchant", id)
				}
			}
		}
	})
}
