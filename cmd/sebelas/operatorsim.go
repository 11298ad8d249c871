package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/sebelas/sebelas/internal/operator"
	"github.com/sebelas/sebelas/internal/topup"
)

// operatorSimShutdownMs bounds the drain of in-flight calls on Ctrl-C.
const operatorSimShutdownMs = 5_000

// runOperatorSim serves the simulated top-up aggregator API until Ctrl-C:
// what the topup function calls in dev and tests, with configurable latency,
// failures, lost answers, slow (pending) operators and outages. The
// behaviour can be changed while it runs with PUT /sim/config.
func runOperatorSim(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("operator-sim", "[--addr 127.0.0.1:8090] [--latency-ms 0] [--failure-rate 0.05] [--unknown-rate 0.02] [--outage telkomsel,xl] ...")
	addr := fs.String("addr", "127.0.0.1:8090", "listen address")
	var cfg operator.SimConfig
	fs.IntVar(&cfg.LatencyMs, "latency-ms", 0, "delay before every submit answer")
	fs.IntVar(&cfg.JitterMs, "jitter-ms", 0, "plus a uniform random 0..jitter-ms")
	fs.Float64Var(&cfg.FailureRate, "failure-rate", 0, "share of top-ups the operator rejects (0..1)")
	fs.Float64Var(&cfg.UnknownRate, "unknown-rate", 0, "share of submits whose answer is lost although the top-up was taken (0..1)")
	fs.Float64Var(&cfg.PendingRate, "pending-rate", 0, "share of top-ups answered pending first (0..1)")
	fs.IntVar(&cfg.ResolveMs, "resolve-ms", 30_000, "a pending top-up becomes final after this")
	outages := fs.String("outage", "", "comma-separated operator ids that are down (submits refused with 503)")
	fs.Uint64Var(&cfg.Seed, "seed", 1, "seed of the random draws")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *outages != "" {
		cfg.Outages = strings.Split(*outages, ",")
	}
	// The key comes from the environment, never from argv (ps shows argv).
	cfg.APIKey = os.Getenv(topup.EnvOperatorAPIKey)
	sim, err := operator.NewSimulator(cfg, nil)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stdout, "operator simulator on http://%s (POST /v1/topups, GET /v1/topups/{reference}, GET /v1/statements?from=&to=&format=csv|jsonl, GET /sim/stats, PUT /sim/config)\n", ln.Addr())
	fmt.Fprintf(stdout, "point topup at it: %s=http://%s\n", topup.EnvOperatorURL, ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), operatorSimShutdownMs*time.Millisecond)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	st := sim.Stats()
	fmt.Fprintf(stdout, "operator simulator: %d submits (%d delivered, %d rejected, %d answers lost), %d resubmits, %d refused, %d status queries\n",
		st.Submits, st.Delivered, st.Rejected, st.AnswersLost, st.Replays, st.Refused, st.StatusQueries)
	return nil
}
