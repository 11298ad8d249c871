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
	"github.com/sebelas/sebelas/internal/market"
	"github.com/sebelas/sebelas/internal/money"
)

// PaySim layout: the columns of the PaySim synthetic mobile-money data set,
// which risk teams also use for their own exported history. A header row
// names them; order is free and extra columns (isFlaggedFraud) are ignored,
// except the optional device columns deviceId and deviceCountry, which the
// public set lacks and a team's own export may have.
var paysimColumns = []string{"step", "type", "amount", "nameOrig", "oldbalanceOrg", "newbalanceOrig",
	"nameDest", "oldbalanceDest", "newbalanceDest", "isFraud"}

// Optional columns.
const (
	paysimDeviceColumn  = "deviceId"
	paysimCountryColumn = "deviceCountry"
	// paysimPatternColumn names a row's fraud pattern (or legitimate
	// look-alike) for the per-pattern figures; the generators write it.
	paysimPatternColumn = "pattern"
)

// Limits of the reader.
const (
	// paysimRowsMax bounds one file: the public PaySim set has 6.4 million
	// rows; the reader streams, so this bounds time, not memory.
	paysimRowsMax = 20_000_000
	// paysimStepMax is a month of hourly steps, PaySim's own horizon (743).
	paysimStepMax      = 24 * 31
	paysimNameBytesMax = 64
	// paysimStepRowsMax bounds the rows of one step, which are held in
	// memory to spread them over their hour (a festival hour of a big
	// market is a few hundred thousand).
	paysimStepRowsMax = 2_000_000
	// skippedLinesKept: the first bad lines are named in the report, the
	// rest only counted.
	skippedLinesKept = 20
)

// PaySimStart is the time of step 1 when none is given.
var PaySimStart = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

// PaySimOptions say how to read a file.
type PaySimOptions struct {
	// Currency of the amounts, in major units (PHP: 1250.50 is 125050
	// centavos). The rules' amount thresholds are in this currency's minor
	// units, so a file in another unit must be converted first.
	Currency string
	Start    time.Time // the start of step 1; zero means PaySimStart
	// WarmupSteps: rows of steps 1..WarmupSteps build the profiles (they are
	// scored, not counted), so that no wallet is new just because the file
	// starts.
	WarmupSteps int
	// FestivalDate ("2006-01-02", in the currency's market's zone; "" none)
	// marks the festival day's rows for the report.
	FestivalDate string
}

// SkippedRow is a row the reader could not use.
type SkippedRow struct {
	Line   int
	Reason string
}

// PaySimStats describe what the reader did with the file.
type PaySimStats struct {
	Rows, Skipped int64
	// SkippedLines are the first skippedLinesKept bad rows.
	SkippedLines []SkippedRow
	// Scale says how amounts were converted, for the report.
	Scale string
}

func (s *PaySimStats) skip(line int, format string, args ...any) {
	s.Skipped++
	if len(s.SkippedLines) < skippedLinesKept {
		s.SkippedLines = append(s.SkippedLines, SkippedRow{line, fmt.Sprintf(format, args...)})
	}
}

var paysimTypes = map[string]string{
	"PAYMENT": fraud.TypePayment, "TRANSFER": fraud.TypeTransfer, "CASH_OUT": fraud.TypeCashOut,
	"DEBIT": fraud.TypeDebit, "CASH_IN": fraud.TypeCashIn,
}

// ReadPaySim streams the rows of a PaySim-layout CSV as labelled Txns of the
// given currency's market, in file order. Step s is the hour starting at
// start + (s-1)h, and the rows of one step are spread evenly over their hour
// in file order. A step lower than one before it stops the read: the file
// must be in step order (sorting it is the exporter's job, and silently
// reordering would change what velocity sees). CASH_IN rows are money in
// (history, not scored); PAYMENT, TRANSFER, CASH_OUT and DEBIT are screened
// as charges from nameOrig to nameDest, with their type. A row that cannot be
// read (a short row, an amount that is not a number, an unknown type, a
// label other than 0 or 1) is skipped and counted in stats with its line
// number. oldbalanceOrg is the balance the rules see; 0 counts as unknown
// (PaySim writes 0 for accounts it does not track).
func ReadPaySim(r io.Reader, opt PaySimOptions) (iter.Seq2[Txn, error], *PaySimStats, error) {
	cur, m, err := currencyOf(opt.Currency)
	if err != nil {
		return nil, nil, err
	}
	if opt.Start.IsZero() {
		opt.Start = PaySimStart
	}
	digits := cur.Digits()
	scale := math.Pow10(digits)
	stats := &PaySimStats{Scale: fmt.Sprintf("amounts are major units of %s, times %d to minor units (%d decimals); "+
		"the rules' amount thresholds are %s minor units", cur, int(scale), digits, cur)}
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	cr.FieldsPerRecord = -1 // a short row is skipped, not fatal
	header, err := cr.Read()
	if err != nil {
		return nil, nil, fmt.Errorf("paysim: header: %w", err)
	}
	col := map[string]int{}
	for i, h := range header {
		if i == 0 {
			h = strings.TrimPrefix(h, "\ufeff") // a byte-order mark
		}
		col[strings.TrimSpace(h)] = i
	}
	for _, c := range paysimColumns {
		if _, ok := col[c]; !ok {
			return nil, nil, fmt.Errorf("paysim: header has no column %q (want %s)", c, strings.Join(paysimColumns, ","))
		}
	}
	need := 0
	for _, i := range col {
		need = max(need, i+1)
	}
	pr := &paysimReader{opt: opt, m: m, cur: cur, scale: scale, col: col, need: need, stats: stats}
	return func(yield func(Txn, error) bool) { pr.run(cr, yield) }, stats, nil
}

