package session_test

import (
	"strings"
	"testing"
	"time"

	"github.com/sebelas/sebelas/internal/fault"
	"github.com/sebelas/sebelas/internal/session"
	"github.com/sebelas/sebelas/internal/signing"
)

var t0 = time.Date(2026, 11, 11, 8, 0, 0, 0, time.UTC)

func signer(t testing.TB, role signing.Role, id string) *signing.Signer {
	t.Helper()
	private, _, err := signing.NewKey(role, id)
	if err != nil {
		t.Fatal(err)
	}
	s, err := signing.ParseSigner(role, private)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func verifier(t testing.TB, keys ...*signing.Signer) *signing.Verifier {
	t.Helper()
	var pub []string
	for _, k := range keys {
		pub = append(pub, k.PublicKey())
	}
	v, err := signing.NewVerifier(map[signing.Role]string{signing.RoleSession: strings.Join(pub, ",")})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func mint(t testing.TB, s *signing.Signer, wallet string, at time.Time, ttl time.Duration) string {
	t.Helper()
	tok, err := session.Issue(s, wallet, at, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestVerify(t *testing.T) {
	cur, next, other := signer(t, signing.RoleSession, "s-cur"), signer(t, signing.RoleSession, "s-next"), signer(t, signing.RoleSession, "s-cur")
	v := verifier(t, cur, next)
	good := mint(t, cur, "w-ana", t0, 15*time.Minute)
	parts := strings.Split(good, ".")
	otherWallet := strings.Split(mint(t, cur, "w-bob", t0, 15*time.Minute), ".")
	tests := []struct {
		name   string
		token  string
		at     time.Time
		wallet string // "" = refused
		reason string
	}{
		{"current key", good, t0.Add(time.Minute), "w-ana", ""},
		{"next key (rotation: two active)", mint(t, next, "w-ana", t0, time.Hour), t0.Add(59 * time.Minute), "w-ana", ""},
		{"expired", good, t0.Add(15 * time.Minute), "", session.ReasonExpired},
		{"issued in the future", mint(t, cur, "w-ana", t0.Add(2*time.Minute), time.Minute), t0, "", session.ReasonExpired},
		{"same key id, another key", mint(t, other, "w-ana", t0, time.Minute), t0, "", session.ReasonInvalid},
		{"retired key id", mint(t, signer(t, signing.RoleSession, "s-old"), "w-ana", t0, time.Minute), t0, "", session.ReasonInvalid},
		{"claims swapped for another wallet's", strings.Join([]string{parts[0], parts[1], otherWallet[2], parts[3]}, "."), t0, "", session.ReasonInvalid},
		{"signature cut", strings.Join([]string{parts[0], parts[1], parts[2], parts[3][:8]}, "."), t0, "", session.ReasonInvalid},
		{"three fields", strings.Join(parts[:3], "."), t0, "", session.ReasonMalformed},
		{"other scheme", "s2" + good[2:], t0, "", session.ReasonMalformed},
		{"over 512 bytes", good + strings.Repeat("A", 512), t0, "", session.ReasonMalformed},
		{"empty", "", t0, "", session.ReasonMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := session.Verify(v, tt.token, tt.at)
			if tt.reason == "" {
				if err != nil || c.Wallet != tt.wallet {
					t.Fatalf("Verify = %+v, %v; want wallet %s", c, err, tt.wallet)
				}
				return
			}
			if got := fault.ReasonOf(err); got != tt.reason {
				t.Errorf("reason %q (%v), want %q", got, err, tt.reason)
			}
		})
	}
}

// TestEventKeysCannotMintSessions: a key of another role (the app
// gateway's own, fraud's) signs no session, and Issue refuses to try.
func TestEventKeysCannotMintSessions(t *testing.T) {
	session := signer(t, signing.RoleSession, "s-1")
	v := verifier(t, session)
	for _, role := range []signing.Role{signing.RoleApp, signing.RoleFraud, signing.RoleIngress} {
		if _, err := sessionIssue(signer(t, role, "s-1"), "w-ana"); err == nil {
			t.Errorf("Issue with a %s key: no error", role)
		}
	}
	_ = v
}

func sessionIssue(s *signing.Signer, wallet string) (string, error) {
	return session.Issue(s, wallet, t0, time.Minute)
}

func TestIssueLimits(t *testing.T) {
	s := signer(t, signing.RoleSession, "s-1")
	v := verifier(t, s)
	tok, err := session.Issue(s, "w-ana", t0, time.Duration(session.TTLMaxMs)*time.Millisecond)
	if err != nil {
		t.Fatalf("ttl of TTLMaxMs: %v", err)
	}
	if _, err := session.Verify(v, tok, t0); err != nil {
		t.Errorf("token of the longest lifetime refused: %v", err)
	}
	for name, ttl := range map[string]time.Duration{"over TTLMaxMs": time.Duration(session.TTLMaxMs+1000) * time.Millisecond, "zero": 0} {
		if _, err := session.Issue(s, "w-ana", t0, ttl); err == nil {
			t.Errorf("ttl %s accepted", name)
		}
	}
	if _, err := session.Issue(s, "w ana\n", t0, time.Minute); err == nil {
		t.Error("wallet id with a space and newline accepted")
	}
	if len(tok) > session.TokenBytesMax {
		t.Errorf("a token is %d bytes, over the %d read", len(tok), session.TokenBytesMax)
	}
}

// FuzzVerify: nothing but a token the session key signed, unchanged, is
// accepted, and only for the wallet it names.
func FuzzVerify(f *testing.F) {
	s := signer(f, signing.RoleSession, "s-1")
	v := verifier(f, s)
	good := mint(f, s, "w-ana", t0, time.Minute)
	f.Add(good)
	f.Add("s1.s-1.e30.AAAA")
	f.Add("")
	f.Fuzz(func(t *testing.T, token string) {
		c, err := session.Verify(v, token, t0)
		if err == nil && (token != good || c.Wallet != "w-ana") {
			t.Fatalf("accepted %q as %+v", token, c)
		}
	})
}
