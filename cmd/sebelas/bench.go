package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sebelas/sebelas/internal/devtools/bench"
	"github.com/sebelas/sebelas/internal/devtools/ddblocal"
)

func runBench(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("bench", "[--concurrency 16] [--phase 12s] [--rounds 2] [--warmup 3s] [--seed 1] [--cold-runs 10] [--out docs/bench]")
	concurrency := fs.Int("concurrency", 16, fmt.Sprintf("workers in both phases (1..%d)", bench.ConcurrencyMax))
	phase := fs.Duration("phase", 12*time.Second, "length of one round of one phase")
	rounds := fs.Int("rounds", 2, "rounds; each runs (0) the bare charge transaction, (a) the raw ceiling, then (b) the full path")
	warmup := fs.Duration("warmup", 3*time.Second, "unrecorded warm-up of each phase")
	seed := fs.Uint64("seed", 1, "seed of the charges")
	coldRuns := fs.Int("cold-runs", 10, "starts of each function binary for the cold-start measurement (0: skip)")
	out := fs.String("out", "docs/bench", "directory of the report (relative to the repository root)")
	endpoint := fs.String("endpoint", "", "a running DynamoDB-compatible store (default: start DynamoDB Local)")
	warm := fs.Bool("warm", false, "prime fraud's features first: every payer's wallet and device already known (steady state), instead of every payer new")
	coldOnly := fs.Bool("cold-only", false, "only build and start the function binaries (cold starts, sizes) and simulate the autoscaler; print, write no report")
	pf := addProfileFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	p, err := pf.profile()
	if err != nil {
		return err
	}
	root, err := ddblocal.RepoRoot()
	if err != nil {
		return err
	}
	command := "go run ./cmd/sebelas bench " + strings.Join(args, " ")
	res, err := bench.Run(ctx, bench.Options{
		Root: root, Endpoint: *endpoint, Concurrency: *concurrency, PhaseDuration: *phase, Rounds: *rounds,
		Warmup: *warmup, Profile: p, Seed: *seed, ColdRuns: *coldRuns, ColdOnly: *coldOnly, Warm: *warm, Progress: stdout,
	})
	if res == nil {
		return err
	}
	if *coldOnly {
		fmt.Fprintf(stdout, "\n%s\n%s", bench.ColdTable(res.Cold), bench.AutoscaleTable(res.Autoscale))
		return err
	}
	dir := *out
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(root, dir)
	}
	if werr := bench.WriteReport(dir, res, strings.TrimSpace(command)); werr != nil {
		return werr
	}
	fmt.Fprintf(stdout, "\n(a) raw ceiling %.1f charges/s, (b) full path %.1f charges/s: %.0f%%; p99 %.1f ms and %.1f ms\nreport: %s\n",
		res.Raw.Throughput, res.Path.Throughput, 100*res.Ratio(), float64(res.Raw.Latency.P99)/1e6, float64(res.Path.Latency.P99)/1e6,
		filepath.Join(dir, bench.ReportFile))
	return err
}

func runBenchAutoscale(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("bench autoscale", "[--set charge.min-scale=20,...] [--multiplier 80] [--svg FILE] ...")
	svg := fs.String("svg", "", "also write the pods-over-time plot to this SVG file")
	set := fs.String("set", "", "try other settings: SERVICE.KEY=VALUE,... with KEY an autoscaling.knative.dev/ annotation (min-scale, target, scale-down-delay, ...) or containerConcurrency")
	cold := fs.Duration("cold-start", 60*time.Millisecond, "a function's own start to ready, added to the pod's start-up (sebelas bench measures it)")
	pf := addProfileFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	p, err := pf.profile()
	if err != nil {
		return err
	}
	root, err := ddblocal.RepoRoot()
	if err != nil {
		return err
	}
	over, err := bench.ParseOverrides(*set)
	if err != nil {
		return err
	}
	colds := map[string]time.Duration{}
	for _, n := range []string{"fraud", "charge", "refund", "topup"} {
		colds[n] = *cold
	}
	sims, err := bench.SimulateFestival(root, p, colds, over)
	if len(sims) == 0 {
		return err
	}
	from, to := p.DefaultWindow()
	fmt.Fprintf(stdout, "Knative autoscaler (KPA) simulated over %s..%s UTC with the settings of infra/knative, at the profile's real-world volume:\n\n",
		from.Format("15:04"), to.Format("15:04"))
	fmt.Fprint(stdout, bench.AutoscaleTable(sims))
	if *svg != "" {
		if werr := os.WriteFile(*svg, []byte(bench.AutoscaleSVG(p, sims)), 0o644); werr != nil {
			return werr
		}
		fmt.Fprintf(stdout, "\nplot: %s\n", *svg)
	}
	return err
}
