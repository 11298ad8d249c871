// Command appgw is the wallet app's gateway for top-ups: a session token
// bound to the wallet in, topup.requested signed by the app role onto the
// Broker. All behaviour lives in internal/appgw.
package main

import (
	"github.com/sebelas/sebelas/internal/appgw"
	"github.com/sebelas/sebelas/internal/function"
)

func main() { function.MainHTTP("appgw", appgw.Build) }
