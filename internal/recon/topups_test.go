package recon_test

import (
	"bytes"
	"context"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sebelas/sebelas/internal/devtools/ddbtest"
	"github.com/sebelas/sebelas/internal/ledger"
	"github.com/sebelas/sebelas/internal/money"
	"github.com/sebelas/sebelas/internal/operator"
	"github.com/sebelas/sebelas/internal/recon"
	"github.com/sebelas/sebelas/internal/topup"
)

func TestMain(m *testing.M) { ddbtest.Main(m) }

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

const ttl = time.Minute

var (
	periodFrom = time.Date(2026, 11, 11, 0, 0, 0, 0, time.UTC)
	periodTo   = periodFrom.Add(24 * time.Hour)
)

// world is a ledger and the simulated aggregator on one clock. Top-ups go
// through the store's steps as the top-up function takes them: hold, submit
// to the aggregator, then capture, release or pending by its answer.
type world struct {
	t     *testing.T
	ctx   context.Context
	clock *clock
	store *topup.Store
	sim   *operator.Simulator
	op    *operator.HTTP
}

func newWorld(t *testing.T) *world {
	t.Helper()
	c := &clock{t: periodFrom.Add(2 * time.Hour)}
	db, name := ddbtest.New(t)
	l := ledger.New(db, name, c.Now)
	sim, err := operator.NewSimulator(operator.SimConfig{Seed: 7}, c.Now)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	op, err := operator.NewHTTP(srv.URL, "")
	if err != nil {
		t.Fatal(err)
	}
	w := &world{t: t, ctx: context.Background(), clock: c, store: topup.NewStore(db, name, l, c.Now), sim: sim, op: op}
	if _, err := l.CashIn(w.ctx, "k-fund", "w-payer", money.Amount{Minor: 10_000_000, Currency: money.IDR}, "test"); err != nil {
		t.Fatal(err)
	}
	return w
}

// topUp runs one top-up of face IDR with the aggregator behaving as cfg.
func (w *world) topUp(id string, face int64, cfg operator.SimConfig) topup.Record {
	w.t.Helper()
	if err := w.sim.Configure(cfg); err != nil {
		w.t.Fatal(err)
	}
	now := w.clock.Now()
	rec := topup.Record{PK: "T#" + id, SK: "T", Kind: topup.Kind, TopupID: id, Payer: "w-payer",
		MSISDN: "+6281234567890", MSISDNMasked: "+62812***7890", Market: "ID", Operator: "telkomsel",
		OperatorName: "Telkomsel", ProductKind: operator.KindAirtime, Face: face, Amount: face + 1500,
		Currency: "IDR", Status: topup.StatusHeld, Hash: "h-" + id, CreatedAt: now.Format(time.RFC3339Nano),
		UpdatedAt: now.Format(time.RFC3339Nano), OperatorExpiresAt: now.Add(ttl).Format(time.RFC3339Nano),
		DeadlineAt: now.Add(15 * time.Minute).Format(time.RFC3339Nano), Version: 1}
	rec, err := w.store.Begin(w.ctx, rec)
	if err != nil || rec.Status != topup.StatusHeld {
		w.t.Fatalf("hold %s: %v (%s)", id, err, rec.Status)
	}
	res := w.op.Submit(w.ctx, operator.Request{Reference: id, MSISDN: rec.MSISDN, Operator: rec.Operator,
		Kind: operator.KindAirtime, FaceValue: face, Currency: "IDR", ExpiresAt: now.Add(ttl)})
	switch res.Outcome {
	case operator.Succeeded:
		rec, err = w.store.Capture(w.ctx, rec, res.OperatorRef, false)
	case operator.Failed:
		rec, err = w.store.Release(w.ctx, rec, "operator_rejected", res.Code, false)
	default:
		rec, err = w.store.MarkPending(w.ctx, rec, "operator_pending", now.Add(30*time.Second))
	}
	if err != nil {
		w.t.Fatalf("finish %s: %v", id, err)
	}
	w.clock.Advance(time.Second)
	return rec
}

func (w *world) statement(format string) []byte {
	var b bytes.Buffer
	if err := operator.WriteStatement(&b, format, w.sim.Statement(periodFrom, periodTo)); err != nil {
		w.t.Fatal(err)
	}
	return b.Bytes()
}

func (w *world) reconcile(format string, stmt []byte) recon.Report {
	w.t.Helper()
	st, err := recon.ReadTopupStatement(bytes.NewReader(stmt), format)
	if err != nil {
		w.t.Fatal(err)
	}
	rep, err := recon.Topups(w.ctx, w.store, st, recon.TopupOptions{From: periodFrom, To: periodTo, RequestTTL: ttl})
	if err != nil {
		w.t.Fatal(err)
	}
	return rep
}

type got struct {
	Kind, ID string
	Lines    []int
}

func findings(r recon.Report) []got {
	var out []got
	for _, f := range r.Findings {
		out = append(out, got{f.Kind, f.ID, f.Lines})
	}
	return out
}

