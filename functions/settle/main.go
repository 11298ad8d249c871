// Command settle is the settle function: settlement.due (a PingSource tick
// per market zone, or an operator's re-run) in, settlement.completed out per
// merchant. All behaviour lives in internal/settle.
package main

import (
	"github.com/sebelas/sebelas/internal/function"
	"github.com/sebelas/sebelas/internal/settle"
)

func main() { function.Main("settle", settle.Build) }
