// Package signing proves which party produced an internal CloudEvent, so that
// a consumer moving money can refuse an event anyone else put on the Broker,
// and an event signed by a party that may not send its type.
//
// Every event type that moves money has exactly one sender role (Senders):
//
//	ingress  charge.requested, refund.requested  (a marketplace request it authenticated)
//	app      topup.requested                     (the app gateway, after a wallet session token)
//	fraud    charge.screened, topup.screened     (fraud's verdict)
//	review   charge.reviewed, topup.reviewed     (the risk team's review tool)
//
// Each role has its own Ed25519 key pair. A pod holds the private key of the
// role it signs as (Signer) and only the public keys of the roles it checks
// (Verifier). Ed25519 rather than an HMAC because a verifier then holds
// nothing that can sign: a compromised charge pod cannot mint a fraud
// verdict, a compromised fraud pod cannot mint a review approval, and the
// public keys need no secrecy at all. A Verifier accepts an event only when
// its signature is by a key of the role allowed to send that event's type.
//
// The signature covers the role, key id, a timestamp and the event's type,
// id, source and data, carried in one CloudEvent extension:
//
//	sebelassig: v2:<role>:<key id>:<unix seconds>:<base64url Ed25519 signature, no padding>
//
// It needs no cluster feature: it holds when the Broker is reachable by
// anyone on the cluster network, when a Trigger filter is misconfigured, and
// under `sebelas dev`.
//
// Keys come from the environment (Kubernetes Secrets and a ConfigMap on a
// cluster): SEBELAS_SIGNING_KEY_<ROLE> = "<id>:<base64 32-byte seed>" (the one
// private key a signer uses) and SEBELAS_VERIFY_KEYS_<ROLE> = "<id>:<base64
// public key>[,<id>:<base64 public key>]" (at most two active keys per role).
// Rotation: (1) add the new public key to the role's verify keys everywhere,
// (2) switch the signer to the new private key once step 1 is rolled out,
// (3) remove the old public key once no event signed with it can still be in
// flight (SignatureAgeMaxMs after step 2). `sebelas keys new --role <role>`
// prints a fresh pair.
package signing

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/sebelas/sebelas/events"
	"github.com/sebelas/sebelas/internal/fault"
)

// Role is a party allowed to sign some event types.
type Role string

// The roles, each with its own key pair.
const (
	RoleIngress Role = "ingress"
	RoleApp     Role = "app"
	RoleFraud   Role = "fraud"
	RoleReview  Role = "review"
	// RoleSession signs no event: it is the wallet operator's login
	// service, whose session tokens the app gateway checks (SignRaw,
	// VerifyRaw; internal/session).
	RoleSession Role = "session"
)

// Roles lists every role, in a fixed order.
var Roles = []Role{RoleIngress, RoleApp, RoleFraud, RoleReview, RoleSession}

// Senders maps each signed event type to the one role allowed to send it.
// A type not listed is never accepted by a Verifier.
var Senders = map[string]Role{
	events.TypeChargeRequested: RoleIngress,
	events.TypeRefundRequested: RoleIngress,
	events.TypeTopupRequested:  RoleApp,
	events.TypeChargeScreened:  RoleFraud,
	events.TypeTopupScreened:   RoleFraud,
	events.TypeChargeReviewed:  RoleReview,
	events.TypeTopupReviewed:   RoleReview,
}

// EnvSigningKey names the variable holding role's private key.
func EnvSigningKey(r Role) string { return "SEBELAS_SIGNING_KEY_" + strings.ToUpper(string(r)) }

// EnvVerifyKeys names the variable holding role's public keys.
func EnvVerifyKeys(r Role) string { return "SEBELAS_VERIFY_KEYS_" + strings.ToUpper(string(r)) }

// EnvRetired is the shared HMAC key of signature scheme v1. A pod that still
// has it set is refused at start, so a half-migrated deployment is noticed.
const EnvRetired = "SEBELAS_SIGNING_KEY"

// Extension is the CloudEvent extension carrying the signature. CloudEvents
// extension names are lower-case alphanumeric, at most 20 characters.
const Extension = "sebelassig"

// scheme versions the signed message layout; a new layout gets a new scheme.
const scheme = "v2"

