package chaos

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// Print writes the report for people (and for docs/chaos.md: it is
// Markdown-friendly plain text).
func (r *Report) Print(w io.Writer) {
	o := r.Options
	fmt.Fprintf(w, "chaos run, seed %d, %s\n", r.Seed, r.Elapsed.Round(time.Millisecond))
	fmt.Fprintf(w, "options: %d charges and %d top-ups, %d wallets per currency, %d clients; dup %.0f%% (up to %d copies, up to %d ms late), reply lost %.0f%%, "+
		"crash after commit %.1f%%, random kill every %d ms (down %d ms), DynamoDB throttle %.0f%% / 500 before %.0f%% / 500 after %.0f%%, "+
		"%d DynamoDB Local restarts, operator timeout %d ms vs latency %d+%d ms, operator failure %.0f%% / answer lost %.0f%% / pending %.0f%%, "+
		"operators flapping every %d ms, Broker backoff x%g\n",
		o.Charges, o.Topups, o.WalletsPerCurrency, o.Workers, 100*o.DupProb, o.DupMax, o.LateMaxMs, 100*o.ReplyLostProb,
		100*o.CrashAfterCommitProb, o.CrashEveryMs, o.CrashDownMs, 100*o.DBThrottleProb, 100*o.DB500BeforeProb, 100*o.DB500AfterProb,
		o.DBRestarts, o.OperatorTimeoutMs, o.OperatorLatencyMs, o.OperatorJitterMs, 100*o.OperatorFailureRate, 100*o.OperatorUnknownRate,
		100*o.OperatorPendingRate, o.OperatorFlapMs, o.BackoffScale)

	var phases [][2]string
	for _, p := range r.Phases {
		phases = append(phases, [2]string{p.Name, p.Elapsed.Round(time.Millisecond).String()})
	}
	section(w, "phases", phases)
	section(w, "requests sent", intRows(r.Sent))
	fmt.Fprintf(w, "  %-60s %d\n", "HTTP requests to the ingress (retries included)", r.Attempts)
	section(w, "ingress answers counted at /metrics", int64Rows(r.IngressMetrics))
	if len(r.Replays) > 0 {
		section(w, "answers to verbatim replays", intRows(r.Replays))
	}
	section(w, "faults injected", int64Rows(r.Faults))
	if r.DBDown > 0 {
		fmt.Fprintf(w, "  %-60s %s\n", "DynamoDB Local down in total", r.DBDown.Round(time.Millisecond))
	}
	if r.Restarts > 0 {
		fmt.Fprintf(w, "  %-60s %s over %d restarts\n", "functions down in total (killed to serving again)", r.FunctionsDown.Round(time.Millisecond), r.Restarts)
	}
	section(w, "Broker", [][2]string{
		{"events accepted (published, replies, duplicates)", fmt.Sprint(r.Broker.Received)},
		{"deliveries answered 2xx", fmt.Sprint(r.Broker.Delivered)},
		{"retries", fmt.Sprint(r.Broker.Retried)},
		{"replies routed", fmt.Sprint(r.Broker.Replies)},
		{"dead-lettered", fmt.Sprint(r.Broker.DeadLettered)},
	})
	section(w, "charges by final outcome (distinct charge ids)", intRows(r.Charges))
	if len(r.Refunds) > 0 {
		section(w, "refunds by final outcome (distinct refund ids)", intRows(r.Refunds))
	}
	if len(r.Topups) > 0 {
		section(w, "top-ups by final outcome (distinct top-up ids)", intRows(r.Topups))
	}
	if op := r.Operator; op != nil {
		section(w, "top-up operator (simulated aggregator)", [][2]string{
			{"top-ups taken", fmt.Sprint(op.Submits)},
			{"submits of a reference already taken (retries)", fmt.Sprint(op.Replays)},
			{"refused (outage: flapping operators)", fmt.Sprint(op.Refused)},
			{"answers lost although taken (a timeout to the caller)", fmt.Sprint(op.AnswersLost)},
			{"delivered", fmt.Sprint(op.Delivered)},
			{"rejected by the operator", fmt.Sprint(op.Rejected)},
			{"status queries (reconcile)", fmt.Sprint(op.StatusQueries)},
		})
	}
	if len(r.DeadLetters) > 0 {
		section(w, "dead letters stored", intRows(r.DeadLetters))
	}
	fmt.Fprintln(w, "\nmoney (minor units):")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "  currency\tcash-in\tbalances\theld\tcharged\trefunded\ttopped up\tconserved\t")
	for _, c := range r.Money {
		fmt.Fprintf(tw, "  %s\t%d\t%d\t%d\t%d\t%d\t%d\t%v\t\n", c.Currency, c.CashIn, c.Balances, c.Held, c.Charged, c.Refunded, c.ToppedUp, c.Conserved)
	}
	_ = tw.Flush()
	if r.Audit != nil {
		fmt.Fprintln(w, "\naudit (internal/audit, a scan of the whole table after the run):")
		var b strings.Builder
		_ = r.Audit.Write(&b)
		for _, line := range strings.Split(strings.TrimRight(b.String(), "\n"), "\n") {
			fmt.Fprintln(w, "  "+line)
		}
	}
	passed := 0
	for _, c := range r.Checks {
		if c.Passed {
			passed++
		}
	}
	fmt.Fprintf(w, "\ninvariants: %d of %d checks passed\n", passed, len(r.Checks))
	for _, c := range r.Checks {
		mark := "PASS"
		if !c.Passed {
			mark = "FAIL"
		}
		line := fmt.Sprintf("  %s  %s", mark, c.Name)
		if c.Detail != "" {
			line += " — " + c.Detail
		}
		fmt.Fprintln(w, line)
	}
}

func section(w io.Writer, title string, rows [][2]string) {
	fmt.Fprintf(w, "\n%s:\n", title)
	if len(rows) == 0 {
		fmt.Fprintf(w, "  (none)\n")
	}
	for _, r := range rows {
		fmt.Fprintf(w, "  %-60s %s\n", r[0], r[1])
	}
}

func intRows(m map[string]int) [][2]string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([][2]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, [2]string{k, fmt.Sprint(m[k])})
	}
	return out
}

func int64Rows(m map[string]int64) [][2]string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([][2]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, [2]string{k, fmt.Sprint(m[k])})
	}
	return out
}
