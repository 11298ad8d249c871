package operator

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"time"
)

// # The aggregator's statement (v1)
//
//	GET /v1/statements?from=<RFC 3339>&to=<RFC 3339>&format=csv|jsonl
//
// lists every top-up the aggregator took (accepted submits: delivered,
// rejected, expired, still pending) whose submit it received in [from, to),
// ordered by received_at then reference, with its status at the time of
// the statement. Refused submits (outage, overload, bad request or key) are
// not listed: nothing was taken. The wallet reconciles it every night
// (`sebelas reconcile --source topups`, internal/recon).
//
// csv: RFC 4180, a header line naming exactly StatementColumns in that
// order, then one line per top-up. jsonl: one JSON object per line with the
// same names as keys (StatementLine), no other keys. In both, face_value is
// in minor units of currency, times are RFC 3339 UTC, and code is empty
// unless the status is failed.
const (
	StatementFormatCSV   = "csv"
	StatementFormatJSONL = "jsonl"

	// statementPeriodMax bounds one statement request: a day is the
	// usual period, a month the most an operator reconciles at once.
	statementPeriodMax = 31 * 24 * time.Hour
)

// StatementColumns are the csv header, in order.
var StatementColumns = []string{"reference", "operator_ref", "operator", "kind", "product",
	"face_value", "currency", "status", "code", "received_at"}

// StatementLine is one top-up of a statement.
type StatementLine struct {
	Reference   string    `json:"reference"`
	OperatorRef string    `json:"operator_ref"`
	Operator    string    `json:"operator"`
	Kind        string    `json:"kind"`
	Product     string    `json:"product"`
	FaceValue   int64     `json:"face_value"`
	Currency    string    `json:"currency"`
	Status      string    `json:"status"`
	Code        string    `json:"code"`
	ReceivedAt  time.Time `json:"received_at"`
}

// Record is the line as csv fields, in StatementColumns order.
func (l StatementLine) Record() []string {
	return []string{l.Reference, l.OperatorRef, l.Operator, l.Kind, l.Product,
		strconv.FormatInt(l.FaceValue, 10), l.Currency, l.Status, l.Code,
		l.ReceivedAt.UTC().Format(time.RFC3339Nano)}
}

// WriteStatement writes lines in format.
func WriteStatement(w io.Writer, format string, lines []StatementLine) error {
	bw := bufio.NewWriter(w)
	switch format {
	case StatementFormatCSV:
		cw := csv.NewWriter(bw)
		if err := cw.Write(StatementColumns); err != nil {
			return err
		}
		for _, l := range lines {
			if err := cw.Write(l.Record()); err != nil {
				return err
			}
		}
		cw.Flush()
		if err := cw.Error(); err != nil {
			return err
		}
	case StatementFormatJSONL:
		enc := json.NewEncoder(bw)
		for _, l := range lines {
			l.ReceivedAt = l.ReceivedAt.UTC()
			if err := enc.Encode(l); err != nil {
				return err
			}
		}
	default:
		panic("operator: statement format " + format)
	}
	return bw.Flush()
}

// Statement returns the top-ups the simulator took with a submit received
// in [from, to), each with its status now.
func (s *Simulator) Statement(from, to time.Time) []StatementLine {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []StatementLine
	for _, t := range s.topups {
		if t.receivedAt.Before(from) || !t.receivedAt.Before(to) {
			continue
		}
		s.resolve(t)
		w := t.wire()
		out = append(out, StatementLine{Reference: t.req.Reference, OperatorRef: w.OperatorRef,
			Operator: t.req.Operator, Kind: t.req.Kind, Product: t.req.Product, FaceValue: t.req.FaceValue,
			Currency: t.req.Currency, Status: w.Status, Code: w.Code, ReceivedAt: t.receivedAt.UTC()})
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].ReceivedAt.Equal(out[j].ReceivedAt) {
			return out[i].ReceivedAt.Before(out[j].ReceivedAt)
		}
		return out[i].Reference < out[j].Reference
	})
	return out
}

func (s *Simulator) statement(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(r) {
		s.refuse(w, http.StatusUnauthorized, CodeUnauthorized)
		return
	}
	q := r.URL.Query()
	from, errFrom := time.Parse(time.RFC3339Nano, q.Get("from"))
	to, errTo := time.Parse(time.RFC3339Nano, q.Get("to"))
	format := q.Get("format")
	if format == "" {
		format = StatementFormatCSV
	}
	if errFrom != nil || errTo != nil || !from.Before(to) || to.Sub(from) > statementPeriodMax ||
		(format != StatementFormatCSV && format != StatementFormatJSONL) {
		http.Error(w, fmt.Sprintf("want from < to (RFC 3339, at most %s apart) and format csv or jsonl", statementPeriodMax), http.StatusBadRequest)
		return
	}
	lines := s.Statement(from, to)
	if format == StatementFormatCSV {
		w.Header().Set("Content-Type", "text/csv")
	} else {
		w.Header().Set("Content-Type", "application/jsonl")
	}
	_ = WriteStatement(w, format, lines)
}