// Limits.
const (
	// KeysPerRoleMax is two: the key in use and the one being rotated in
	// or out.
	KeysPerRoleMax = 2
	// keyIDBytesMax bounds a key id, which travels in every event.
	keyIDBytesMax = 16
	// keyTextBytesMax bounds one variable's text (two keys fit in 120).
	keyTextBytesMax = 512
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
	// extensionBytesMax bounds the extension value read from the wire:
	// scheme, role, id, 20 digits and 86 characters of signature fit.
	extensionBytesMax = 160
)

// Fault reasons of Verify: every one is permanent (400, dead-lettered): a
// forged or stale event must never be retried into success.
const (
	ReasonMissing    = "signature_missing"
	ReasonMalformed  = "signature_malformed"
	ReasonWrongRole  = "signature_wrong_role"
	ReasonUnknownKey = "signature_unknown_key"
	ReasonInvalid    = "signature_invalid"
	ReasonStale      = "signature_stale"
	ReasonNoKeys     = "signature_unverifiable"
)

// Signer signs events as one role with one private key. It is immutable and
// safe for concurrent use.
type Signer struct {
	role Role
	id   string
	key  ed25519.PrivateKey
}

// ParseSigner reads "<id>:<base64 32-byte Ed25519 seed>" as role's signing
// key. The error never quotes the key.
func ParseSigner(role Role, s string) (*Signer, error) {
	name := EnvSigningKey(role)
	if !knownRole(role) {
		return nil, fmt.Errorf("signing: unknown role %.16q", role)
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, fmt.Errorf("%s is empty: want <id>:<base64 Ed25519 seed> (sebelas keys new --role %s)", name, role)
	}
	if strings.Contains(s, ",") {
		return nil, fmt.Errorf("%s holds more than one key: a signer uses one; rotation happens in the verify keys", name)
	}
	id, seed, err := parseEntry(s, ed25519.SeedSize)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &Signer{role: role, id: id, key: ed25519.NewKeyFromSeed(seed)}, nil
}

// SignerFromEnv reads role's signing key. A missing variable is an error: a
// function that vouches for a payment must not start without its key.
func SignerFromEnv(role Role, getenv func(string) string) (*Signer, error) {
	if err := checkRetired(getenv); err != nil {
		return nil, err
	}
	return ParseSigner(role, getenv(EnvSigningKey(role)))
}

// Role is the role the signer signs as.
func (s *Signer) Role() Role { return s.role }

// KeyID is the id of the signer's key.
func (s *Signer) KeyID() string { return s.id }

// PublicKey is the signer's public key in the SEBELAS_VERIFY_KEYS format.
func (s *Signer) PublicKey() string {
	return s.id + ":" + base64.StdEncoding.EncodeToString(s.key.Public().(ed25519.PublicKey))
}

// Sign sets the signature extension on ev, dated now. It must be the last
// change to ev's type, id, source and data. A signer refuses a type its role
// may not send: that is a wiring bug, and an event no verifier would accept.
func (s *Signer) Sign(ev *cloudevents.Event, now time.Time) error {
	if s == nil {
		panic("signing: Sign on a nil Signer") // Build guarantees a signer
	}
	if Senders[ev.Type()] != s.role {
		return fmt.Errorf("signing: role %s may not sign %.64s", s.role, ev.Type())
	}
	unix := now.Unix()
	sig := ed25519.Sign(s.key, message(s.role, s.id, unix, ev))
	ev.SetExtension(Extension, scheme+":"+string(s.role)+":"+s.id+":"+strconv.FormatInt(unix, 10)+":"+base64.RawURLEncoding.EncodeToString(sig))
	return nil
}

// SignRaw signs msg, which is not an event (a session token), as the
// signer's role. The signed bytes are domain-separated from events', so no
// raw signature is ever a valid event signature or the reverse.
func (s *Signer) SignRaw(msg []byte) []byte {
	return ed25519.Sign(s.key, rawMessage(s.role, s.id, msg))
}

// VerifyRaw reports whether sig is role's key id's signature of msg.
func (v *Verifier) VerifyRaw(role Role, id string, msg, sig []byte) bool {
	if !v.Verifies(role) || len(sig) != ed25519.SignatureSize {
		return false
	}
	pub, ok := v.keys[role][id]
	return ok && ed25519.Verify(pub, rawMessage(role, id, msg), sig)
}

