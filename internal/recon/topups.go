package recon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"time"

	"github.com/sebelas/sebelas/internal/operator"
	"github.com/sebelas/sebelas/internal/redact"
	"github.com/sebelas/sebelas/internal/topup"
)

// TopupLine is one good line of an aggregator statement.
type TopupLine struct {
	Line int
	operator.StatementLine
}

// TopupStatement is an aggregator statement as read.
type TopupStatement struct {
	Lines   []TopupLine
	Read    int // data lines read, good and bad
	Skipped Skipped
}

// ReadTopupStatement reads an aggregator statement in format (operator.
// StatementFormatCSV or StatementFormatJSONL) as the operator contract
// defines it (internal/operator/statement.go). Only a read error is
// returned; a bad line is skipped and reported.
func ReadTopupStatement(r io.Reader, format string) (TopupStatement, error) {
	var st TopupStatement
	add := func(n int, l operator.StatementLine) error {
		if err := checkTopupLine(l); err != nil {
			return err
		}
		st.Lines = append(st.Lines, TopupLine{Line: n, StatementLine: l})
		return nil
	}
	var err error
	switch format {
	case operator.StatementFormatCSV:
		err = csvLines(r, operator.StatementColumns, &st.Skipped, func(n int, f []string) error {
			face, err := parseMinor("face_value", f[5])
			if err != nil {
				return err
			}
			at, err := parseTime("received_at", f[9])
			if err != nil {
				return err
			}
			return add(n, operator.StatementLine{Reference: f[0], OperatorRef: f[1], Operator: f[2], Kind: f[3],
				Product: f[4], FaceValue: face, Currency: f[6], Status: f[7], Code: f[8], ReceivedAt: at})
		})
		st.Read = len(st.Lines) + st.Skipped.dataLines()
	case operator.StatementFormatJSONL:
		err = eachLine(r, &st.Skipped, func(n int, line []byte) {
			var l operator.StatementLine
			if err := jsonLine(line, &l); err != nil {
				st.Skipped.add(n, "%v", err)
				return
			}
			if err := add(n, l); err != nil {
				st.Skipped.add(n, "%v", err)
			}
		})
		st.Read = len(st.Lines) + st.Skipped.Total
	default:
		return st, fmt.Errorf("statement format %q: want csv or jsonl", format)
	}
	return st, err
}

func checkTopupLine(l operator.StatementLine) error {
	if err := checkID("reference", l.Reference); err != nil {
		return err
	}
	if !codePattern.MatchString(l.Operator) {
		return fmt.Errorf("operator %.40q", l.Operator)
	}
	if l.Kind != operator.KindAirtime && l.Kind != operator.KindData {
		return fmt.Errorf("kind %.20q: want airtime or data", l.Kind)
	}
	if l.Product != "" {
		if err := checkID("product", l.Product); err != nil {
			return err
		}
	}
	if err := checkAmount("face_value", l.FaceValue); err != nil {
		return err
	}
	if err := checkCurrency(l.Currency); err != nil {
		return err
	}
	if l.OperatorRef != "" && !refPattern.MatchString(l.OperatorRef) {
		return fmt.Errorf("operator_ref %.40q", l.OperatorRef)
	}
	switch l.Status {
	case "succeeded", "pending":
		if l.Code != "" {
			return fmt.Errorf("code %.40q on a %s top-up", l.Code, l.Status)
		}
	case "failed":
		if !codePattern.MatchString(l.Code) {
			return fmt.Errorf("failed without a code (%.40q)", l.Code)
		}
	default:
		return fmt.Errorf("status %.20q: want succeeded, failed or pending", l.Status)
	}
	if l.ReceivedAt.IsZero() {
		return errors.New("received_at missing")
	}
	return nil
}

// TopupOptions say which period a statement covers.
type TopupOptions struct {
	From, To time.Time // the statement's period: submits received in [From, To)
	// RequestTTL is the top-up function's operator request TTL
	// (topup.Config.RequestTTLMs): a submit is received at most this long
	// before the request's operator_expires_at.
	RequestTTL time.Duration
}

