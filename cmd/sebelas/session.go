package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/sebelas/sebelas/internal/session"
	"github.com/sebelas/sebelas/internal/signing"
)

// runSessionMint prints a session token for one wallet, signed with the
// session role's private key from SEBELAS_SIGNING_KEY_SESSION: what the
// wallet operator's login service does after a sign-in, for local
// development and tests against `sebelas dev`'s app gateway.
func runSessionMint(_ context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("session mint", "--wallet ID [--ttl 15m]")
	wallet := fs.String("wallet", "", "the wallet the session is bound to")
	ttl := fs.Duration("ttl", 15*time.Minute, "lifetime, at most 1h")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *wallet == "" || fs.NArg() != 0 {
		fs.Usage()
		return errors.New("--wallet is required")
	}
	s, err := signing.SignerFromEnv(signing.RoleSession, os.Getenv)
	if err != nil {
		return fmt.Errorf("%w (sebelas keys new --role session)", err)
	}
	tok, err := session.Issue(s, *wallet, time.Now(), *ttl)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	return nil
}
