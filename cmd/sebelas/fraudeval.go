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
	"github.com/sebelas/sebelas/internal/devtools/fraudeval"
	"github.com/sebelas/sebelas/internal/fraud"
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
	fs := newFlags("fraud eval", "[--seed N] [--rules FILE] [--csv FILE --currency PHP --warmup-steps N --festival DATE] [--out FILE]")
	seed := fs.Uint64("seed", 0, "added to every data set's seed (0: the figures of docs/fraud-eval.md)")
	rulesPath := fs.String("rules", "", "rules file (the ConfigMap or its rules.yaml); default: the built-in rules")
	csvPath := fs.String("csv", "", "evaluate a labelled CSV in the PaySim layout instead of the synthetic data sets")
	currency := fs.String("currency", "PHP", "currency of the CSV's amounts (major units)")
	warmup := fs.Int("warmup-steps", 0, "CSV steps 1..N build the profiles and are not counted")
	festival := fs.String("festival", "", "the CSV's festival day (YYYY-MM-DD, the market's zone), reported on its own")
	out := fs.String("out", "", "write the Markdown report to this file instead of stdout")
	if err := fs.Parse(args); err != nil {
		return err
	}
	rs, rulesName, err := loadRules(*rulesPath)
	if err != nil {
		return err
	}
	var (
		buf     bytes.Buffer
		summary string
	)
	start := time.Now()
	if *csvPath != "" {
		f, err := os.Open(*csvPath)
		if err != nil {
			return err
		}
		defer f.Close()
		txns, stats, err := fraudeval.ReadPaySim(f, fraudeval.PaySimOptions{Currency: *currency, WarmupSteps: *warmup, FestivalDate: *festival})
		if err != nil {
			return err
		}
		report, err := fraudeval.Run(ctx, fmt.Sprintf("PaySim-layout file %s", *csvPath), txns, rs)
		if err != nil {
			return err
		}
		fmt.Fprintf(&buf, "Rules: %s.\n\nRead %d rows, skipped %d; %s.\n\n", rulesName, stats.Rows, stats.Skipped, stats.Scale)
		for _, s := range stats.SkippedLines {
			fmt.Fprintf(&buf, "- line %d skipped: %s\n", s.Line, s.Reason)
		}
		if len(stats.SkippedLines) > 0 {
			fmt.Fprintln(&buf)
		}
		report.WriteSummary(&buf)
		report.WriteMarkdown(&buf, "amount")
		summary = report.Summary()
	} else {
		sets, err := fraudeval.Datasets(ctx, rs, *seed)
		if err != nil {
			return err
		}
		fraudeval.WriteDocument(&buf, sets, rulesName)
		summary = sets[1].Report.Summary() + " (second generator)"
	}
	timing := fmt.Sprintf("elapsed %s\n", time.Since(start).Round(time.Millisecond))
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
	fmt.Fprintf(stdout, "report written to %s: %s; %s", *out, summary, timing)
	return nil
}

func runFraudGenerate(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("fraud generate", "--out FILE [--seed N] [--market PH] [--users N] [--devices]")
	seed := fs.Uint64("seed", fraudeval.ReportSeedPaySim, "seed (the same seed gives the same file)")
	mkt := fs.String("market", "PH", "market (a CSV has one currency)")
	users := fs.Int("users", fraudeval.PaySimConfig(0).UsersPerMarket, "ordinary wallets; fraud cases scale with it")
	devices := fs.Bool("devices", false, "add the deviceId and deviceCountry columns")
	out := fs.String("out", "", "CSV file to write")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" {
		fs.Usage()
		return errors.New("--out is required")
	}
	cfg := fraudeval.PaySimConfig(*seed)
	cfg.Markets, cfg.UsersPerMarket = []string{*mkt}, *users
	txns, err := fraudeval.Generate2(cfg)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := fraudeval.WritePaySim(&buf, txns, fraudeval.PaySimFileStart(cfg), *devices); err != nil {
		return err
	}
	if err := os.WriteFile(*out, buf.Bytes(), 0o644); err != nil {
		return err
	}
	opt := fraudeval.PaySimFileOptions(cfg)
	fmt.Fprintf(stdout, "%d rows written to %s; evaluate with: sebelas fraud eval --csv %s --currency %s --warmup-steps %d --festival %s\n",
		len(txns), *out, *out, opt.Currency, opt.WarmupSteps, opt.FestivalDate)
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
