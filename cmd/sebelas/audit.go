package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/sebelas/sebelas/internal/audit"
	"github.com/sebelas/sebelas/internal/table"
)

// auditSegmentsMax bounds the parallel scan: more would take a large share
// of the table's read capacity from the functions.
const auditSegmentsMax = 64

func runAudit(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("audit", "[--segments 4]")
	segments := fs.Int("segments", 4, fmt.Sprintf("parallel scan segments, 1..%d", auditSegmentsMax))
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *segments < 1 || *segments > auditSegmentsMax {
		return fmt.Errorf("--segments must be 1..%d", auditSegmentsMax)
	}
	tc, err := table.ConfigFromEnv(os.Getenv)
	if err != nil {
		return err
	}
	db, err := dynamoClient(ctx, tc)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "sebelas audit of table %s (scan with consistent reads; run it while nothing moves)\n\n", tc.Table)
	rep, err := audit.Run(ctx, db, tc.Table, audit.Options{Segments: int32(*segments)})
	if err != nil {
		return err
	}
	if err := rep.Write(stdout); err != nil {
		return err
	}
	if !rep.OK() {
		return fmt.Errorf("audit: %d violations", rep.ViolationsTotal)
	}
	return nil
}
