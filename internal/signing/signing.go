// Package signing proves that an internal CloudEvent was produced by a holder
// of the cluster's signing key, so that a consumer moving money can refuse an
// event anyone else put on the Broker. Fraud signs charge.screened and
// topup.screened; the risk team's review tool signs charge.reviewed and
// topup.reviewed; charge and topup verify before they move money.
//
// The signature is an HMAC-SHA256 over the event's type, id, source, a
// timestamp and its data, carried in one CloudEvent extension:
//
//	sebelassig: v1:<key id>:<unix seconds>:<base64url HMAC, no padding>
//
// It needs no cluster feature: it holds when the Broker is reachable by
// anyone on the cluster network, when a Trigger filter is misconfigured, and
// under `sebelas dev`.
//
// Keys come from SEBELAS_SIGNING_KEY (a Kubernetes Secret on a cluster):
// "<id>:<base64 key>[,<id>:<base64 key>]". The first key signs; every listed
// key verifies. Rotation with two active keys: (1) deploy "old,new" everywhere
// (sign old, accept both), (2) deploy "new,old" (sign new, accept both) once
// step 1 is rolled out, (3) deploy "new" once no event signed with old can
// still be in flight (SignatureAgeMaxMs after step 2).
package signing

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"sync"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/sebelas/sebelas/internal/fault"
)

// EnvKeys names the environment variable holding the key ring.
const EnvKeys = "SEBELAS_SIGNING_KEY"

// Extension is the CloudEvent extension carrying the signature. CloudEvents
// extension names are lower-case alphanumeric, at most 20 characters.
const Extension = "sebelassig"

// scheme versions the MAC input layout; a new layout gets a new scheme.
const scheme = "v1"

// Limits.
const (
	// keysMax is two: the signing key and the one being rotated in or out.
	keysMax = 2
	// keyBytesMin is HMAC-SHA256's block-independent security floor: a key
	// shorter than the hash output weakens the MAC.
	keyBytesMin = 32
	// keyBytesMax bounds a key: HMAC hashes longer keys down to 32 bytes
	// anyway, so more is only a configuration mistake.
	keyBytesMax = 64
	// keyIDBytesMax bounds a key id, which travels in every event.
	keyIDBytesMax = 16
	// SignatureAgeMaxMs is how old a signature may be when verified. An
	// event legitimately waits in the Broker for its Trigger's retries
	// (10 retries, exponential from 0.2 s: 3 min 25 s, infra/knative) plus
	// a cold start; 15 minutes covers that with room, and bounds how long a
	// captured event could be replayed (a replay is harmless to money —
	// handlers are idempotent on the business id — but it should not be
	// possible a day later).
	SignatureAgeMaxMs = 15 * 60 * 1000
	// clockSkewMaxMs is how far in the future a signature may be dated:
	// pods' clocks differ by milliseconds under NTP; a minute is generous.
	clockSkewMaxMs = 60 * 1000
	// extensionBytesMax bounds the extension value read from the wire.
	extensionBytesMax = 128
)

// Fault reasons of Verify: every one is permanent (400, dead-lettered): a
// forged or stale event must never be retried into success.
const (
	ReasonMissing    = "signature_missing"
	ReasonMalformed  = "signature_malformed"
	ReasonUnknownKey = "signature_unknown_key"
	ReasonInvalid    = "signature_invalid"
	ReasonStale      = "signature_stale"
	ReasonNoKeys     = "signature_unverifiable"
)

// Keyring holds the signing key and the keys accepted for verification. It
// is immutable and safe for concurrent use.
type Keyring struct {
	signID string
	keys   map[string][]byte
	// pool reuses HMAC states per key: one allocation less per event.
	pools map[string]*sync.Pool
}

// ParseKeys reads "<id>:<base64 key>[,<id>:<base64 key>]". Key ids are 1 to
// 16 characters of [a-z0-9-]; keys are standard or URL base64 (padded or
// not) of 32 to 64 bytes, as `openssl rand -base64 32` prints. The error
// never quotes a key.
func ParseKeys(s string) (*Keyring, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, fmt.Errorf("%s is empty: want <id>:<base64 key>[,<id>:<base64 key>]", EnvKeys)
	}
	entries := strings.Split(s, ",")
	if len(entries) > keysMax {
		return nil, fmt.Errorf("%s has %d keys, at most %d (the signing key and one being rotated)", EnvKeys, len(entries), keysMax)
	}
	k := &Keyring{keys: map[string][]byte{}, pools: map[string]*sync.Pool{}}
	for i, entry := range entries {
		id, encoded, ok := strings.Cut(strings.TrimSpace(entry), ":")
		if !ok {
			return nil, fmt.Errorf("%s entry %d: want <id>:<base64 key>", EnvKeys, i+1)
		}
		if err := checkKeyID(id); err != nil {
			return nil, fmt.Errorf("%s entry %d: %w", EnvKeys, i+1, err)
		}
		if _, dup := k.keys[id]; dup {
			return nil, fmt.Errorf("%s: key id %q given twice", EnvKeys, id)
		}
		key, err := decodeKey(encoded)
		if err != nil {
			return nil, fmt.Errorf("%s key %q: not base64", EnvKeys, id)
		}
		if len(key) < keyBytesMin || len(key) > keyBytesMax {
			return nil, fmt.Errorf("%s key %q is %d bytes, want %d..%d", EnvKeys, id, len(key), keyBytesMin, keyBytesMax)
		}
		k.keys[id] = key
		k.pools[id] = &sync.Pool{New: func() any { return hmac.New(sha256.New, key) }}
		if i == 0 {
			k.signID = id
		}
	}
	return k, nil
}