func rawMessage(role Role, id string, msg []byte) []byte {
	var b bytes.Buffer
	var n [8]byte
	for _, f := range [][]byte{[]byte("sebelas-raw-" + scheme), []byte(role), []byte(id), msg} {
		binary.BigEndian.PutUint64(n[:], uint64(len(f)))
		b.Write(n[:])
		b.Write(f)
	}
	return b.Bytes()
}

// Verifier checks signatures against the public keys of the roles it was
// given. It is immutable and safe for concurrent use.
type Verifier struct {
	keys map[Role]map[string]ed25519.PublicKey
}

// NewVerifier reads the public keys of each role given, in the
// SEBELAS_VERIFY_KEYS format. A role with no keys is an error: a verifier
// that could not check a sender's events would refuse them all.
func NewVerifier(byRole map[Role]string) (*Verifier, error) {
	v := &Verifier{keys: map[Role]map[string]ed25519.PublicKey{}}
	for _, role := range Roles {
		text, ok := byRole[role]
		if !ok {
			continue
		}
		keys, err := parsePublicKeys(EnvVerifyKeys(role), text)
		if err != nil {
			return nil, err
		}
		v.keys[role] = keys
	}
	for role := range byRole {
		if !knownRole(role) {
			return nil, fmt.Errorf("signing: unknown role %.16q", role)
		}
	}
	return v, nil
}

// VerifierFromEnv reads the public keys of roles, each required.
func VerifierFromEnv(getenv func(string) string, roles ...Role) (*Verifier, error) {
	if err := checkRetired(getenv); err != nil {
		return nil, err
	}
	byRole := map[Role]string{}
	for _, r := range roles {
		byRole[r] = getenv(EnvVerifyKeys(r))
	}
	return NewVerifier(byRole)
}

// Verifies reports whether v holds keys of role.
func (v *Verifier) Verifies(role Role) bool { return v != nil && len(v.keys[role]) > 0 }

