package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/google/uuid"

	"github.com/sebelas/sebelas/events"
	"github.com/sebelas/sebelas/internal/fraud"
	"github.com/sebelas/sebelas/internal/fraud/fraudeval"
	"github.com/sebelas/sebelas/internal/signing"
)

// loadRules reads a rules file (bare or ConfigMap) or, for "", the built-in
// default rules.
func loadRules(path string) (*fraud.Ruleset, string, error) {
	if path == "" {
		rs, err := fraud.DefaultRules()
		return rs, fraudeval.RulesNameDefault, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, "", err
	}
	rs, err := fraud.ParseRules(data)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", path, err)
	}
	return rs, path, nil
}

func runFraudEval(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("fraud eval", "[--seed N] [--users N] [--days N] [--rules FILE] [--csv FILE --currency PHP] [--out FILE]")
	seed := fs.Uint64("seed", fraudeval.ReportSeed, "seed of the synthetic traffic (the same seed gives the same traffic)")
	users := fs.Int("users", fraudeval.DefaultConfig(0).UsersPerMarket, "ordinary wallets per market; fraud cases scale with it")
	days := fs.Int("days", fraudeval.DefaultConfig(0).Days, "days of traffic, starting 2026-11-09 UTC (11.11 is inside)")
	rulesPath := fs.String("rules", "", "rules file (the ConfigMap or its rules.yaml); default: the built-in rules")
	csvPath := fs.String("csv", "", "evaluate a labelled CSV in the PaySim layout instead of synthetic traffic")
	currency := fs.String("currency", "PHP", "currency of the CSV's amounts (major units)")
	out := fs.String("out", "", "write the Markdown report to this file instead of stdout")
	if err := fs.Parse(args); err != nil {
		return err
	}
	rs, rulesName, err := loadRules(*rulesPath)
	if err != nil {
		return err
	}
	var (
		report *fraudeval.Report
		buf    bytes.Buffer
	)
	if *csvPath != "" {
		f, err := os.Open(*csvPath)
		if err != nil {
			return err
		}
		defer f.Close()
		txns, err := fraudeval.ReadPaySim(f, *currency, fraudeval.PaySimStart)
		if err != nil {
			return err
		}
		if report, err = fraudeval.Run(ctx, fmt.Sprintf("PaySim-layout file %s, amounts in %s", *csvPath, *currency), txns, rs); err != nil {
			return err
		}
		fmt.Fprintf(&buf, "Rules: %s.\n", rulesName)
		report.WriteMarkdown(&buf, "amount")
	} else {
		cfg := fraudeval.DefaultConfig(*seed)
		cfg.UsersPerMarket, cfg.Days = *users, *days
		txns, err := fraudeval.Generate(cfg)
		if err != nil {
			return err
		}
		if report, err = fraudeval.Run(ctx, fraudeval.ReportSource(cfg), fraudeval.Slice(txns), rs); err != nil {
			return err
		}
		fraudeval.WriteDocument(&buf, report, cfg, rulesName)
	}
	timing := fmt.Sprintf("scoring time, in-memory store included: %.1f µs per payment (%d payments in %s)\n",
		report.ScoreNs/1000, report.Total.Payments, report.Elapsed.Round(time.Millisecond))
	if *out == "" {
		if _, err := stdout.Write(buf.Bytes()); err != nil {
			return err
		}
		_, err = io.WriteString(stdout, "\n"+timing)
		return err
	}
	if err := os.WriteFile(*out, buf.Bytes(), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "report written to %s: precision %.1f%%, recall %.1f%%, false-decline rate %.3f%%; %s",
		*out, 100*report.Total.Precision(), 100*report.Total.Recall(), 100*report.Total.FalseDeclineRate(), timing)
	return nil
}

func runFraudRulesCheck(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("fraud rules-check", "FILE")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("one rules file is required")
	}
	rs, _, err := loadRules(fs.Arg(0))
	if err != nil {
		var re *fraud.RuleError
		if errors.As(err, &re) {
			for _, p := range re.Problems {
				fmt.Fprintln(stdout, "  -", p)
			}
		}
		return err
	}
	fmt.Fprintf(stdout, "%s: version %s, %d rules: ok\n", fs.Arg(0), rs.Version, rs.Rules())
	return nil
}

// reviewBrokerDefault is the Broker ingress of `sebelas dev`.
const reviewBrokerDefault = "http://127.0.0.1:8080"

// reviewTimeoutMs bounds the POST to the Broker.
const reviewTimeoutMs = 10_000

func runFraudReview(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("fraud review", "--charge ID|--topup ID --approve|--reject --reviewer NAME [--note TEXT] [--broker URL]")
	chargeID := fs.String("charge", "", "id of the held charge")
	topupID := fs.String("topup", "", "id of the held top-up")
	approve := fs.Bool("approve", false, "approve: move the money")
	reject := fs.Bool("reject", false, "reject: decline the payment")
	reviewer := fs.String("reviewer", "", "who decides (required, kept with the payment)")
	note := fs.String("note", "", "why, for the audit trail")
	broker := fs.String("broker", reviewBrokerDefault, "Broker ingress URL")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if (*chargeID == "") == (*topupID == "") || *approve == *reject || *reviewer == "" {
		fs.Usage()
		return errors.New("exactly one of --charge/--topup, exactly one of --approve/--reject, and --reviewer are required")
	}
	// The reviewer role's own key: fraud's, the ingress's or any other
	// pod's key cannot sign a decision charge and topup accept.
	keys, err := signing.SignerFromEnv(signing.RoleReview, os.Getenv)
	if err != nil {
		return fmt.Errorf("review decisions are signed with the reviewers' key: %w", err)
	}
	decision := events.ReviewReject
	if *approve {
		decision = events.ReviewApprove
	}
	now := time.Now().UTC()
	var ev cloudevents.Event
	if *chargeID != "" {
		ev, err = events.NewEvent(events.TypeChargeReviewed, events.SourcePrefix+"review",
			events.ChargeReviewed{ChargeID: *chargeID, Decision: decision, Reviewer: *reviewer, Note: *note, DecidedAt: now})
	} else {
		ev, err = events.NewEvent(events.TypeTopupReviewed, events.SourcePrefix+"review",
			events.TopupReviewed{TopupID: *topupID, Decision: decision, Reviewer: *reviewer, Note: *note, DecidedAt: now})
	}
	if err != nil {
		return err
	}
	ev.SetID(uuid.NewString())
	if err := keys.Sign(&ev, now); err != nil {
		return err
	}
	body, err := ev.MarshalJSON()
	if err != nil {
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, reviewTimeoutMs*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(pctx, http.MethodPost, strings.TrimSuffix(*broker, "/")+"/", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", cloudevents.ApplicationCloudEventsJSON)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return fmt.Errorf("broker answered %s: %s", resp.Status, strings.TrimSpace(string(msg)))
	}
	fmt.Fprintf(stdout, "%s %s sent (%s)\n", ev.Type(), decision, ev.ID())
	return nil
}
