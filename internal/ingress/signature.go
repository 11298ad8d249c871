package ingress

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strconv"
	"time"
)

// The request headers of the signature scheme (docs/security.md). A
// marketplace sends the event payload (the JSON of events.ChargeRequested or
// events.RefundRequested) as the body and:
//
//	Sebelas-Marketplace: <marketplace id>
//	Sebelas-Event-Type:  dev.sebelas.charge.requested | dev.sebelas.refund.requested
//	Sebelas-Timestamp:   <unix seconds when signed>
//	Sebelas-Nonce:       <16..64 characters of A-Z a-z 0-9 _ -, fresh per request>
//	Sebelas-Signature:   v1=<lower-case hex HMAC-SHA256(secret, signed message)>
//
// The signed message is
//
//	"sebelas-v1\n" + marketplace + "\n" + event type + "\n" + timestamp + "\n" + nonce + "\n" + body
//
// so the signature binds who sends, what kind of request it is, when, which
// attempt, and the exact bytes of the body. None of the header fields can
// hold a newline (each is checked against its pattern first), so the fields
// cannot be shifted into one another. The nonce makes every attempt its own
// request even within one second: a marketplace that retries signs again
// with a new nonce (its business id keeps the retry idempotent), while a
// copy of a request already seen is a replay.
const (
	HeaderMarketplace = "Sebelas-Marketplace"
	HeaderEventType   = "Sebelas-Event-Type"
	HeaderTimestamp   = "Sebelas-Timestamp"
	HeaderNonce       = "Sebelas-Nonce"
	HeaderSignature   = "Sebelas-Signature"

	signatureVersion = "v1="
	messagePrefix    = "sebelas-v1\n"
	// timestampDigitsMax: unix seconds have 10 digits until the year 2286;
	// more is garbage, and the bound keeps ParseInt away from overflow.
	timestampDigitsMax = 12
	// eventTypeBytesMax bounds the type header (the longest sebelas type
	// is 33 bytes).
	eventTypeBytesMax = 64
	// nonceBytesMin/Max bound the nonce: 16 base64url characters are 96
	// random bits, so two attempts never meet by chance.
	nonceBytesMin = 16
	nonceBytesMax = 64
	// nonceRandomBytes is what SignRequest draws for a nonce (22
	// characters).
	nonceRandomBytes = 16
)

// signedRequest is the parsed signature headers.
type signedRequest struct {
	marketplace string
	eventType   string
	timestamp   int64 // unix seconds
	tsText      string
	nonce       string
	mac         [sha256.Size]byte
}

// message returns the bytes the signature is computed over.
func message(marketplace, eventType, timestamp, nonce string, body []byte) []byte {
	m := make([]byte, 0, len(messagePrefix)+len(marketplace)+len(eventType)+len(timestamp)+len(nonce)+4+len(body))
	m = append(m, messagePrefix...)
	m = append(m, marketplace...)
	m = append(m, '\n')
	m = append(m, eventType...)
	m = append(m, '\n')
	m = append(m, timestamp...)
	m = append(m, '\n')
	m = append(m, nonce...)
	m = append(m, '\n')
	return append(m, body...)
}

func mac(secret, msg []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write(msg)
	return h.Sum(nil)
}

// Sign returns the Sebelas-Signature value for a request (for marketplace
// clients, tests and the chaos run).
func Sign(secret []byte, marketplace, eventType string, timestamp int64, nonce string, body []byte) string {
	ts := strconv.FormatInt(timestamp, 10)
	return signatureVersion + hex.EncodeToString(mac(secret, message(marketplace, eventType, ts, nonce, body)))
}

// NewNonce returns a fresh random nonce.
func NewNonce() string {
	b := make([]byte, nonceRandomBytes)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// SignRequest sets the five signature headers on req for body, signed at
// now with a fresh nonce. The caller sets req's body to exactly these bytes.
func SignRequest(req *http.Request, secret []byte, marketplace, eventType string, now time.Time, body []byte) {
	ts, nonce := now.Unix(), NewNonce()
	req.Header.Set(HeaderMarketplace, marketplace)
	req.Header.Set(HeaderEventType, eventType)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(HeaderNonce, nonce)
	req.Header.Set(HeaderSignature, Sign(secret, marketplace, eventType, ts, nonce, body))
	req.Header.Set("Content-Type", "application/json")
}

// parseHeaders reads the signature headers. Each must appear exactly once
// and be well formed; anything else is a malformed request (400), decided
// before any key is looked at.
func parseHeaders(h http.Header) (signedRequest, string) {
	var r signedRequest
	one := func(name string) (string, bool) {
		v := h.Values(name)
		if len(v) != 1 {
			return "", false
		}
		return v[0], true
	}
	var ok bool
	if r.marketplace, ok = one(HeaderMarketplace); !ok || !idPattern.MatchString(r.marketplace) {
		return r, "bad_marketplace_header"
	}
	if r.eventType, ok = one(HeaderEventType); !ok || !eventTypeShape(r.eventType) {
		return r, "bad_event_type_header"
	}
	if r.tsText, ok = one(HeaderTimestamp); !ok || !digits(r.tsText, timestampDigitsMax) {
		return r, "bad_timestamp_header"
	}
	r.timestamp, _ = strconv.ParseInt(r.tsText, 10, 64) // digits only, at most 12: cannot fail
	if r.nonce, ok = one(HeaderNonce); !ok || !nonceShape(r.nonce) {
		return r, "bad_nonce_header"
	}
	sig, ok := one(HeaderSignature)
	if !ok || len(sig) != len(signatureVersion)+2*sha256.Size || sig[:len(signatureVersion)] != signatureVersion {
		return r, "bad_signature_header"
	}
	if _, err := hex.Decode(r.mac[:], []byte(sig[len(signatureVersion):])); err != nil {
		return r, "bad_signature_header"
	}
	return r, ""
}

// eventTypeShape accepts reverse-DNS-ish names: lower-case letters, digits,
// dots and hyphens. Whether the type is allowed is decided later (403).
func eventTypeShape(s string) bool {
	if s == "" || len(s) > eventTypeBytesMax {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// nonceShape accepts 16..64 characters of the base64url alphabet.
func nonceShape(s string) bool {
	if len(s) < nonceBytesMin || len(s) > nonceBytesMax {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func digits(s string, maxLen int) bool {
	if s == "" || len(s) > maxLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// verify returns the id of the key that signed r over body, or false. Every
// active key is tried, in constant time per key, so a rotation needs no key
// id on the wire and the answer's timing does not say which key was close.
func verify(m *Marketplace, r signedRequest, body []byte) (string, bool) {
	msg := message(r.marketplace, r.eventType, r.tsText, r.nonce, body)
	found := ""
	for _, k := range m.Keys {
		if hmac.Equal(mac(k.Secret, msg), r.mac[:]) && found == "" {
			found = k.ID
		}
	}
	return found, found != ""
}

// requestDigest identifies a request for the replay check: the SHA-256 of
// the signed message. An exact replay has the same digest whichever of the
// marketplace's keys signed it.
func requestDigest(r signedRequest, body []byte) string {
	sum := sha256.Sum256(message(r.marketplace, r.eventType, r.tsText, r.nonce, body))
	return hex.EncodeToString(sum[:])
}
