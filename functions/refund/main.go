// Command refund is the refund function: refund.requested in,
// refund.succeeded or refund.rejected out. All behaviour lives in
// internal/refund.
package main

import (
	"github.com/sebelas/sebelas/internal/function"
	"github.com/sebelas/sebelas/internal/refund"
)

func main() { function.Main("refund", refund.Build) }
