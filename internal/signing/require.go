package signing

import "fmt"

// EnvDevAcceptUnsigned names the one switch that turns a verification off:
// "true" makes fraud and refund accept requests from outside
// (charge.requested, refund.requested, topup.requested) that the ingress or
// the app gateway did not sign. It exists for local development only (a
// developer posting events by hand to `sebelas dev`); unset, every
// verification is on, and a function started with it logs a warning at
// start. Screened and reviewed events are verified whatever it says.
const EnvDevAcceptUnsigned = "SEBELAS_DEV_ACCEPT_UNSIGNED_REQUESTS"

// EnvRequireSignedRetired is the opt-in switch of earlier releases, where
// unset meant "accept unsigned". It may still say "true" (what is now the
// default); anything else is refused so that nobody believes "false" works.
const EnvRequireSignedRetired = "SEBELAS_REQUIRE_SIGNED_REQUESTS"

// AcceptUnsignedFromEnv reads EnvDevAcceptUnsigned: unset or "false" (every
// request verified) or "true". Anything else is a configuration error, so a
// typo cannot switch the check off silently.
func AcceptUnsignedFromEnv(getenv func(string) string) (bool, error) {
	switch v := getenv(EnvRequireSignedRetired); v {
	case "", "true":
	default:
		return false, fmt.Errorf("%s=%q is retired: requests are always verified; %s=true turns that off for local development only",
			EnvRequireSignedRetired, v, EnvDevAcceptUnsigned)
	}
	switch v := getenv(EnvDevAcceptUnsigned); v {
	case "", "false":
		return false, nil
	case "true":
		return true, nil
	default:
		return false, fmt.Errorf("%s=%q: want true or false", EnvDevAcceptUnsigned, v)
	}
}

// RequestVerifierFromEnv is what fraud and refund read: the verifier of the
// request roles given (ingress, app), or nil with accept true when the
// development switch is on.
func RequestVerifierFromEnv(getenv func(string) string, roles ...Role) (v *Verifier, accept bool, err error) {
	if accept, err = AcceptUnsignedFromEnv(getenv); err != nil || accept {
		return nil, accept, err
	}
	v, err = VerifierFromEnv(getenv, roles...)
	return v, false, err
}
