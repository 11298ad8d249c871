// Package session is the wallet app's credential: a session token the
// wallet operator's login service issues after the user signed in, bound to
// one wallet, short-lived, signed with Ed25519 by the session role
// (internal/signing's RoleSession). The app gateway (internal/appgw) checks
// it before it lets a top-up onto the Broker; it holds only the session
// role's public keys, so a compromised gateway cannot mint sessions.
//
// A token is four dot-separated fields:
//
//	s1.<key id>.<base64url claims JSON>.<base64url Ed25519 signature>
//
// The claims are {"w": wallet id, "iat": unix s, "exp": unix s}. The
// signature is signing.Signer.SignRaw over the claims bytes exactly as sent
// (domain-separated from event signatures, so neither can stand for the
// other). Rotation is signing's: two active public keys per role; the login
// service switches to the new private key once every gateway has the new
// public key, and the old one is removed after TTLMaxMs.
package session

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/sebelas/sebelas/internal/fault"
	"github.com/sebelas/sebelas/internal/signing"
)

// Limits.
const (
	// TTLMaxMs is the longest a token may live: an hour, after which the
	// app refreshes it at the login service. It also bounds how long a
	// stolen token works and how long a retired key must stay verifiable.
	TTLMaxMs = 60 * 60 * 1000
	// TokenBytesMax bounds a token read from a header.
	TokenBytesMax = 512
	// clockSkewMaxMs is how far in the future a token may be issued.
	clockSkewMaxMs = 60 * 1000
	prefix         = "s1"
)

// Reasons of Verify's faults; all are 401 at the gateway.
const (
	ReasonMalformed = "session_malformed"
	ReasonInvalid   = "session_invalid" // unknown key or bad signature: one reason, no oracle
	ReasonExpired   = "session_expired"
)

// walletPattern is events' id shape.
var walletPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$`)

// Claims are what a valid token says.
type Claims struct {
	Wallet   string `json:"w"`
	IssuedAt int64  `json:"iat"`
	Expires  int64  `json:"exp"`
}

// Issue mints a token for wallet valid for ttl from now, signed by s (the
// session role). It is what the login service runs; `sebelas session
// mint` runs it for local development.
func Issue(s *signing.Signer, wallet string, now time.Time, ttl time.Duration) (string, error) {
	if s.Role() != signing.RoleSession {
		return "", fmt.Errorf("session: tokens are signed by the %s role, not %s", signing.RoleSession, s.Role())
	}
	if !walletPattern.MatchString(wallet) {
		return "", fmt.Errorf("session: wallet id must match %s", walletPattern)
	}
	if ttl <= 0 || ttl.Milliseconds() > TTLMaxMs {
		return "", fmt.Errorf("session: ttl %s outside (0, %d ms]", ttl, TTLMaxMs)
	}
	claims, err := json.Marshal(Claims{Wallet: wallet, IssuedAt: now.Unix(), Expires: now.Add(ttl).Unix()})
	if err != nil {
		return "", err
	}
	sig := s.SignRaw(claims)
	return prefix + "." + s.KeyID() + "." + base64.RawURLEncoding.EncodeToString(claims) + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

// Verify checks token at now against the session role's public keys in v
// and returns its claims. Every failure is a permanent fault naming nothing
// of the token.
func Verify(v *signing.Verifier, token string, now time.Time) (Claims, error) {
	if len(token) > TokenBytesMax {
		return Claims{}, fault.Permanentf(ReasonMalformed, "token over %d bytes", TokenBytesMax)
	}
	parts := strings.Split(token, ".")
	if len(parts) != 4 || parts[0] != prefix {
		return Claims{}, fault.Permanentf(ReasonMalformed, "want %s.<key id>.<claims>.<signature>", prefix)
	}
	claims, err1 := base64.RawURLEncoding.Strict().DecodeString(parts[2])
	sig, err2 := base64.RawURLEncoding.Strict().DecodeString(parts[3])
	if err1 != nil || err2 != nil {
		return Claims{}, fault.Permanentf(ReasonMalformed, "claims or signature not base64url")
	}
	if !v.VerifyRaw(signing.RoleSession, parts[1], claims, sig) {
		return Claims{}, fault.Permanentf(ReasonInvalid, "not signed by a session key")
	}
	var c Claims
	dec := json.NewDecoder(bytes.NewReader(claims))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil || dec.More() || !walletPattern.MatchString(c.Wallet) {
		// Signed but unreadable: the login service has a bug.
		return Claims{}, fault.Permanentf(ReasonMalformed, "claims do not decode")
	}
	nowMs := now.UnixMilli()
	switch {
	case c.Expires*1000 <= nowMs:
		return Claims{}, fault.Permanentf(ReasonExpired, "expired")
	case c.IssuedAt*1000 > nowMs+clockSkewMaxMs:
		return Claims{}, fault.Permanentf(ReasonExpired, "issued in the future")
	case (c.Expires-c.IssuedAt)*1000 > TTLMaxMs || c.Expires < c.IssuedAt:
		return Claims{}, fault.Permanentf(ReasonInvalid, "lifetime over %d ms", TTLMaxMs)
	}
	return c, nil
}
