package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/sebelas/sebelas/internal/signing"
)

// runKeysNew prints a fresh Ed25519 key pair for one signing role: the
// private line goes into that role's Secret (only the pod that signs as the
// role mounts it), the public line into the verify keys of every pod that
// checks the role's events (docs/security.md).
func runKeysNew(_ context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("keys new", "--role ingress|app|fraud|review|session [--id ID]")
	role := fs.String("role", "", "the role the key signs as")
	id := fs.String("id", "", "key id (1..16 of a-z 0-9 -; default: random)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *role == "" || fs.NArg() != 0 {
		fs.Usage()
		return errors.New("--role is required")
	}
	private, public, err := signing.NewKey(signing.Role(*role), *id)
	if err != nil {
		return err
	}
	r := signing.Role(*role)
	fmt.Fprintf(stdout, "# private: only in the Secret of the pod that signs as %s\n%s=%s\n", r, signing.EnvSigningKey(r), private)
	fmt.Fprintf(stdout, "# public: in the verify keys of every pod that checks %s (two may be active while rotating)\n%s=%s\n",
		r, signing.EnvVerifyKeys(r), public)
	return nil
}
