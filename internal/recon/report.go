// Package recon reconciles the ledger with what the outside world says
// happened: the top-up aggregator's statement, a bank's cash-in statement,
// the bank's report of the merchant payouts settlement produced. Each
// reconcile reads one statement (strictly: a bad line is skipped, counted
// and reported with its number, never fatal), reads the ledger's side of the
// same period through an index where one exists, and reports what matched,
// what is missing on either side and what disagrees, each with the ids
// needed to act. `sebelas reconcile` runs it; docs/reconciliation.md has the
// formats, the rules and the cost.
package recon

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// Kinds of findings.
const (
	// MissingInLedger: the statement has it, the ledger does not.
	MissingInLedger = "missing_in_ledger"
	// MissingInStatement: the ledger has it, the statement does not.
	MissingInStatement = "missing_in_statement"
	// AmountMismatch: both have it with other amounts or currencies.
	AmountMismatch = "amount_mismatch"
	// StatusMismatch: both have it with outcomes that disagree.
	StatusMismatch = "status_mismatch"
	// Duplicate: the statement lists one id more than once.
	Duplicate = "duplicate_in_statement"
	// DeliveredReleased: the aggregator delivered a top-up whose hold the
	// ledger released (after the pending deadline, or on a wrong "not
	// received"): the payer has the airtime and the money, the wallet pays
	// the aggregator for it. The known loss case, called out on its own.
	DeliveredReleased = "delivered_but_released"
)

// findingsKeptMax bounds the findings a report lists; all are counted.
const findingsKeptMax = 10_000

// Finding is one disagreement.
type Finding struct {
	Kind string
	// ID is what to act on: a topup_id, a cashin_id, a settlement id.
	ID string
	// Lines are the statement lines it concerns (none when the statement
	// lacks it).
	Lines     []int
	Ledger    string // the ledger's side, as a person reads it
	Statement string // the statement's side
	Action    string // what to do
}

func (f Finding) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-22s %s", f.Kind, f.ID)
	if len(f.Lines) > 0 {
		ls := make([]string, len(f.Lines))
		for i, l := range f.Lines {
			ls[i] = fmt.Sprint(l)
		}
		fmt.Fprintf(&b, " (line %s)", strings.Join(ls, ", "))
	}
	fmt.Fprintf(&b, "\n      ledger: %s\n      statement: %s", orNone(f.Ledger), orNone(f.Statement))
	if f.Action != "" {
		fmt.Fprintf(&b, "\n      action: %s", f.Action)
	}
	return b.String()
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// Report is the outcome of one reconcile.
type Report struct {
	Source   string // topups, cashins, payouts
	From, To time.Time
	// Lines counts the statement's data lines read (good or bad).
	Lines   int
	Matched int
	// Findings are sorted by kind, then id.
	Findings      []Finding
	FindingsTotal int
	Skipped       Skipped
	// Edge lists ledger entries absent from the statement that may belong
	// to the neighbouring period's statement (see the source's rule): not
	// findings, shown so that a person can check them there.
	Edge []string
	// Reads are the ledger reads made: query pages, point reads, scan
	// pages.
	Reads ReadStats
}

// ReadStats count the ledger reads of a reconcile.
type ReadStats struct {
	QueryPages int
	PointReads int
	ScanPages  int
	Items      int // ledger items read through queries and scans
}

// OK reports whether the statement and the ledger agree and every line
// was read.
func (r Report) OK() bool { return r.FindingsTotal == 0 && r.Skipped.Total == 0 }

// Count returns the findings of kind.
func (r Report) Count(kind string) int {
	n := 0
	for _, f := range r.Findings {
		if f.Kind == kind {
			n++
		}
	}
	return n
}

func (r *Report) find(f Finding) {
	r.FindingsTotal++
	if len(r.Findings) < findingsKeptMax {
		r.Findings = append(r.Findings, f)
	}
}

func (r *Report) sort() {
	sort.SliceStable(r.Findings, func(i, j int) bool {
		a, b := r.Findings[i], r.Findings[j]
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		return a.ID < b.ID
	})
	sort.Strings(r.Edge)
}

// Write prints the report for an operator.
func (r Report) Write(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "reconcile %s, %s to %s\n", r.Source, r.From.UTC().Format(time.RFC3339), r.To.UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, "statement lines: %d read, %d skipped; matched: %d; findings: %d\n", r.Lines, r.Skipped.Total, r.Matched, r.FindingsTotal)
	fmt.Fprintf(&b, "ledger reads: %d query pages, %d point reads, %d scan pages, %d items\n",
		r.Reads.QueryPages, r.Reads.PointReads, r.Reads.ScanPages, r.Reads.Items)
	counts := map[string]int{}
	for _, f := range r.Findings {
		counts[f.Kind]++
	}
	kinds := make([]string, 0, len(counts))
	for k := range counts {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		fmt.Fprintf(&b, "  %-22s %d\n", k, counts[k])
	}
	if n := counts[DeliveredReleased]; n > 0 {
		fmt.Fprintf(&b, "\nLOSS: %d top-ups the aggregator delivered after the ledger released their hold (the payer kept the money)\n", n)
	}
	if len(r.Findings) > 0 {
		b.WriteString("\nfindings:\n")
		for _, f := range r.Findings {
			fmt.Fprintf(&b, "  %s\n", f)
		}
		if r.FindingsTotal > len(r.Findings) {
			fmt.Fprintf(&b, "  ... %d more\n", r.FindingsTotal-len(r.Findings))
		}
	}
	if r.Skipped.Total > 0 {
		b.WriteString("\nskipped lines:\n")
		for _, e := range r.Skipped.Kept {
			fmt.Fprintf(&b, "  %s\n", e)
		}
		if r.Skipped.Total > len(r.Skipped.Kept) {
			fmt.Fprintf(&b, "  ... %d more\n", r.Skipped.Total-len(r.Skipped.Kept))
		}
	}
	if len(r.Edge) > 0 {
		b.WriteString("\nnot in this statement, near the period's edge (check the neighbouring statement):\n")
		for _, e := range r.Edge {
			fmt.Fprintf(&b, "  %s\n", e)
		}
	}
	if r.OK() {
		b.WriteString("result: OK\n")
	} else {
		b.WriteString("result: DISAGREE\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}
