package signing

import "fmt"

// EnvRequireSigned names the switch that makes fraud and refund accept
// marketplace requests (charge.requested, refund.requested) only when the
// ingress signed them. On a cluster it is on (infra/knative), so a request
// posted straight onto the Broker by someone on the cluster network moves no
// money. `sebelas dev` and the tests publish unsigned marketplace requests
// straight to the local Broker and leave it off.
const EnvRequireSigned = "SEBELAS_REQUIRE_SIGNED_REQUESTS"

// RequireSignedFromEnv reads EnvRequireSigned: "true", "false" or unset
// (false). Anything else is a configuration error, so a typo cannot switch
// the check off silently.
func RequireSignedFromEnv(getenv func(string) string) (bool, error) {
	switch v := getenv(EnvRequireSigned); v {
	case "", "false":
		return false, nil
	case "true":
		return true, nil
	default:
		return false, fmt.Errorf("%s=%q: want true or false", EnvRequireSigned, v)
	}
}
