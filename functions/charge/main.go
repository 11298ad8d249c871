// Command charge is the charge function: charge.screened in, charge.succeeded
// or charge.declined out. All behaviour lives in internal/charge.
package main

import (
	"github.com/sebelas/sebelas/internal/charge"
	"github.com/sebelas/sebelas/internal/function"
)

func main() { function.Main("charge", charge.Build) }
