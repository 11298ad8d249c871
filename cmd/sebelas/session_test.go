package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/sebelas/sebelas/internal/session"
	"github.com/sebelas/sebelas/internal/signing"
)

// TestSessionMint runs `sebelas session mint` as built: the token it
// prints verifies against the session role's public key, for that wallet.
func TestSessionMint(t *testing.T) {
	bin := binary(t)
	private, public, err := signing.NewKey(signing.RoleSession, "s-1")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "session", "mint", "--wallet", "w-ana", "--ttl", "5m")
	cmd.Env = append(os.Environ(), signing.EnvSigningKey(signing.RoleSession)+"="+private)
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	v, err := signing.NewVerifier(map[signing.Role]string{signing.RoleSession: public})
	if err != nil {
		t.Fatal(err)
	}
	c, err := session.Verify(v, strings.TrimSpace(string(out)), time.Now())
	if err != nil || c.Wallet != "w-ana" {
		t.Errorf("minted token: %+v, %v", c, err)
	}
}
