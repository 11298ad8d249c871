package recon

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sebelas/sebelas/internal/market"
	"github.com/sebelas/sebelas/internal/settle"
)

// The payout file: what a bank transfer batch takes after a settlement run.
//
//	payouts-<market>-<business date>-p<pass>.csv
//
//	merchant_id,currency,amount,settlement_ids
//	m-toko-1,IDR,1250000,S-m-toko-1-2026-11-11-IDR
//
// One line per merchant settled in the market-day (its market has one
// currency), sorted by merchant; amount in minor units, always positive (a
// credit to transfer); settlement_ids are the settlements the amount pays,
// separated by ';'. A run pass writes one file, exactly once: the name
// carries the pass, the file is created by a hard link that fails if it
// exists, and writing it again gives the same bytes or an error, never a
// second file. A later pass of the same day (an operator's re-run that
// settled late units into it) pays only what the files of earlier passes in
// the directory did not: amount = net − Σ earlier amounts. A settlement
// whose net is below what was paid (refunds of settled charges) is owed by
// the merchant: it is reported, never a negative transfer.
var PayoutColumns = []string{"merchant_id", "currency", "amount", "settlement_ids"}

// PayoutReportColumns are the bank's report on a payout file: each line as
// sent, what became of it (paid or rejected) and the bank's reference.
var PayoutReportColumns = append(append([]string(nil), PayoutColumns...), "status", "bank_ref")

// Payout report statuses.
const (
	PayoutPaid     = "paid"
	PayoutRejected = "rejected"

	payoutIDsMax = 16 // settlement ids on one line
)

// PayoutLine is one transfer.
type PayoutLine struct {
	Line          int
	MerchantID    string
	Currency      string
	Amount        int64
	SettlementIDs []string
	Status        string // report only
	BankRef       string // report only
}

// PayoutFile is what WritePayouts wrote (or found written).
type PayoutFile struct {
	Path           string
	Market, Date   string
	Pass           int64
	Lines          []PayoutLine
	Total          int64
	Owed           []PayoutLine // merchants whose settlement is below what was paid
	AlreadyWritten bool         // the same file was there: nothing written
	Reads          settle.ListStats
}

// PayoutFileName is the name of a pass's payout file.
func PayoutFileName(marketCode, date string, pass int64) string {
	return fmt.Sprintf("payouts-%s-%s-p%d.csv", marketCode, date, pass)
}

// WritePayouts writes the payout file of a market-day's settlement run into
// dir, once per pass. The run must be done.
func WritePayouts(ctx context.Context, s *settle.Store, m market.Market, date, dir string) (PayoutFile, error) {
	pf := PayoutFile{Market: m.Code, Date: date}
	run, ok, err := s.GetRun(ctx, m.Code, date)
	if err != nil {
		return pf, err
	}
	if !ok || run.Status != settle.RunDone {
		return pf, fmt.Errorf("payouts %s %s: the settlement run is not done (settle it first)", m.Code, date)
	}
	pf.Pass = run.Pass
	pf.Path = filepath.Join(dir, PayoutFileName(m.Code, date, run.Pass))
	paid, err := paidBefore(dir, m.Code, date, run.Pass)
	if err != nil {
		return pf, err
	}
	pf.Reads, err = s.Settlements(ctx, m.Code, date, func(r settle.Result) error {
		line := PayoutLine{MerchantID: r.MerchantID, Currency: r.Currency, Amount: r.Net - paid[r.SettlementID],
			SettlementIDs: []string{r.SettlementID}}
		switch {
		case line.Amount > 0:
			pf.Lines = append(pf.Lines, line)
			pf.Total += line.Amount
		case line.Amount < 0:
			pf.Owed = append(pf.Owed, line)
		}
		return nil
	})
	if err != nil {
		return pf, err
	}
	sort.Slice(pf.Lines, func(i, j int) bool { return pf.Lines[i].MerchantID < pf.Lines[j].MerchantID })
	sort.Slice(pf.Owed, func(i, j int) bool { return pf.Owed[i].MerchantID < pf.Owed[j].MerchantID })
	var b bytes.Buffer
	cw := csv.NewWriter(&b)
	_ = cw.Write(PayoutColumns)
	for i, l := range pf.Lines {
		pf.Lines[i].Line = i + 2
		_ = cw.Write([]string{l.MerchantID, l.Currency, strconv.FormatInt(l.Amount, 10), strings.Join(l.SettlementIDs, ";")})
	}
	cw.Flush()
	pf.AlreadyWritten, err = createOnce(pf.Path, b.Bytes())
	return pf, err
}