type paysimReader struct {
	opt   PaySimOptions
	m     market.Market
	cur   money.Currency
	scale float64
	col   map[string]int
	need  int
	stats *PaySimStats
}

type paysimRow struct {
	step int
	txn  Txn
}

func (pr *paysimReader) run(cr *csv.Reader, yield func(Txn, error) bool) {
	var pending []paysimRow
	lastStep := 0
	flush := func() bool {
		// Spread the step's rows evenly over its hour, in file order.
		for i, row := range pending {
			off := time.Duration(int64(i) * int64(time.Hour) / int64(len(pending)))
			row.txn.Payment.At = pr.opt.Start.Add(time.Duration(row.step-1)*time.Hour + off)
			row.txn.Festival = pr.opt.FestivalDate != "" && pr.m.LocalDate(row.txn.Payment.At) == pr.opt.FestivalDate
			if !yield(row.txn, nil) {
				return false
			}
		}
		pending = pending[:0]
		return true
	}
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			flush()
			return
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) && !errors.Is(pe.Err, csv.ErrFieldCount) {
				pr.stats.skip(line, "%v", pe.Err)
				continue
			}
			yield(Txn{}, fmt.Errorf("paysim: %w", err))
			return
		}
		if pr.stats.Rows++; pr.stats.Rows > paysimRowsMax {
			yield(Txn{}, fmt.Errorf("paysim line %d: more than %d rows", line, paysimRowsMax))
			return
		}
		step, txn, ok := pr.row(line, rec)
		if !ok {
			continue
		}
		if step < lastStep {
			yield(Txn{}, fmt.Errorf("paysim line %d: step %d after step %d: rows must be in step order (sort the file by step, keeping the order within a step)", line, step, lastStep))
			return
		}
		if step != lastStep {
			if !flush() {
				return
			}
			lastStep = step
		}
		if len(pending) >= paysimStepRowsMax {
			yield(Txn{}, fmt.Errorf("paysim line %d: more than %d rows in step %d", line, paysimStepRowsMax, step))
			return
		}
		pending = append(pending, paysimRow{step, txn})
	}
}