// FromEnv reads the key ring from SEBELAS_SIGNING_KEY. A missing variable is
// an error: a function that moves money or vouches for a payment must not
// start without it.
func FromEnv(getenv func(string) string) (*Keyring, error) {
	return ParseKeys(getenv(EnvKeys))
}

func checkKeyID(id string) error {
	if id == "" || len(id) > keyIDBytesMax {
		return fmt.Errorf("key id must be 1..%d characters", keyIDBytesMax)
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return fmt.Errorf("key id %.16q: only a-z, 0-9 and '-'", id)
		}
	}
	return nil
}

func decodeKey(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("not base64")
}

// NewDevKey returns a fresh random one-key ring in the SEBELAS_SIGNING_KEY
// format, for `sebelas dev` and tests: every run gets its own key, so no key
// is ever committed.
func NewDevKey() string {
	var key [keyBytesMin]byte
	var id [2]byte
	if _, err := rand.Read(key[:]); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	if _, err := rand.Read(id[:]); err != nil {
		panic(err)
	}
	return "dev-" + hex.EncodeToString(id[:]) + ":" + base64.StdEncoding.EncodeToString(key[:])
}

// SigningKeyID is the id of the key Sign uses.
func (k *Keyring) SigningKeyID() string { return k.signID }

// Sign sets the signature extension on ev, dated now. It must be the last
// change to ev's type, id, source and data.
func (k *Keyring) Sign(ev *cloudevents.Event, now time.Time) error {
	if k == nil {
		panic("signing: Sign on a nil Keyring") // Build guarantees a key ring
	}
	unix := now.Unix()
	mac := k.mac(k.signID, unix, ev)
	ev.SetExtension(Extension, scheme+":"+k.signID+":"+strconv.FormatInt(unix, 10)+":"+base64.RawURLEncoding.EncodeToString(mac))
	return nil
}

// Verify checks ev's signature at time now. Every failure is a permanent
// fault with one of the Reason* reasons, naming nothing secret.
func (k *Keyring) Verify(ev cloudevents.Event, now time.Time) error {
	if k == nil {
		return fault.Permanentf(ReasonNoKeys, "no signing keys configured: refusing %.64s", ev.Type())
	}
	raw, ok := ev.Extensions()[Extension]
	if !ok {
		return fault.Permanentf(ReasonMissing, "%.64s %.64s/%.64s carries no %s extension", ev.Type(), ev.Source(), ev.ID(), Extension)
	}
	value, ok := raw.(string)
	if !ok || len(value) > extensionBytesMax {
		return fault.Permanentf(ReasonMalformed, "%s is not a string of at most %d bytes", Extension, extensionBytesMax)
	}
	parts := strings.Split(value, ":")
	if len(parts) != 4 || parts[0] != scheme {
		return fault.Permanentf(ReasonMalformed, "%s: want %s:<key id>:<unix seconds>:<mac>", Extension, scheme)
	}
	id := parts[1]
	if _, known := k.keys[id]; !known {
		return fault.Permanentf(ReasonUnknownKey, "%s: key id %.16q is not in the key ring", Extension, id)
	}
	unix, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil {
		return fault.Permanentf(ReasonMalformed, "%s: timestamp is not an integer", Extension)
	}
	got, err := base64.RawURLEncoding.DecodeString(parts[3])
	if err != nil || len(got) != sha256.Size {
		return fault.Permanentf(ReasonMalformed, "%s: mac is not %d bytes of base64url", Extension, sha256.Size)
	}
	// The MAC is checked before the age, so a stale verdict is only ever
	// given for an event we signed ourselves.
	if !hmac.Equal(got, k.mac(id, unix, &ev)) {
		return fault.Permanentf(ReasonInvalid, "%.64s %.64s/%.64s: signature does not match", ev.Type(), ev.Source(), ev.ID())
	}
	ageMs := now.UnixMilli() - unix*1000
	if ageMs > SignatureAgeMaxMs {
		return fault.Permanentf(ReasonStale, "signed %d s ago, at most %d s", ageMs/1000, SignatureAgeMaxMs/1000)
	}
	if -ageMs > clockSkewMaxMs+1000 { // +1 s: the timestamp is truncated to seconds
		return fault.Permanentf(ReasonStale, "signed %d s in the future", -ageMs/1000)
	}
	return nil
}

// mac computes the HMAC of one event under key id. Each field is
// length-prefixed so that no shift of bytes between fields gives the same
// input. The data is compacted JSON when it is JSON, so that a transport
// re-indenting a structured-mode envelope does not break the signature.
func (k *Keyring) mac(id string, unix int64, ev *cloudevents.Event) []byte {
	pool := k.pools[id]
	h := pool.Get().(hash.Hash)
	defer pool.Put(h)
	h.Reset()
	var n [8]byte
	field := func(b []byte) {
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	field([]byte("sebelas-event-" + scheme))
	field([]byte(id))
	binary.BigEndian.PutUint64(n[:], uint64(unix))
	h.Write(n[:])
	field([]byte(ev.Type()))
	field([]byte(ev.ID()))
	field([]byte(ev.Source()))
	data := ev.Data()
	var compact bytes.Buffer
	compact.Grow(len(data))
	if err := json.Compact(&compact, data); err == nil {
		data = compact.Bytes()
	}
	field(data)
	return h.Sum(nil)
}