// paidBefore sums, per settlement id, the amounts of the payout files of
// passes before pass in dir.
func paidBefore(dir, marketCode, date string, pass int64) (map[string]int64, error) {
	paid := map[string]int64{}
	for p := int64(1); p < pass; p++ {
		f, err := os.Open(filepath.Join(dir, PayoutFileName(marketCode, date, p)))
		if errors.Is(err, fs.ErrNotExist) {
			continue // that pass wrote no file: nothing of it was paid
		}
		if err != nil {
			return nil, err
		}
		lines, sk, err := readPayouts(f, PayoutColumns)
		f.Close()
		if err != nil {
			return nil, err
		}
		if sk.Total > 0 {
			return nil, fmt.Errorf("payout file of pass %d has bad lines (%v): not paying on top of it", p, sk.Kept)
		}
		for _, l := range lines {
			if len(l.SettlementIDs) == 1 {
				paid[l.SettlementIDs[0]] += l.Amount
			}
		}
	}
	return paid, nil
}

// createOnce writes data to path unless path exists; if it does, it must
// hold exactly data (written before: reported as already there).
func createOnce(path string, data []byte) (already bool, err error) {
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	tmp := filepath.Join(filepath.Dir(path), ".tmp-"+hex.EncodeToString(rnd[:])+"-"+filepath.Base(path))
	if err := writeSynced(tmp, data); err != nil {
		return false, err
	}
	defer os.Remove(tmp)
	// A link fails if the name exists: two writers cannot both create it.
	if err := os.Link(tmp, path); err == nil {
		return false, nil
	} else if !errors.Is(err, fs.ErrExist) {
		return false, err
	}
	old, err := os.ReadFile(path)
	if err != nil {
		return false, err
	}
	if !bytes.Equal(old, data) {
		return false, fmt.Errorf("%s exists with other content: not overwritten (was the day settled again? its next pass writes its own file)", path)
	}
	return true, nil
}