// row reads one record; ok false means it was skipped (and counted).
func (pr *paysimReader) row(line int, rec []string) (int, Txn, bool) {
	if len(rec) < pr.need {
		pr.stats.skip(line, "%d fields, want %d", len(rec), pr.need)
		return 0, Txn{}, false
	}
	field := func(name string) string { return strings.TrimSpace(rec[pr.col[name]]) }
	step, err := strconv.Atoi(field("step"))
	if err != nil || step < 1 || step > paysimStepMax {
		pr.stats.skip(line, "step %.16q: want 1..%d", field("step"), paysimStepMax)
		return 0, Txn{}, false
	}
	kind := strings.ToUpper(field("type"))
	typ, ok := paysimTypes[kind]
	if !ok {
		pr.stats.skip(line, "type %.16q: want PAYMENT, TRANSFER, CASH_OUT, DEBIT or CASH_IN", field("type"))
		return 0, Txn{}, false
	}
	amount, err := minorUnits(field("amount"), pr.scale)
	if err != nil {
		pr.stats.skip(line, "amount: %v", err)
		return 0, Txn{}, false
	}
	balance, err := minorUnits(field("oldbalanceOrg"), pr.scale)
	if err != nil {
		pr.stats.skip(line, "oldbalanceOrg: %v", err)
		return 0, Txn{}, false
	}
	payeeBalance, err := minorUnits(field("oldbalanceDest"), pr.scale)
	if err != nil {
		payeeBalance = 0 // only informative
	}
	orig, dest := field("nameOrig"), field("nameDest")
	if orig == "" || dest == "" || len(orig) > paysimNameBytesMax || len(dest) > paysimNameBytesMax {
		pr.stats.skip(line, "nameOrig and nameDest must be 1..%d bytes", paysimNameBytesMax)
		return 0, Txn{}, false
	}
	var label bool
	switch strings.ToLower(field("isFraud")) {
	case "0", "0.0", "false":
	case "1", "1.0", "true":
		label = true
	default:
		pr.stats.skip(line, "isFraud %.8q: want 0 or 1", field("isFraud"))
		return 0, Txn{}, false
	}
	if amount <= 0 {
		return 0, Txn{}, false // nothing moves, nothing to screen
	}
	if balance == 0 {
		balance = -1 // unknown, not empty
	}
	pattern := "paysim_" + typ
	if label {
		pattern += "_fraud"
	}
	t := Txn{
		Payment: fraud.Payment{Kind: fraud.KindCharge, Type: typ, EventKey: fmt.Sprintf("/paysim|%d", line), Wallet: orig,
			Payee: dest, Amount: amount, Currency: string(pr.cur)},
		Balance: balance, PayeeBalance: payeeBalance, Fraud: label, Pattern: pattern,
		Warmup: step <= pr.opt.WarmupSteps, CashIn: typ == fraud.TypeCashIn,
	}
	if i, ok := pr.col[paysimDeviceColumn]; ok && i < len(rec) {
		t.Payment.DeviceID = truncate(strings.TrimSpace(rec[i]), paysimNameBytesMax)
	}
	if i, ok := pr.col[paysimPatternColumn]; ok && i < len(rec) && namePatternOK(rec[i]) {
		t.Pattern = rec[i]
	}
	if i, ok := pr.col[paysimCountryColumn]; ok && i < len(rec) {
		t.Payment.DeviceCountry = truncate(strings.ToUpper(strings.TrimSpace(rec[i])), 2)
	}
	return step, t, true
}

func namePatternOK(s string) bool {
	if s == "" || len(s) > paysimNameBytesMax {
		return false
	}
	for _, r := range s {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '_' {
			return false
		}
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// minorUnits reads an amount in major units; thousands separators (1,000.50
// in a quoted field) are dropped.
func minorUnits(s string, scale float64) (int64, error) {
	s = strings.NewReplacer(",", "", "_", "", " ", "").Replace(s)
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || v < 0 || v > 1e13 {
		return 0, fmt.Errorf("%.24q is not an amount in 0..1e13", s)
	}
	return int64(math.Round(v * scale)), nil
}

// paysimTypeNames are the PaySim spellings of the types.
var paysimTypeNames = map[string]string{
	fraud.TypePayment: "PAYMENT", fraud.TypeTransfer: "TRANSFER", fraud.TypeCashOut: "CASH_OUT",
	fraud.TypeDebit: "DEBIT", fraud.TypeCashIn: "CASH_IN", fraud.TypeTopup: "PAYMENT",
}

// WritePaySim writes txns (one currency, in time order) as a PaySim-layout
// CSV whose step 1 starts at start; with devices, the optional deviceId and
// deviceCountry columns too. Amounts are major units of the currency.
func WritePaySim(w io.Writer, txns []Txn, start time.Time, devices bool) error {
	cw := csv.NewWriter(w)
	header := append(append([]string{}, paysimColumns...), "isFlaggedFraud", paysimPatternColumn)
	if devices {
		header = append(header, paysimDeviceColumn, paysimCountryColumn)
	}
	if err := cw.Write(header); err != nil {
		return err
	}
	var scale float64
	for _, t := range txns {
		p := t.Payment
		if scale == 0 {
			cur, err := money.ParseCurrency(p.Currency)
			if err != nil {
				return err
			}
			scale = math.Pow10(cur.Digits())
		}
		step := int(p.At.Sub(start)/time.Hour) + 1
		if step < 1 || step > paysimStepMax {
			return fmt.Errorf("paysim: payment at %s is outside the file's %d steps", p.At, paysimStepMax)
		}
		amt := func(v int64) string { return strconv.FormatFloat(float64(v)/scale, 'f', -1, 64) }
		newOrig, newDest := t.Balance-p.Amount, t.PayeeBalance
		if t.CashIn {
			newOrig = t.Balance + p.Amount
		} else if p.TypeOrKind() == fraud.TypeTransfer {
			newDest = t.PayeeBalance + p.Amount
		}
		label := "0"
		if t.Fraud {
			label = "1"
		}
		rec := []string{strconv.Itoa(step), paysimTypeNames[p.TypeOrKind()], amt(p.Amount), p.Wallet, amt(t.Balance), amt(max(newOrig, 0)),
			p.Payee, amt(t.PayeeBalance), amt(newDest), label, "0", t.Pattern}
		if devices {
			rec = append(rec, p.DeviceID, p.DeviceCountry)
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}