// lineOf returns the 1-based number of the statement line naming ref.
func lineOf(t *testing.T, stmt []byte, ref string) int {
	t.Helper()
	for i, l := range strings.Split(string(stmt), "\n") {
		if strings.Contains(l, `"`+ref+`"`) || strings.HasPrefix(l, ref+",") {
			return i + 1
		}
	}
	t.Fatalf("%s not in the statement", ref)
	return 0
}

// edit changes the statement's lines: drop removes the line of a
// reference, dup repeats it at the end, set replaces old by new in it, add
// appends raw lines.
func edit(stmt []byte, fn func(lines []string) []string) []byte {
	lines := strings.Split(strings.TrimSuffix(string(stmt), "\n"), "\n")
	return []byte(strings.Join(fn(lines), "\n") + "\n")
}

func TestTopupsCleanStatementMatchesEverything(t *testing.T) {
	w := newWorld(t)
	for i, id := range []string{"tu-a", "tu-b", "tu-c"} {
		w.topUp(id, int64(10_000*(i+1)), operator.SimConfig{Seed: 1})
	}
	w.topUp("tu-rej", 5_000, operator.SimConfig{FailureRate: 1, Seed: 1})
	for _, format := range []string{operator.StatementFormatCSV, operator.StatementFormatJSONL} {
		rep := w.reconcile(format, w.statement(format))
		if !rep.OK() || rep.Matched != 4 || rep.Lines != 4 || len(rep.Edge) != 0 {
			var b strings.Builder
			_ = rep.Write(&b)
			t.Errorf("%s: want 4 matched and nothing else:\n%s", format, b.String())
		}
	}
}

// TestTopupsEveryInjectedDiscrepancyAndNothingElse: a statement from the
// simulator with a line dropped, one duplicated, one amount changed, a
// reference the ledger never sent, a garbage line, and a top-up delivered
// after the ledger released it at the pending deadline.
func TestTopupsEveryInjectedDiscrepancyAndNothingElse(t *testing.T) {
	for _, format := range []string{operator.StatementFormatCSV, operator.StatementFormatJSONL} {
		t.Run(format, func(t *testing.T) {
			w := newWorld(t)
			ok := operator.SimConfig{Seed: 1}
			for _, id := range []string{"tu-ok1", "tu-dup", "tu-amt", "tu-drop", "tu-ok2"} {
				w.topUp(id, 20_000, ok)
			}
			w.topUp("tu-rej", 5_000, operator.SimConfig{FailureRate: 1, Seed: 2})
			// Slow operator: pending past the deadline, released, then delivered.
			late := w.topUp("tu-late", 50_000, operator.SimConfig{PendingRate: 1, ResolveMs: 20 * 60_000, Seed: 3})
			w.clock.Advance(16 * time.Minute)
			if _, err := w.store.Release(w.ctx, late, "operator_timeout", "", false); err != nil {
				t.Fatal(err)
			}
			// A request the wallet never sent (someone else's key).
			if err := w.sim.Configure(ok); err != nil {
				t.Fatal(err)
			}
			w.op.Submit(w.ctx, operator.Request{Reference: "tu-ghost", MSISDN: "+6281299999999", Operator: "telkomsel",
				Kind: operator.KindAirtime, FaceValue: 10_000, Currency: "IDR", ExpiresAt: w.clock.Now().Add(ttl)})
			w.clock.Advance(10 * time.Minute) // the late one resolves: delivered

			clean := w.statement(format)
			dupLine := lineOf(t, clean, "tu-dup")
			stmt := edit(clean, func(lines []string) []string {
				var out []string
				for _, l := range lines {
					switch {
					case strings.Contains(l, "tu-drop"):
						continue
					case strings.Contains(l, "tu-amt"):
						l = strings.Replace(l, "20000", "25000", 1)
					}
					out = append(out, l)
				}
				for _, l := range lines {
					if strings.Contains(l, "tu-dup") {
						out = append(out, l)
					}
				}
				return append(out, "this is not a statement line")
			})
			n := len(strings.Split(strings.TrimSuffix(string(stmt), "\n"), "\n"))
			rep := w.reconcile(format, stmt)
			want := []got{
				{recon.AmountMismatch, "tu-amt", []int{lineOf(t, stmt, "tu-amt")}},
				{recon.DeliveredReleased, "tu-late", []int{lineOf(t, stmt, "tu-late")}},
				{recon.Duplicate, "tu-dup", []int{dupLine, n - 1}},
				{recon.MissingInLedger, "tu-ghost", []int{lineOf(t, stmt, "tu-ghost")}},
				{recon.MissingInStatement, "tu-drop", nil},
			}
			if d := cmp.Diff(want, findings(rep)); d != "" {
				var b strings.Builder
				_ = rep.Write(&b)
				t.Errorf("findings (-want +got):\n%s\n%s", d, b.String())
			}
			if rep.Skipped.Total != 1 || rep.Skipped.Kept[0].Line != n {
				t.Errorf("skipped %+v, want line %d only", rep.Skipped, n)
			}
			// tu-ok1, tu-dup (its first line), tu-ok2, tu-rej.
			if rep.Matched != 4 || len(rep.Edge) != 0 {
				t.Errorf("matched %d, edge %v; want 4 and none", rep.Matched, rep.Edge)
			}
		})
	}
}
