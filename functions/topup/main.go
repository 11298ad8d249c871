// Command topup is the top-up function: topup.screened, topup.reviewed and
// the topup.reconcile tick in; topup.succeeded, topup.failed or
// topup.pending out. All behaviour lives in internal/topup.
package main

import (
	"github.com/sebelas/sebelas/internal/function"
	"github.com/sebelas/sebelas/internal/topup"
)

func main() { function.Main("topup", topup.Build) }
