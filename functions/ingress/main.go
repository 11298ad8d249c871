// Command ingress is the marketplaces' entry point: signed HTTP requests in,
// charge.requested and refund.requested onto the Broker. All behaviour lives
// in internal/ingress.
package main

import (
	"github.com/sebelas/sebelas/internal/function"
	"github.com/sebelas/sebelas/internal/ingress"
)

func main() { function.MainHTTP("ingress", ingress.Build) }