// Verify checks ev's signature at time now: made by a key of the role
// allowed to send ev's type, unchanged, inside the age window. Every failure
// is a permanent fault with one of the Reason* reasons, naming nothing
// secret.
func (v *Verifier) Verify(ev cloudevents.Event, now time.Time) error {
	want, signed := Senders[ev.Type()]
	if !signed {
		return fault.Permanentf(ReasonNoKeys, "%.64s is not a signed event type", ev.Type())
	}
	if !v.Verifies(want) {
		return fault.Permanentf(ReasonNoKeys, "no %s keys configured: refusing %.64s", want, ev.Type())
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
	if len(parts) != 5 || parts[0] != scheme {
		return fault.Permanentf(ReasonMalformed, "%s: want %s:<role>:<key id>:<unix seconds>:<signature>", Extension, scheme)
	}
	if Role(parts[1]) != want {
		return fault.Permanentf(ReasonWrongRole, "%.64s must be signed by %s, not %.16q", ev.Type(), want, parts[1])
	}
	id := parts[2]
	pub, known := v.keys[want][id]
	if !known {
		return fault.Permanentf(ReasonUnknownKey, "%s: key id %.16q is not one of the %s keys", Extension, id, want)
	}
	unix, err := strconv.ParseInt(parts[3], 10, 64)
	if err != nil {
		return fault.Permanentf(ReasonMalformed, "%s: timestamp is not an integer", Extension)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[4])
	if err != nil || len(sig) != ed25519.SignatureSize {
		return fault.Permanentf(ReasonMalformed, "%s: signature is not %d bytes of base64url", Extension, ed25519.SignatureSize)
	}
	// The signature is checked before the age, so a stale verdict is only
	// ever given for an event the role really signed.
	if !ed25519.Verify(pub, message(want, id, unix, &ev), sig) {
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

// message is what a signature covers. Each field is length-prefixed so
// that no shift of bytes between fields gives the same input. The data is
// compacted JSON when it is JSON, so that a transport re-indenting a
// structured-mode envelope does not break the signature.
func message(role Role, id string, unix int64, ev *cloudevents.Event) []byte {
	data := ev.Data()
	var b bytes.Buffer
	b.Grow(len(data) + 256)
	var n [8]byte
	field := func(s []byte) {
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		b.Write(n[:])
		b.Write(s)
	}
	field([]byte("sebelas-event-" + scheme))
	field([]byte(role))
	field([]byte(id))
	binary.BigEndian.PutUint64(n[:], uint64(unix))
	b.Write(n[:])
	field([]byte(ev.Type()))
	field([]byte(ev.ID()))
	field([]byte(ev.Source()))
	var compact bytes.Buffer
	compact.Grow(len(data))
	if err := json.Compact(&compact, data); err == nil {
		data = compact.Bytes()
	}
	field(data)
	return b.Bytes()
}

func knownRole(r Role) bool {
	for _, known := range Roles {
		if r == known {
			return true
		}
	}
	return false
}

func checkRetired(getenv func(string) string) error {
	if getenv(EnvRetired) != "" {
		return fmt.Errorf("%s (one shared HMAC key) is retired: set %s for what the pod signs and %s for what it verifies (docs/security.md)",
			EnvRetired, EnvSigningKey("<ROLE>"), EnvVerifyKeys("<ROLE>"))
	}
	return nil
}

// parsePublicKeys reads "<id>:<base64 public key>[,<id>:<base64 public key>]".
func parsePublicKeys(name, s string) (map[string]ed25519.PublicKey, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, fmt.Errorf("%s is empty: want <id>:<base64 Ed25519 public key>[,<id>:<base64 public key>]", name)
	}
	if len(s) > keyTextBytesMax {
		return nil, fmt.Errorf("%s is %d bytes, at most %d", name, len(s), keyTextBytesMax)
	}
	entries := strings.Split(s, ",")
	if len(entries) > KeysPerRoleMax {
		return nil, fmt.Errorf("%s has %d keys, at most %d (the key in use and one being rotated)", name, len(entries), KeysPerRoleMax)
	}
	keys := map[string]ed25519.PublicKey{}
	for i, entry := range entries {
		id, key, err := parseEntry(strings.TrimSpace(entry), ed25519.PublicKeySize)
		if err != nil {
			return nil, fmt.Errorf("%s entry %d: %w", name, i+1, err)
		}
		if _, dup := keys[id]; dup {
			return nil, fmt.Errorf("%s: key id %q given twice", name, id)
		}
		keys[id] = ed25519.PublicKey(key)
	}
	return keys, nil
}

// parseEntry reads "<id>:<base64 of size bytes>". Key ids are 1 to 16
// characters of [a-z0-9-]; keys are standard or URL base64, padded or not.
func parseEntry(entry string, size int) (string, []byte, error) {
	if len(entry) > keyTextBytesMax {
		return "", nil, fmt.Errorf("entry is %d bytes, at most %d", len(entry), keyTextBytesMax)
	}
	id, encoded, ok := strings.Cut(entry, ":")
	if !ok {
		return "", nil, errors.New("want <id>:<base64 key>")
	}
	if err := checkKeyID(id); err != nil {
		return "", nil, err
	}
	key, err := decodeKey(encoded)
	if err != nil {
		return "", nil, fmt.Errorf("key %q: not base64", id)
	}
	if len(key) != size {
		return "", nil, fmt.Errorf("key %q is %d bytes, want %d", id, len(key), size)
	}
	return id, key, nil
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

// NewKey returns a fresh key pair for role: the private key in the
// SEBELAS_SIGNING_KEY_<ROLE> format and the public key in the
// SEBELAS_VERIFY_KEYS_<ROLE> format. An empty id gets a random one.
func NewKey(role Role, id string) (private, public string, err error) {
	if id == "" {
		var b [3]byte
		if _, err := rand.Read(b[:]); err != nil {
			panic(err) // crypto/rand does not fail on supported platforms
		}
		id = string(role[:1]) + "-" + hex.EncodeToString(b[:])
	}
	if err := checkKeyID(id); err != nil {
		return "", "", err
	}
	seed := make([]byte, ed25519.SeedSize)
	if _, err := rand.Read(seed); err != nil {
		panic(err)
	}
	s, err := ParseSigner(role, id+":"+base64.StdEncoding.EncodeToString(seed))
	if err != nil {
		return "", "", err
	}
	return id + ":" + base64.StdEncoding.EncodeToString(seed), s.PublicKey(), nil
}
