package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/sebelas/sebelas/internal/devtools/chaos"
)

func runChaos(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("chaos", "[--seed N] [--charges N] [--short] [--out FILE] [-v]")
	def := chaos.Full()
	seed := fs.Uint64("seed", 0, "seed of the workload and of every fault probability (0: from the clock; printed either way)")
	charges := fs.Int("charges", def.Charges, fmt.Sprintf("distinct charges in the workload (at most %d)", chaos.ChargesMax))
	short := fs.Bool("short", false, "the bounded form the tests run (fewer charges, one DynamoDB restart)")
	restarts := fs.Int("db-restarts", def.DBRestarts, "times DynamoDB Local is stopped and restarted under load")
	backoff := fs.Float64("backoff-scale", def.BackoffScale, "shrink the Broker's retry waits by this factor (1 = as on the cluster)")
	out := fs.String("out", "", "also write the report to this file")
	verbose := fs.Bool("v", false, "log every function and delivery to stderr")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o := def
	if *short {
		o = chaos.Short()
	} else {
		o.Charges, o.DBRestarts, o.BackoffScale = *charges, *restarts, *backoff
	}
	o.Seed = *seed
	if o.Seed == 0 {
		o.Seed = uint64(time.Now().UnixNano())
	}
	o.Progress = stdout
	if *verbose {
		o.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	rep, err := chaos.Run(ctx, o)
	if err != nil {
		return fmt.Errorf("chaos run with seed %d: %w", o.Seed, err)
	}
	fmt.Fprintln(stdout)
	rep.Print(stdout)
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			return err
		}
		rep.Print(f)
		if err := f.Close(); err != nil {
			return err
		}
	}
	if !rep.Passed() {
		return fmt.Errorf("chaos run with seed %d: invariants broken (see above)", o.Seed)
	}
	return nil
}
