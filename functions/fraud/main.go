// Command fraud is the fraud-scoring function: charge.requested and
// topup.requested in, charge.screened and topup.screened out. All behaviour
// lives in internal/fraud.
package main

import (
	"github.com/sebelas/sebelas/internal/fraud"
	"github.com/sebelas/sebelas/internal/function"
)

func main() { function.Main("fraud", fraud.Build) }
