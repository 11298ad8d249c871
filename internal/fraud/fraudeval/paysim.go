package fraudeval

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"iter"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/sebelas/sebelas/internal/fraud"
)

// PaySim layout: the columns of the PaySim synthetic mobile-money data set,
// which risk teams also use for their own exported history. A header row
// names them; order is free and extra columns (isFlaggedFraud) are ignored.
var paysimColumns = []string{"step", "type", "amount", "nameOrig", "oldbalanceOrg", "newbalanceOrig",
	"nameDest", "oldbalanceDest", "newbalanceDest", "isFraud"}

// Limits of the reader.
const (
	// paysimRowsMax bounds one file: the public PaySim set has 6.4 million
	// rows; the reader streams, so this bounds time, not memory.
	paysimRowsMax = 20_000_000
	// paysimStepMax is a month of hourly steps, PaySim's own horizon (743).
	paysimStepMax      = 24 * 31
	paysimNameBytesMax = 64
)

// PaySimStart is the time of step 1 when none is given.
var PaySimStart = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

// ReadPaySim streams the payments of a PaySim-layout CSV as labelled Txns of
// the given currency's market, in file order. Step s is the hour starting at
// start + (s-1)h; the rows of one step are a second apart in file order, so
// velocity windows see them in the hour they belong to. CASH_IN rows credit
// the account and are not screened; PAYMENT, TRANSFER, CASH_OUT and DEBIT are
// screened as charges from nameOrig to nameDest. The file carries no device,
// so device features stay empty. Amounts are converted to minor units
// (rounded to the currency's digits); oldbalanceOrg is the balance read.
func ReadPaySim(r io.Reader, currency string, start time.Time) (iter.Seq2[Txn, error], error) {
	cur, _, err := currencyOf(currency)
	if err != nil {
		return nil, err
	}
	scale := math.Pow10(cur.Digits())
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("paysim: header: %w", err)
	}
	col := map[string]int{}
	for i, h := range header {
		col[strings.TrimSpace(h)] = i
	}
	for _, c := range paysimColumns {
		if _, ok := col[c]; !ok {
			return nil, fmt.Errorf("paysim: header has no column %q (want %s)", c, strings.Join(paysimColumns, ","))
		}
	}
	return func(yield func(Txn, error) bool) {
		lastStep, inStep := 0, 0
		fail := func(line int, format string, args ...any) {
			yield(Txn{}, fmt.Errorf("paysim line %d: %s", line, fmt.Sprintf(format, args...)))
		}
		for line := 2; ; line++ {
			rec, err := cr.Read()
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				yield(Txn{}, fmt.Errorf("paysim: %w", err))
				return
			}
			if line-1 > paysimRowsMax {
				fail(line, "more than %d rows", paysimRowsMax)
				return
			}
			field := func(name string) string { return strings.TrimSpace(rec[col[name]]) }
			step, err := strconv.Atoi(field("step"))
			if err != nil || step < 1 || step > paysimStepMax {
				fail(line, "step %.16q: want 1..%d", field("step"), paysimStepMax)
				return
			}
			if step != lastStep {
				lastStep, inStep = step, 0
			}
			at := start.Add(time.Duration(step-1)*time.Hour + time.Duration(min(inStep, 3599))*time.Second)
			inStep++
			kind := field("type")
			switch kind {
			case "CASH_IN":
				continue
			case "PAYMENT", "TRANSFER", "CASH_OUT", "DEBIT":
			default:
				fail(line, "type %.16q: want PAYMENT, TRANSFER, CASH_OUT, DEBIT or CASH_IN", kind)
				return
			}
			amount, err := minorUnits(field("amount"), scale)
			if err != nil {
				fail(line, "amount: %v", err)
				return
			}
			balance, err := minorUnits(field("oldbalanceOrg"), scale)
			if err != nil {
				fail(line, "oldbalanceOrg: %v", err)
				return
			}
			orig, dest := field("nameOrig"), field("nameDest")
			if orig == "" || dest == "" || len(orig) > paysimNameBytesMax || len(dest) > paysimNameBytesMax {
				fail(line, "nameOrig and nameDest must be 1..%d bytes", paysimNameBytesMax)
				return
			}
			label := field("isFraud")
			if label != "0" && label != "1" {
				fail(line, "isFraud %.8q: want 0 or 1", label)
				return
			}
			if amount <= 0 {
				continue // nothing moves, nothing to screen
			}
			pattern := "paysim_" + strings.ToLower(kind)
			if label == "1" {
				pattern += "_fraud"
			}
			t := Txn{
				Payment: fraud.Payment{Kind: fraud.KindCharge, EventKey: fmt.Sprintf("/paysim|%d", line), Wallet: orig,
					Payee: dest, Amount: amount, Currency: string(cur), At: at},
				Balance: balance, Fraud: label == "1", Pattern: pattern,
			}
			if !yield(t, nil) {
				return
			}
		}
	}, nil
}

func minorUnits(s string, scale float64) (int64, error) {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || v < 0 || v > 1e13 {
		return 0, fmt.Errorf("%.24q is not an amount in 0..1e13", s)
	}
	return int64(math.Round(v * scale)), nil
}
