package signing

import (
	"fmt"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
)

// DevKeys is a fresh key pair per role, for `sebelas dev`, the chaos run and
// tests: every run gets its own keys, so no key is ever committed.
type DevKeys struct {
	// Env holds every role's SEBELAS_SIGNING_KEY_<ROLE> and
	// SEBELAS_VERIFY_KEYS_<ROLE>. One process runs every function locally;
	// each still reads only the variables of what it signs and verifies.
	Env     map[string]string
	Signers map[Role]*Signer
}

// NewDevKeys makes one key pair per role.
func NewDevKeys() DevKeys {
	d := DevKeys{Env: map[string]string{}, Signers: map[Role]*Signer{}}
	for _, role := range Roles {
		private, public, err := NewKey(role, "dev-"+string(role))
		if err != nil {
			panic(err) // fixed ids of the right shape
		}
		s, err := ParseSigner(role, private)
		if err != nil {
			panic(err)
		}
		d.Signers[role] = s
		d.Env[EnvSigningKey(role)] = private
		d.Env[EnvVerifyKeys(role)] = public
	}
	return d
}

// Verifier checks every role's signatures.
func (d DevKeys) Verifier() *Verifier {
	byRole := map[Role]string{}
	for role, s := range d.Signers {
		byRole[role] = s.PublicKey()
	}
	v, err := NewVerifier(byRole)
	if err != nil {
		panic(err)
	}
	return v
}

// Sign signs ev as the role allowed to send its type, as that party would.
func (d DevKeys) Sign(ev *cloudevents.Event, now time.Time) error {
	role, ok := Senders[ev.Type()]
	if !ok {
		return fmt.Errorf("signing: nobody signs %.64s", ev.Type())
	}
	return d.Signers[role].Sign(ev, now)
}

// Impostor is what a compromised pod holding keyOf's private key can
// forge: a signer that claims role as, with as's key id. Every Verifier
// refuses its events for as's types (the signature does not match as's
// public key); tests and the chaos run use it to show that.
func (d DevKeys) Impostor(keyOf, as Role) *Signer {
	return &Signer{role: as, id: d.Signers[as].id, key: d.Signers[keyOf].key}
}