// Topups reconciles an aggregator statement with the top-ups of the
// ledger. It reads the submitted index for operator_expires_at in
// [From, To+TTL) (every top-up the aggregator may have received in the
// period), matches it with the statement, and reads directly every
// statement reference the index did not show. The rule at the edges: a
// ledger top-up absent from the statement is a finding only if the whole
// window in which it could have been received, [expires−TTL, expires], lies
// in the period; otherwise it is listed as an edge entry (it may be on the
// neighbouring day's statement).
func Topups(ctx context.Context, store *topup.Store, st TopupStatement, opts TopupOptions) (Report, error) {
	if !opts.From.Before(opts.To) || opts.RequestTTL <= 0 {
		panic("recon.Topups: want From < To and a positive RequestTTL")
	}
	rep := Report{Source: "topups", From: opts.From, To: opts.To, Lines: st.Read, Skipped: st.Skipped}
	byRef := make(map[string]*TopupLine, len(st.Lines))
	dupes := map[string][]int{}
	for i := range st.Lines {
		l := &st.Lines[i]
		if first, ok := byRef[l.Reference]; ok {
			if dupes[l.Reference] == nil {
				dupes[l.Reference] = []int{first.Line}
			}
			dupes[l.Reference] = append(dupes[l.Reference], l.Line)
			continue
		}
		byRef[l.Reference] = l
	}
	for ref, lines := range dupes {
		rep.find(Finding{Kind: Duplicate, ID: ref, Lines: lines, Statement: describeLine(*byRef[ref]),
			Action: "ask the aggregator whether it delivered once or more; the ledger holds one top-up"})
	}
	seen := make(map[string]bool, len(byRef))
	sum, err := store.Submitted(ctx, opts.From, opts.To.Add(opts.RequestTTL), func(rec topup.Record) error {
		l, ok := byRef[rec.TopupID]
		if !ok {
			absentTopup(&rep, rec, opts)
			return nil
		}
		seen[rec.TopupID] = true
		compareTopup(&rep, rec, *l)
		return nil
	})
	rep.Reads.QueryPages, rep.Reads.Items = sum.Queries, sum.Items
	if err != nil {
		return rep, err
	}
	// Statement lines the index did not show: another day's request, one
	// finished a moment ago, one still in flight, or none at all.
	rest := make([]*TopupLine, 0, len(byRef)-len(seen))
	for ref, l := range byRef {
		if !seen[ref] {
			rest = append(rest, l)
		}
	}
	sort.Slice(rest, func(i, j int) bool { return rest[i].Line < rest[j].Line })
	for _, l := range rest {
		rec, ok, err := store.Get(ctx, l.Reference)
		rep.Reads.PointReads++
		if err != nil {
			return rep, err
		}
		if !ok {
			rep.find(Finding{Kind: MissingInLedger, ID: l.Reference, Lines: []int{l.Line}, Statement: describeLine(*l),
				Action: "the aggregator took a request the wallet has no record of: ask it who sent the reference"})
			continue
		}
		compareTopup(&rep, rec, *l)
	}
	rep.sort()
	return rep, nil
}

// absentTopup judges a ledger top-up the statement does not list.
func absentTopup(rep *Report, rec topup.Record, opts TopupOptions) {
	if rec.Status != topup.StatusSucceeded {
		return // released or never taken: the aggregator need not list it
	}
	exp := rec.OperatorExpires()
	if exp.Add(-opts.RequestTTL).Before(opts.From) || !exp.Before(opts.To) {
		rep.Edge = append(rep.Edge, fmt.Sprintf("%s succeeded, operator_expires_at %s", rec.TopupID, exp.Format(time.RFC3339)))
		return
	}
	rep.find(Finding{Kind: MissingInStatement, ID: rec.TopupID, Ledger: describeTopup(rec),
		Action: "the payer paid and the ledger counts it delivered (operator_ref " + orNone(rec.OperatorRef) + "); ask the aggregator for proof of delivery"})
}

// compareTopup matches one ledger top-up with its statement line.
func compareTopup(rep *Report, rec topup.Record, l TopupLine) {
	lines := []int{l.Line}
	ok := true
	if rec.Face != l.FaceValue || rec.Currency != l.Currency {
		ok = false
		rep.find(Finding{Kind: AmountMismatch, ID: rec.TopupID, Lines: lines, Ledger: describeTopup(rec), Statement: describeLine(l),
			Action: "the aggregator delivered another face value than the wallet sold: dispute the difference"})
	}
	kind, action := topupStatus(rec.Status, l.Status)
	if kind != "" {
		ok = false
		rep.find(Finding{Kind: kind, ID: rec.TopupID, Lines: lines, Ledger: describeTopup(rec), Statement: describeLine(l), Action: action})
	}
	if ok {
		rep.Matched++
	}
}

// topupStatus says whether a ledger status and a statement status
// disagree, and what to do.
func topupStatus(ledger, stmt string) (kind, action string) {
	inFlight := ledger == topup.StatusHeld || ledger == topup.StatusPending
	switch {
	case ledger == stmt && (ledger == topup.StatusSucceeded || ledger == topup.StatusFailed):
		return "", ""
	case inFlight && stmt == "pending":
		return "", "" // both still waiting
	case ledger == topup.StatusFailed && stmt == "succeeded":
		return DeliveredReleased, "delivered after the hold was released: the wallet owes the aggregator and the payer kept the money; recover it from the payer or book the loss"
	case ledger == topup.StatusSucceeded:
		return StatusMismatch, "the payer was charged for a top-up the aggregator says it did not deliver: refund the payer or get proof of delivery"
	case inFlight:
		return StatusMismatch, "still in flight in the ledger: topup reconcile finishes it (check it is running)"
	case ledger == topup.StatusFailed && stmt == "pending":
		return StatusMismatch, "released while the aggregator still has it pending: if it delivers, it becomes delivered_but_released; ask it to cancel"
	default:
		return StatusMismatch, "the ledger's top-up is " + ledger + ", look at it"
	}
}

func describeTopup(r topup.Record) string {
	s := fmt.Sprintf("T#%s %s", r.TopupID, r.Status)
	if r.Reason != "" {
		s += " (" + r.Reason + ")"
	}
	s += fmt.Sprintf(", face %d %s, price %d, payer %s, operator %s", r.Face, r.Currency, r.Amount, redact.Wallet(r.Payer), r.Operator)
	if r.OperatorRef != "" {
		s += ", operator_ref " + r.OperatorRef
	}
	return s + ", operator_expires_at " + r.OperatorExpiresAt
}

func describeLine(l TopupLine) string {
	s := l.Status
	if l.Code != "" {
		s += " (" + l.Code + ")"
	}
	s += ", face " + strconv.FormatInt(l.FaceValue, 10) + " " + l.Currency + ", operator " + l.Operator
	if l.OperatorRef != "" {
		s += ", operator_ref " + l.OperatorRef
	}
	return s + ", received " + l.ReceivedAt.Format(time.RFC3339)
}
