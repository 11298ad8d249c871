package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/sebelas/sebelas/events"
	"github.com/sebelas/sebelas/internal/devtools/router"
	"github.com/sebelas/sebelas/internal/devtools/stack"
	"github.com/sebelas/sebelas/internal/ledger"
	"github.com/sebelas/sebelas/internal/market"
	"github.com/sebelas/sebelas/internal/money"
	"github.com/sebelas/sebelas/internal/signing"
)

// Demo limits: the demo is a smoke show, not a load test (that is `burst`).
const (
	demoChargesMax     = 10_000
	demoWalletsPerMkt  = 10
	demoWaitTimeoutSec = 120
	demoMule           = "w-demo-mule"
	devInFlightMax     = 16
)

func runDev(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("dev", "[--addr 127.0.0.1:8080] [--charges 120] [--seed 1] [--no-demo] [--exit] [--fire NAME] [--accept-unsigned]")
	addr := fs.String("addr", "127.0.0.1:8080", "address of the local Broker ingress (POST CloudEvents here)")
	charges := fs.Int("charges", 120, fmt.Sprintf("charges in the demo burst (at most %d)", demoChargesMax))
	seed := fs.Uint64("seed", 1, "seed of the demo burst (same seed, same burst)")
	noDemo := fs.Bool("no-demo", false, "start the system without seeding wallets or sending the demo burst")
	exit := fs.Bool("exit", false, "stop after the demo instead of serving until Ctrl-C")
	fire := fs.String("fire", "", "fire this PingSource once right after start (e.g. settle-id)")
	verbose := fs.Bool("v", false, "log every function and delivery")
	acceptUnsigned := fs.Bool("accept-unsigned", false, "INSECURE, local only: fraud and refund accept charge, refund and top-up requests nobody signed (for posting them by hand or with `sebelas burst`)")
	// Every function checks what it emits against the schemas while
	// developing (production checks at the consumer only).
	events.SetValidateOutgoing(true)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *charges < 0 || *charges > demoChargesMax {
		return fmt.Errorf("--charges must be 0..%d", demoChargesMax)
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	start := time.Now()
	fmt.Fprintln(stdout, "sebelas dev: starting (DynamoDB Local is installed under .cache/ on first run)")
	env := map[string]string{"SEBELAS_FRAUD_BLOCKED_WALLETS": demoMule}
	if *acceptUnsigned {
		env[signing.EnvDevAcceptUnsigned] = "true"
		fmt.Fprintf(stdout, "INSECURE: --accept-unsigned: fraud and refund accept requests that neither the ingress nor the app gateway signed (%s=true); screened and reviewed events are still verified\n",
			signing.EnvDevAcceptUnsigned)
	}
	st, err := stack.Start(ctx, stack.Options{
		Endpoint:    os.Getenv("AWS_ENDPOINT_URL_DYNAMODB"),
		Table:       envOr("SEBELAS_TABLE", "sebelas"),
		IngressAddr: *addr,
		Logger:      log,
		Env:         env,
		// DynamoDB Local on a laptop serves a few hundred transactions a
		// second; more deliveries in flight only queue inside it and time out.
		Router: router.Options{MaxInFlight: devInFlightMax},
	})
	if err != nil {
		return err
	}
	defer func() {
		fmt.Fprintln(stdout, "sebelas dev: stopping")
		if err := st.Close(); err != nil {
			fmt.Fprintln(stdout, "sebelas dev: stop:", err)
		}
	}()
	fmt.Fprintf(stdout, "DynamoDB   %s (table %s)\n", st.Endpoint, st.Table)
	fmt.Fprintf(stdout, "Broker     %s  (POST CloudEvents, binary or structured)\n", st.IngressURL)
	if !*acceptUnsigned {
		fmt.Fprintf(stdout, "signing    fresh Ed25519 keys per role; requests must be signed by the ingress or app gateway (--accept-unsigned to post them by hand)\n")
	}
	var names []string
	for n := range st.Functions {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(stdout, "function   %-12s %s\n", n, st.Functions[n])
	}
	if len(st.NotBuilt) > 0 {
		fmt.Fprintf(stdout, "not built  %s (their events are retried, then dead-lettered)\n", strings.Join(st.NotBuilt, ", "))
	}
	if st.OperatorURL != "" {
		fmt.Fprintf(stdout, "operator   %s (top-up aggregator simulator: GET /sim/stats, PUT /sim/config)\n", st.OperatorURL)
	}
	fmt.Fprintf(stdout, "PingSources %s\n", strings.Join(st.Router.PingSources(), ", "))
	fmt.Fprintf(stdout, "ready in %s\n\n", time.Since(start).Round(time.Millisecond))
	if *fire != "" {
		if err := st.Router.FirePing(ctx, *fire); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "fired PingSource %s\n", *fire)
	}
	if !*noDemo {
		if err := demo(ctx, st, *charges, *seed, stdout); err != nil {
			return err
		}
	}
	if *exit {
		return nil
	}
	// Scheduled ticks start after the demo so that its Wait measures the
	// burst alone.
	st.Router.StartPings(ctx)
	fmt.Fprintln(stdout, "\nserving; Ctrl-C to stop")
	<-ctx.Done()
	return nil
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

type demoWallet struct {
	id  string
	cur money.Currency
}

// demo seeds wallets, sends a burst of marketplace charges through the
// Broker (fraud → charge) with duplicates, a conflict and a blocked wallet
// mixed in, waits for every delivery chain and prints what happened.
func demo(ctx context.Context, st *stack.Stack, n int, seed uint64, out io.Writer) error {
	rng := rand.New(rand.NewPCG(seed, seed^0x5eb3))
	run := time.Now().UTC().Format("150405")
	var wallets []demoWallet
	for _, m := range market.All() {
		for i := range demoWalletsPerMkt {
			w := demoWallet{fmt.Sprintf("w-demo-%s-%d", strings.ToLower(m.Code), i+1), m.Currency}
			amt := stack.DemoFunding(m.Currency)
			if _, err := st.Ledger.CashIn(ctx, "demo-seed-"+w.id, w.id, amt, "demo"); err != nil {
				return err
			}
			wallets = append(wallets, w)
		}
	}
	mule := demoWallet{demoMule, money.IDR}
	if _, err := st.Ledger.CashIn(ctx, "demo-seed-"+mule.id, mule.id, money.Amount{Minor: 5_000_000, Currency: money.IDR}, "demo"); err != nil {
		return err
	}
	wallets = append(wallets, mule)
	before, err := balances(ctx, st.Ledger, wallets)
	if err != nil {
		return err
	}

	merchants := []string{"m-flagship", "m-gadgets", "m-fashion", "m-grocer"}
	type sent struct {
		req events.ChargeRequested
		ev  cloudevents.Event
	}
	var burst []sent
	for i := range n {
		w := wallets[rng.IntN(len(wallets))]
		// Between 5% and 45% of the seed balance: some payers run dry.
		seedBal := before[w]
		amt := seedBal/20 + rng.Int64N(seedBal*2/5+1)
		if amt == 0 {
			amt = 1
		}
		merchant := merchants[0]
		if rng.IntN(2) == 0 { // the flagship store takes half
			merchant = merchants[1+rng.IntN(len(merchants)-1)]
		}
		req := events.ChargeRequested{
			ChargeID: fmt.Sprintf("demo-%s-%04d", run, i), Marketplace: "demo-mall", MerchantID: merchant,
			PayerWallet: w.id, Amount: amt, Currency: string(w.cur), DeviceID: fmt.Sprintf("dev-%d", rng.IntN(50)),
			Description: "11.11 flash deal", RequestedAt: time.Now().UTC(),
		}
		ev, err := events.NewEvent(events.TypeChargeRequested, "/marketplace/demo-mall", req)
		if err != nil {
			return err
		}
		burst = append(burst, sent{req, ev})
	}
	// At-least-once delivery: resend a few events as they were.
	dups := 0
	for i := 0; i < len(burst) && dups < 5; i += 7 {
		burst = append(burst, burst[i])
		dups++
	}
	// A marketplace bug: the same charge_id with another amount.
	conflicts := 0
	if len(burst) > 0 {
		c := burst[0].req
		c.Amount++
		ev, err := events.NewEvent(events.TypeChargeRequested, "/marketplace/demo-mall", c)
		if err != nil {
			return err
		}
		burst = append(burst, sent{c, ev})
		conflicts++
	}
	rng.Shuffle(len(burst), func(i, j int) { burst[i], burst[j] = burst[j], burst[i] })

	fmt.Fprintf(out, "demo: %d wallets seeded in %d currencies; sending %d charge.requested (%d redelivered duplicates, %d conflicting reuse of a charge_id, wallet %s blocked by fraud)\n",
		len(wallets), len(market.All()), len(burst), dups, conflicts, demoMule)
	t0 := time.Now()
	for _, s := range burst {
		// Signed as the marketplace ingress signs what it lets in.
		if err := st.PublishSigned(ctx, s.ev); err != nil {
			return err
		}
	}
	wctx, cancel := context.WithTimeout(ctx, demoWaitTimeoutSec*time.Second)
	defer cancel()
	if err := st.Router.Wait(wctx); err != nil {
		return fmt.Errorf("waiting for deliveries: %w", err)
	}
	elapsed := time.Since(t0)

	// Outcomes as stored: the ledger is the truth, not the replies.
	outcomes := map[string]int{}
	succeeded := map[money.Currency]int64{}
	seen := map[string]bool{}
	for _, s := range burst {
		if seen[s.req.ChargeID] {
			continue
		}
		seen[s.req.ChargeID] = true
		c, ok, err := st.Ledger.GetCharge(ctx, s.req.ChargeID)
		if err != nil {
			return err
		}
		switch {
		case !ok:
			outcomes["not processed"]++
		case c.Status == ledger.ChargeSucceeded:
			outcomes["succeeded"]++
			succeeded[money.Currency(c.Currency)] += c.Amount
		case c.Status == ledger.ChargeInReview:
			outcomes["held for fraud review"]++
		default:
			outcomes["declined: "+c.Reason]++
		}
	}
	after, err := balances(ctx, st.Ledger, wallets)
	if err != nil {
		return err
	}
	stats := st.Router.Stats()
	fmt.Fprintf(out, "\ndone in %s: %d events into the Broker, %d replies, %d deliveries, %d retries, %d dead letters\n",
		elapsed.Round(time.Millisecond), stats.Received, stats.Replies, stats.Delivered, stats.Retried, stats.DeadLettered)
	fmt.Fprintln(out, "\ncharges by outcome (distinct charge_ids, as stored):")
	keys := make([]string, 0, len(outcomes))
	for k := range outcomes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(out, "  %-28s %d\n", k, outcomes[k])
	}

	fmt.Fprintln(out, "\nbalances per currency (sum over demo wallets):")
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "currency\tbefore\tcharged\tafter\tconserved\t")
	conserved := true
	for _, m := range market.All() {
		var b, a int64
		for w, v := range before {
			if w.cur == m.Currency {
				b += v
				a += after[w]
			}
		}
		ok := b-succeeded[m.Currency] == a
		conserved = conserved && ok
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%v\t\n", m.Currency, fmtMinor(b, m.Currency), fmtMinor(succeeded[m.Currency], m.Currency), fmtMinor(a, m.Currency), ok)
	}
	_ = tw.Flush()
	if !conserved {
		return fmt.Errorf("money not conserved: see the table above")
	}
	fmt.Fprintln(out, "money conserved: before − charged = after in every currency")
	return nil
}

func fmtMinor(v int64, c money.Currency) string {
	return strings.TrimPrefix(money.Amount{Minor: v, Currency: c}.String(), string(c)+" ")
}

func balances(ctx context.Context, l *ledger.Store, ws []demoWallet) (map[demoWallet]int64, error) {
	m := make(map[demoWallet]int64, len(ws))
	for _, w := range ws {
		b, _, err := l.GetBalance(ctx, w.id, w.cur)
		if err != nil {
			return nil, err
		}
		m[w] = b.Balance
	}
	return m, nil
}
