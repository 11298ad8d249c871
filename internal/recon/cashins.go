package recon

import (
	"context"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/sebelas/sebelas/internal/ledger"
	"github.com/sebelas/sebelas/internal/redact"
)

// CashInColumns are the header of a bank's cash-in statement (csv, RFC
// 4180, no field spanning lines): the bank's own reference, the cash-in id
// the wallet gave the payer (the virtual-account or transfer reference that
// becomes K#<cashin_id>), the amount in minor units, its currency, and when
// the bank booked it (RFC 3339).
//
// There is no bank cash-in flow yet (issue 20): cash-ins are the ledger's
// K#<id> items written by `sebelas wallet credit` and the tests. This
// reader and its reconcile are ready for the flow's statements.
var CashInColumns = []string{"bank_ref", "cashin_id", "amount", "currency", "booked_at"}

// CashInLine is one good line of a bank's cash-in statement.
type CashInLine struct {
	Line     int
	BankRef  string
	CashInID string
	Amount   int64
	Currency string
	BookedAt time.Time
}

// CashInStatement is a bank's cash-in statement as read.
type CashInStatement struct {
	Lines   []CashInLine
	Read    int
	Skipped Skipped
}

// ReadCashInStatement reads a bank's cash-in statement (csv, CashInColumns).
func ReadCashInStatement(r io.Reader) (CashInStatement, error) {
	var st CashInStatement
	err := csvLines(r, CashInColumns, &st.Skipped, func(n int, f []string) error {
		if !refPattern.MatchString(f[0]) {
			return fmt.Errorf("bank_ref %.40q", f[0])
		}
		if err := checkID("cashin_id", f[1]); err != nil {
			return err
		}
		amt, err := parseMinor("amount", f[2])
		if err != nil {
			return err
		}
		if err := checkCurrency(f[3]); err != nil {
			return err
		}
		at, err := parseTime("booked_at", f[4])
		if err != nil {
			return err
		}
		st.Lines = append(st.Lines, CashInLine{Line: n, BankRef: f[0], CashInID: f[1], Amount: amt, Currency: f[3], BookedAt: at})
		return nil
	})
	st.Read = len(st.Lines) + st.Skipped.dataLines()
	return st, err
}

// CashInOptions say which period a statement covers.
type CashInOptions struct {
	From, To time.Time // booked in [From, To)
	// Edge is how long after the bank books money the ledger may credit
	// it: a cash-in created within Edge of the period's start, absent from
	// the statement, may be on the previous day's.
	Edge time.Duration
}

// CashIns reconciles a bank's cash-in statement with the ledger: a point
// read per statement line, and the ledger's cash-ins created in the period
// that the statement lacks. The latter is a filtered scan of the table
// (ledger.CashInsCreated): no date index of cash-ins exists until the bank
// cash-in flow brings one.
func CashIns(ctx context.Context, l *ledger.Store, scan ledger.Scanner, st CashInStatement, opts CashInOptions) (Report, error) {
	if !opts.From.Before(opts.To) || opts.Edge < 0 {
		panic("recon.CashIns: want From < To and Edge >= 0")
	}
	rep := Report{Source: "cashins", From: opts.From, To: opts.To, Lines: st.Read, Skipped: st.Skipped}
	byID := map[string][]CashInLine{}
	for _, line := range st.Lines {
		byID[line.CashInID] = append(byID[line.CashInID], line)
	}
	ids := make([]string, 0, len(byID))
	for id := range byID {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		lines := byID[id]
		rec, ok, err := l.GetCashIn(ctx, id)
		rep.Reads.PointReads++
		if err != nil {
			return rep, err
		}
		first := lines[0]
		if len(lines) > 1 {
			nums := make([]int, len(lines))
			for i, x := range lines {
				nums[i] = x.Line
			}
			rep.find(Finding{Kind: Duplicate, ID: id, Lines: nums, Ledger: describeCashIn(rec, ok), Statement: describeCashInLine(first),
				Action: "the bank booked this cash-in more than once and the ledger credited it once: ask the bank which bookings are real"})
		}
		if !ok {
			rep.find(Finding{Kind: MissingInLedger, ID: id, Lines: []int{first.Line}, Statement: describeCashInLine(first),
				Action: "money arrived at the bank and no wallet was credited: credit it once (sebelas wallet credit --id " + id + ") or return it"})
			continue
		}
		if rec.Amount.Minor != first.Amount || string(rec.Amount.Currency) != first.Currency {
			rep.find(Finding{Kind: AmountMismatch, ID: id, Lines: []int{first.Line}, Ledger: describeCashIn(rec, true), Statement: describeCashInLine(first),
				Action: "the wallet was credited another amount than the bank received: correct it with a reviewed adjustment"})
			continue
		}
		if len(lines) == 1 {
			rep.Matched++
		}
	}
	pages, err := l.CashInsCreated(ctx, scan, opts.From, opts.To, func(c ledger.CashInRecord) error {
		rep.Reads.Items++
		if _, ok := byID[c.CashInID]; ok {
			return nil
		}
		if c.CreatedAt.Before(opts.From.Add(opts.Edge)) {
			rep.Edge = append(rep.Edge, fmt.Sprintf("%s created %s", c.CashInID, c.CreatedAt.Format(time.RFC3339)))
			return nil
		}
		rep.find(Finding{Kind: MissingInStatement, ID: c.CashInID, Ledger: describeCashIn(c, true),
			Action: "a wallet was credited with money the bank does not show: find the source (" + orNone(c.Source) + ") before it is spent"})
		return nil
	})
	rep.Reads.ScanPages = pages
	if err != nil {
		return rep, err
	}
	rep.sort()
	return rep, nil
}

func describeCashIn(c ledger.CashInRecord, ok bool) string {
	if !ok {
		return ""
	}
	return fmt.Sprintf("K#%s %s to %s, source %s, created %s", c.CashInID, c.Amount, redact.Wallet(c.Wallet), orNone(c.Source), c.CreatedAt.Format(time.RFC3339))
}

func describeCashInLine(l CashInLine) string {
	return fmt.Sprintf("%d %s, bank_ref %s, booked %s", l.Amount, l.Currency, l.BankRef, l.BookedAt.Format(time.RFC3339))
}