func writeSynced(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// readPayouts reads a payout file (PayoutColumns) or a bank's report
// (PayoutReportColumns).
func readPayouts(r io.Reader, columns []string) ([]PayoutLine, Skipped, error) {
	var lines []PayoutLine
	var sk Skipped
	report := len(columns) == len(PayoutReportColumns)
	err := csvLines(r, columns, &sk, func(n int, f []string) error {
		if err := checkID("merchant_id", f[0]); err != nil {
			return err
		}
		if err := checkCurrency(f[1]); err != nil {
			return err
		}
		amt, err := parseMinor("amount", f[2])
		if err != nil {
			return err
		}
		ids := strings.Split(f[3], ";")
		if len(ids) > payoutIDsMax {
			return fmt.Errorf("%d settlement ids, at most %d", len(ids), payoutIDsMax)
		}
		for _, id := range ids {
			if _, ok := settle.SettlementDate(id); !ok {
				return fmt.Errorf("settlement id %.70q", id)
			}
		}
		l := PayoutLine{Line: n, MerchantID: f[0], Currency: f[1], Amount: amt, SettlementIDs: ids}
		if report {
			if f[4] != PayoutPaid && f[4] != PayoutRejected {
				return fmt.Errorf("status %.20q: want paid or rejected", f[4])
			}
			if !refPattern.MatchString(f[5]) {
				return fmt.Errorf("bank_ref %.40q", f[5])
			}
			l.Status, l.BankRef = f[4], f[5]
		}
		lines = append(lines, l)
		return nil
	})
	return lines, sk, err
}

// PayoutReport is a bank's report on payout files, as read.
type PayoutReport struct {
	Lines   []PayoutLine
	Read    int
	Skipped Skipped
}

// ReadPayoutReport reads a bank's report (csv, PayoutReportColumns).
func ReadPayoutReport(r io.Reader) (PayoutReport, error) {
	lines, sk, err := readPayouts(r, PayoutReportColumns)
	return PayoutReport{Lines: lines, Read: len(lines) + sk.dataLines(), Skipped: sk}, err
}

// Payouts reconciles the bank's report on the payout files of a
// market-day with its settlements: every settlement with a positive net
// must be paid exactly its net over the day's files, to its merchant in its
// currency.
func Payouts(ctx context.Context, s *settle.Store, m market.Market, date string, rep PayoutReport) (Report, error) {
	start, err := time.ParseInLocation(time.DateOnly, date, m.Location)
	if err != nil {
		return Report{}, fmt.Errorf("business date %q: %v", date, err)
	}
	out := Report{Source: "payouts " + m.Code, From: start, To: start.AddDate(0, 0, 1), Lines: rep.Read, Skipped: rep.Skipped}
	ledger := map[string]settle.Result{}
	st, err := s.Settlements(ctx, m.Code, date, func(r settle.Result) error {
		ledger[r.SettlementID] = r
		return nil
	})
	out.Reads.QueryPages, out.Reads.PointReads, out.Reads.Items = st.QueryPages, st.PointReads, len(ledger)
	if err != nil {
		return out, err
	}
	type paid struct {
		amount   int64
		lines    []int
		rejected bool
		first    PayoutLine
	}
	byID := map[string]*paid{}
	seen := map[string]int{} // ids|amount -> first line
	for _, l := range rep.Lines {
		ids := strings.Join(l.SettlementIDs, ";")
		dupKey := ids + "|" + strconv.FormatInt(l.Amount, 10)
		if first, ok := seen[dupKey]; ok {
			out.find(Finding{Kind: Duplicate, ID: ids, Lines: []int{first, l.Line}, Statement: describePayout(l),
				Action: "the bank reports this transfer twice: if both were paid, recover one from the merchant"})
			continue
		}
		seen[dupKey] = l.Line
		p := byID[ids]
		if p == nil {
			p = &paid{first: l}
			byID[ids] = p
		}
		p.lines = append(p.lines, l.Line)
		if l.Status == PayoutRejected {
			p.rejected = true
			continue
		}
		p.amount += l.Amount
	}
	keys := make([]string, 0, len(byID))
	for k := range byID {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, ids := range keys {
		p := byID[ids]
		var want int64
		var side []string
		known, payee := true, true
		for _, id := range strings.Split(ids, ";") {
			r, ok := ledger[id]
			if !ok {
				known = false
				break
			}
			want += r.Net
			side = append(side, describeSettlement(r))
			payee = payee && r.MerchantID == p.first.MerchantID && r.Currency == p.first.Currency
		}
		switch {
		case !known:
			out.find(Finding{Kind: MissingInLedger, ID: ids, Lines: p.lines, Statement: describePayout(p.first),
				Action: "a transfer for a settlement this market-day does not have: stop it or recover it"})
		case p.rejected:
			out.find(Finding{Kind: StatusMismatch, ID: ids, Lines: p.lines, Ledger: strings.Join(side, "; "), Statement: describePayout(p.first) + ", rejected",
				Action: "the bank rejected the transfer: the merchant is not paid; fix its account and send the line again"})
		case p.amount != want || !payee:
			out.find(Finding{Kind: AmountMismatch, ID: ids, Lines: p.lines, Ledger: strings.Join(side, "; "),
				Statement: fmt.Sprintf("paid %d in total; %s", p.amount, describePayout(p.first)),
				Action:    "the merchant was paid another amount than it was settled: pay or recover the difference"})
		default:
			out.Matched++
		}
		for _, id := range strings.Split(ids, ";") {
			delete(ledger, id)
		}
	}
	for _, r := range ledger {
		if r.Net <= 0 {
			continue // nothing to transfer: owed by the merchant
		}
		out.find(Finding{Kind: MissingInStatement, ID: r.SettlementID, Ledger: describeSettlement(r),
			Action: "settled and not paid: send it in the next payout file"})
	}
	out.sort()
	return out, nil
}

func describeSettlement(r settle.Result) string {
	return fmt.Sprintf("%s v%d merchant %s net %d %s", r.SettlementID, r.Version, r.MerchantID, r.Net, r.Currency)
}

func describePayout(l PayoutLine) string {
	s := fmt.Sprintf("%s %d %s", l.MerchantID, l.Amount, l.Currency)
	if l.BankRef != "" {
		s += ", bank_ref " + l.BankRef
	}
	return s
}
