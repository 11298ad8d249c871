// Package chaos is the bank test of sebelas: a seeded, mixed marketplace
// workload against the whole system (internal/devtools/stack: the ingress, the local
// Broker with the Triggers of infra/knative, every function, DynamoDB
// Local) while faults are injected at every seam, then a check that nothing
// was lost or made:
//
//   - between the Broker and the functions: every event may be delivered
//     twice or more, late and out of order, and a function's answer may be
//     lost after it acted (deliveries);
//   - the functions: killed mid-request, at a random moment or right after
//     their DynamoDB write, and restarted (crasher);
//   - between the functions and DynamoDB: throttling and 500s before the
//     request is applied, 500s after it was, and DynamoDB Local stopped and
//     restarted under load on its on-disk database (dbProxy, restarts);
//   - at the door: forged, stale, replayed and misdirected requests.
//
// Afterwards, with faults off and a direct client: money conserved to the
// unit in every currency, no negative balance, nothing held, every accepted
// request with exactly one final outcome (stored, or in the dead-letter
// sink with a reason), nothing the ingress refused in the table. The
// figures are printed; `sebelas chaos` runs it, and a short form runs in
// the tests.
package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/sebelas/sebelas/events"
	"github.com/sebelas/sebelas/internal/devtools/ddblocal"
	"github.com/sebelas/sebelas/internal/devtools/router"
	"github.com/sebelas/sebelas/internal/devtools/stack"
	"github.com/sebelas/sebelas/internal/fraud"
	"github.com/sebelas/sebelas/internal/ingress"
	"github.com/sebelas/sebelas/internal/ledger"
	"github.com/sebelas/sebelas/internal/money"
	"github.com/sebelas/sebelas/internal/operator"
	"github.com/sebelas/sebelas/internal/signing"
	"github.com/sebelas/sebelas/internal/table"
	"github.com/sebelas/sebelas/internal/topup"
)

// Limits of a run's options: a chaos run is a test, not a load generator.
const (
	ChargesMax     = 20_000
	workersMax     = 64
	walletsMax     = 100
	dupMaxMax      = 5
	lateMaxMsMax   = 10_000
	dbRestartsMax  = 10
	dbDownMsMax    = 30_000
	crashDownMsMax = 10_000
	// waitTimeoutMsDefault bounds the wait for the Broker to go idle after
	// each phase; the Triggers' own retry budget, compressed by
	// BackoffScale, must fit in it.
	waitTimeoutMsDefault = 600_000
	// operatorMsMax bounds the operator timings of a run.
	operatorMsMax = 60_000
	tableName     = "sebelas-chaos"
)

// Options of a run. Probabilities are per delivery (duplicates, lost
// replies, crashes after commit) or per DynamoDB request (the db ones).
type Options struct {
	Seed               uint64
	Charges            int
	WalletsPerCurrency int
	Workers            int
	ResendProb         float64 // a marketplace sends the same charge again
	ConflictProb       float64 // a marketplace reuses a charge id with another amount
	AttackProb         float64 // an attack beside a charge
	Replays            int     // accepted requests replayed verbatim
	RefundShare        float64 // succeeded charges that get a refund (0: no refund phase)

	DupProb       float64
	DupMax        int
	LateMaxMs     int
	ReplyLostProb float64

	CrashAfterCommitProb float64
	CrashEveryMs         int // a random kill this often (0: none)
	CrashDownMs          int

	DBThrottleProb  float64
	DB500BeforeProb float64
	DB500AfterProb  float64
	DBRestarts      int
	DBDownMs        int // kept down this long beyond the stop

	// Top-ups: how many, and how the operator behaves. The function gives
	// up on a submit after OperatorTimeoutMs; the simulated operator
	// answers after OperatorLatencyMs plus up to OperatorJitterMs, loses
	// answers (request taken), answers pending, fails; the flapping
	// operators go down and up every OperatorFlapMs. TopupSettleMs bounds
	// the reconcile ticks at the end.
	Topups              int
	OperatorTimeoutMs   int
	OperatorLatencyMs   int
	OperatorJitterMs    int
	OperatorFailureRate float64
	OperatorUnknownRate float64
	OperatorPendingRate float64
	OperatorResolveMs   int
	OperatorFlapMs      int
	TopupSettleMs       int

	// InsiderScreened also posts unsigned charge.screened events straight
	// onto the Broker: charge must refuse them.
	InsiderScreened bool
	// BackoffScale shrinks the Broker's retry waits (1 = as on the
	// cluster: 0.2 s doubling to 102.4 s).
	BackoffScale  float64
	WaitTimeoutMs int

	Root     string       // repository root; "" = ddblocal.RepoRoot()
	Logger   *slog.Logger // the system's logs; nil discards
	Progress io.Writer    // one line per phase; nil discards
}

// Full is the default of `sebelas chaos`.
func Full() Options {
	return Options{
		Seed: 1, Charges: 2_000, WalletsPerCurrency: 10, Workers: 12,
		ResendProb: 0.08, ConflictProb: 0.02, AttackProb: 0.05, Replays: 20, RefundShare: 0.25,
		DupProb: 0.3, DupMax: 3, LateMaxMs: 2_000, ReplyLostProb: 0.05,
		CrashAfterCommitProb: 0.003, CrashEveryMs: 10_000, CrashDownMs: 300, InsiderScreened: true,
		DBThrottleProb: 0.05, DB500BeforeProb: 0.02, DB500AfterProb: 0.02, DBRestarts: 2, DBDownMs: 2_000,
		Topups: 200, OperatorTimeoutMs: 600, OperatorLatencyMs: 50, OperatorJitterMs: 900,
		OperatorFailureRate: 0.1, OperatorUnknownRate: 0.1, OperatorPendingRate: 0.2, OperatorResolveMs: 1_500,
		OperatorFlapMs: 1_500, TopupSettleMs: 120_000,
		BackoffScale: 0.25, WaitTimeoutMs: waitTimeoutMsDefault,
	}
}

// Short is the bounded form the tests run (well under a minute here).
func Short() Options {
	o := Full()
	o.Charges, o.WalletsPerCurrency, o.Workers, o.Replays, o.Topups = 60, 2, 8, 4, 18
	o.DBRestarts, o.DBDownMs, o.CrashEveryMs, o.CrashAfterCommitProb = 1, 0, 3_000, 0.02
	o.LateMaxMs = 500
	o.BackoffScale = 0.15
	return o
}

func (o *Options) validate() error {
	switch {
	case o.Charges < 1 || o.Charges > ChargesMax:
		return fmt.Errorf("charges %d: want 1..%d", o.Charges, ChargesMax)
	case o.Workers < 1 || o.Workers > workersMax:
		return fmt.Errorf("workers %d: want 1..%d", o.Workers, workersMax)
	case o.WalletsPerCurrency < 1 || o.WalletsPerCurrency > walletsMax:
		return fmt.Errorf("wallets per currency %d: want 1..%d", o.WalletsPerCurrency, walletsMax)
	case o.DupMax < 0 || o.DupMax > dupMaxMax:
		return fmt.Errorf("dup max %d: want 0..%d", o.DupMax, dupMaxMax)
	case o.LateMaxMs < 0 || o.LateMaxMs > lateMaxMsMax:
		return fmt.Errorf("late max %d ms: want 0..%d", o.LateMaxMs, lateMaxMsMax)
	case o.DBRestarts < 0 || o.DBRestarts > dbRestartsMax:
		return fmt.Errorf("db restarts %d: want 0..%d", o.DBRestarts, dbRestartsMax)
	case o.DBDownMs < 0 || o.DBDownMs > dbDownMsMax:
		return fmt.Errorf("db down %d ms: want 0..%d", o.DBDownMs, dbDownMsMax)
	case o.CrashDownMs < 0 || o.CrashDownMs > crashDownMsMax:
		return fmt.Errorf("crash down %d ms: want 0..%d", o.CrashDownMs, crashDownMsMax)
	case o.BackoffScale <= 0 || o.BackoffScale > 1:
		return fmt.Errorf("backoff scale %v: want (0, 1]", o.BackoffScale)
	case o.Topups < 0 || o.Topups > ChargesMax:
		return fmt.Errorf("topups %d: want 0..%d", o.Topups, ChargesMax)
	case o.Topups > 0 && (o.OperatorTimeoutMs < 1 || o.OperatorTimeoutMs > operatorMsMax || o.OperatorLatencyMs < 0 || o.OperatorLatencyMs > operatorMsMax ||
		o.OperatorJitterMs < 0 || o.OperatorJitterMs > operatorMsMax || o.OperatorResolveMs < 0 || o.OperatorResolveMs > operatorMsMax ||
		o.OperatorFlapMs < 0 || o.OperatorFlapMs > operatorMsMax):
		return fmt.Errorf("operator timings: want 0..%d ms (the timeout at least 1)", operatorMsMax)
	case o.TopupSettleMs < 0 || o.TopupSettleMs > waitTimeoutMsDefault:
		return fmt.Errorf("topup settle %d ms: want 0..%d", o.TopupSettleMs, waitTimeoutMsDefault)
	}
	for name, p := range map[string]float64{"resend": o.ResendProb, "conflict": o.ConflictProb, "attack": o.AttackProb,
		"refund share": o.RefundShare, "dup": o.DupProb, "operator failure": o.OperatorFailureRate,
		"operator unknown": o.OperatorUnknownRate, "operator pending": o.OperatorPendingRate, "reply lost": o.ReplyLostProb, "crash after commit": o.CrashAfterCommitProb,
		"db throttle": o.DBThrottleProb, "db 500 before": o.DB500BeforeProb, "db 500 after": o.DB500AfterProb} {
		if p < 0 || p > 0.5 {
			return fmt.Errorf("%s probability %v: want 0..0.5 (more is an outage, not chaos)", name, p)
		}
	}
	if o.WaitTimeoutMs <= 0 {
		o.WaitTimeoutMs = waitTimeoutMsDefault
	}
	return nil
}

// victims are the functions the crasher kills: the ones on the money path.
var victims = []string{"fraud", "charge", "refund", "topup", "settle"}

// env is one run.
type env struct {
	o        Options
	log      *slog.Logger
	progress io.Writer
	faults   *counters
	plan     *plan

	dbDir  string
	dbMu   sync.Mutex
	db     *ddblocal.Instance
	proxy  *dbProxy
	dl     *deliveries
	crash  *crasher
	st     *stack.Stack
	client *client

	sent     map[string]int
	answers  map[string][]answer // charge id -> answers of its requests
	refunds  map[string]*refundPlan
	attacks  map[string]int // kind -> accepted (must stay 0)
	replays  map[string]int // answer of each replay
	insiders []cloudevents.Event
	reviews  map[string]string // charge or top-up id -> the reviewer's decision
	topups   []*topupPlan
	keys     signing.DevKeys // the per-role signing keys of this run
	dbDown   time.Duration
	started  time.Time
	cleanup  []func()
	mu       sync.Mutex
}

type refundPlan struct {
	id       string
	chargeID string
	amount   int64
	accepted bool
}

// Run runs one chaos run and returns its report. An error means the run
// could not be carried out; a run whose checks failed returns a report
// with Passed() false.
func Run(ctx context.Context, o Options) (*Report, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	e := &env{o: o, log: o.Logger, progress: o.Progress, faults: &counters{},
		sent: map[string]int{}, answers: map[string][]answer{}, refunds: map[string]*refundPlan{},
		attacks: map[string]int{}, replays: map[string]int{}, reviews: map[string]string{}}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if e.progress == nil {
		e.progress = io.Discard
	}
	if e.o.Root == "" {
		var err error
		if e.o.Root, err = ddblocal.RepoRoot(); err != nil {
			return nil, err
		}
	}
	root := e.o.Root
	start := time.Now()
	e.started = start
	defer e.close()
	if err := e.setUp(ctx, root); err != nil {
		return nil, err
	}
	rep, err := e.run(ctx)
	if rep != nil {
		rep.Elapsed = time.Since(start)
	}
	return rep, err
}

func (e *env) say(format string, args ...any) {
	fmt.Fprintf(e.progress, "chaos: "+format+"\n", args...)
}

func (e *env) setUp(ctx context.Context, root string) error {
	var err error
	if e.dbDir, err = os.MkdirTemp("", "sebelas-chaos-db-"); err != nil {
		return err
	}
	e.say("starting DynamoDB Local on disk (%s) so a restart keeps the data", e.dbDir)
	if e.db, err = ddblocal.Start(ctx, ddblocal.Options{Root: root, DBPath: e.dbDir, SharedDB: true}); err != nil {
		return err
	}
	dbDice := newDice(e.o.Seed, 1)
	if e.proxy, err = newDBProxy(e.db.Endpoint, e.o, dbDice, e.faults); err != nil {
		return err
	}
	e.plan = newPlan(e.o)
	e.topups = e.plan.topupEvents(e.o)
	rulesPath, err := e.fraudRules()
	if err != nil {
		return err
	}
	e.keys = signing.NewDevKeys()
	runCtx := context.WithoutCancel(ctx)
	e.dl = newDeliveries(runCtx, e.o, newDice(e.o.Seed, 2), e.faults, e.log)
	e.crash = newCrasher(e.o, newDice(e.o.Seed, 3), e.faults, victims)
	e.crash.onError = func(err error) { e.say("%v (retrying)", err) }
	scale := e.o.BackoffScale
	e.st, err = stack.Start(ctx, stack.Options{
		Root: root, Endpoint: e.proxy.URL, Table: tableName, Logger: e.log, Keys: &e.keys,
		Env: map[string]string{
			ingress.EnvKeys:      keysText(e.plan.mps),
			ingress.EnvMerchants: merchantsText(e.plan.mps),
			// A DynamoDB Local restart takes seconds; each attempt still
			// gives up after 5 s and the Broker retries.
			table.EnvTimeoutMs:         "5000",
			topup.EnvOperatorTimeoutMs: strconv.Itoa(max(1, e.o.OperatorTimeoutMs)),
			// Reconcile's windows shrunk to the run's scale (each still
			// above the operator timeout, as topup requires): a top-up
			// whose handler was killed is taken up after 3 s, not 30.
			topup.EnvStaleHeldMs:  strconv.Itoa(max(1, e.o.OperatorTimeoutMs) + 2_400),
			topup.EnvRecheckMs:    "1000",
			topup.EnvRequestTTLMs: strconv.Itoa(max(1, e.o.OperatorTimeoutMs) + 9_400),
			topup.EnvPendingMaxMs: "60000",
			fraud.EnvRules:        rulesPath,
		},
		Operator: operator.SimConfig{LatencyMs: e.o.OperatorLatencyMs, JitterMs: e.o.OperatorJitterMs,
			FailureRate: e.o.OperatorFailureRate, UnknownRate: e.o.OperatorUnknownRate, PendingRate: e.o.OperatorPendingRate,
			ResolveMs: e.o.OperatorResolveMs, Seed: e.o.Seed},
		Router: router.Options{
			MaxInFlight: 16,
			HTTPClient:  &http.Client{Transport: e.dl},
			Sleep: func(ctx context.Context, d time.Duration) error {
				t := time.NewTimer(time.Duration(float64(d) * scale))
				defer t.Stop()
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-t.C:
					return nil
				}
			},
		},
		Run: e.crash.run,
	})
	if err != nil {
		return err
	}
	publish := e.st.Router.Publish
	e.dl.publish.Store(&publish)
	u, ok := e.st.Functions["ingress"]
	if !ok {
		return errors.New("the stack runs no ingress")
	}
	e.client = &client{url: u, hc: &http.Client{Timeout: clientTimeoutMs * time.Millisecond},
		rng: rand.New(rand.NewPCG(e.o.Seed, 4)), now: time.Now, sleep: sleepCtx}
	e.say("stack up: %d functions (%v), not built: %v", len(e.st.Functions), sortedKeys(e.st.Functions), e.st.NotBuilt)
	return nil
}

// fraudRules writes the fraud rules of the run: the built-in ones with the
// thresholds that only a load test trips relaxed. Every wallet and device
// of a run is minutes old and pays many times a minute, so the default
// rules would hold or deny most of it (burst, busy, recent device); the run
// is about faults, and the money must move to meet them. The other rules
// stay, and the burst rule still sends the busiest wallets to review.
func (e *env) fraudRules() (string, error) {
	rules := string(fraud.DefaultRulesYAML())
	for _, r := range [][2]string{
		{"recent_device_s: 3600", "recent_device_s: 1"},
		// 20 a minute: the run's busiest wallets still trip it, and fraud's
		// review (and the reviewer's signed decision) is part of the run.
		{"burst_count_1m: 5", "burst_count_1m: 20"},
		{"busy_count_1h: 20", "busy_count_1h: 100000"},
		{"topup_burst_count_1h: 4", "topup_burst_count_1h: 100000"},
	} {
		rules = strings.Replace(rules, r[0], r[1], 1) // a threshold renamed since: left as it is
	}
	path := filepath.Join(e.dbDir, "..", filepath.Base(e.dbDir)+"-fraud-rules.yaml")
	if err := os.WriteFile(path, []byte(rules), 0o600); err != nil {
		return "", err
	}
	e.cleanup = append(e.cleanup, func() { os.Remove(path) })
	return path, nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (e *env) close() {
	if e.st != nil {
		_ = e.st.Close()
	}
	if e.proxy != nil {
		e.proxy.close()
	}
	e.dbMu.Lock()
	if e.db != nil {
		_ = e.db.Stop()
	}
	e.dbMu.Unlock()
	if e.dbDir != "" {
		os.RemoveAll(e.dbDir)
	}
	for _, fn := range e.cleanup {
		fn()
	}
}

func (e *env) faultsOn(on bool) {
	e.proxy.on.Store(on)
	e.dl.on.Store(on)
	e.crash.on.Store(on)
}

func (e *env) run(ctx context.Context) (*Report, error) {
	var phases []Phase
	timed := func(name string, fn func() error) error {
		t0 := time.Now()
		err := fn()
		phases = append(phases, Phase{Name: name, Elapsed: time.Since(t0)})
		return err
	}
	// Cash in under faults: CashIn is idempotent on its id, so the
	// operator's retry until success is the right thing.
	e.faultsOn(true)
	e.say("funding %d wallets in %d currencies (cash-in under DynamoDB faults)", len(e.plan.wallets), len(e.plan.wallets)/e.o.WalletsPerCurrency)
	if err := timed("fund wallets", func() error { return e.fund(ctx) }); err != nil {
		return nil, err
	}

	// Background faults while the money moves: random kills and DynamoDB
	// Local restarts.
	bgCtx, stopBG := context.WithCancel(ctx)
	var bg sync.WaitGroup
	defer func() {
		stopBG()
		bg.Wait()
	}()
	if e.o.CrashEveryMs > 0 {
		bg.Add(1)
		go func() {
			defer bg.Done()
			for sleepCtx(bgCtx, time.Duration(e.o.CrashEveryMs)*time.Millisecond) == nil {
				e.crash.killRandom()
			}
		}()
	}
	if e.o.Topups > 0 {
		bg.Add(1)
		go func() {
			defer bg.Done()
			e.flap(bgCtx)
		}()
	}
	restartErr := make(chan error, 1)
	bg.Add(1)
	go func() {
		defer bg.Done()
		restartErr <- e.restartDB(bgCtx)
	}()

	e.say("phase 1: %d requests to the ingress (%d charges with resends, reuses and attacks) by %d marketplace clients", len(e.plan.requests), e.o.Charges, e.o.Workers)
	err := timed("charges, attacks, replays, insider events (until the Broker is idle)", func() error {
		t0 := time.Now()
		topupsSent := make(chan struct{})
		go func() {
			defer close(topupsSent)
			if e.has("topup") {
				e.sendTopups(ctx)
			}
		}()
		e.sendAll(ctx, e.plan.requests)
		<-topupsSent
		e.replay(ctx)
		e.insider(ctx)
		e.say("phase 1 sent in %s; waiting for every delivery chain", time.Since(t0).Round(time.Millisecond))
		// The restarts belong to the load; let them finish before draining.
		if err := <-restartErr; err != nil {
			return err
		}
		return e.drain(ctx)
	})
	if err != nil {
		return nil, err
	}
	if err := timed("fraud reviews (signed decisions, forged ones beside them)", func() error { return e.reviewPhase(ctx) }); err != nil {
		return nil, err
	}
	if e.o.RefundShare > 0 && e.has("refund") {
		if err := timed("refunds", func() error { return e.refundPhase(ctx) }); err != nil {
			return nil, err
		}
	}
	stopBG()
	bg.Wait()

	// Faults off; whatever is still retrying finishes now.
	e.faultsOn(false)
	if err := timed("drain with faults off", func() error { return e.drain(ctx) }); err != nil {
		return nil, err
	}
	if len(e.topups) > 0 && e.has("topup") {
		err := timed("reconcile ticks until no top-up is held or pending", func() error {
			store, err := e.topupStore(ctx)
			if err != nil {
				return err
			}
			return e.settleTopups(ctx, store)
		})
		if err != nil {
			return nil, err
		}
	}
	e.say("all delivery chains done; checking with a direct client")
	var rep *Report
	err = timed("checks (direct client, audit scan)", func() error {
		var err error
		rep, err = e.check(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	rep.Phases = phases
	return rep, nil
}

func (e *env) has(function string) bool {
	_, ok := e.st.Functions[function]
	return ok
}

// fund credits every wallet once, retrying through the injected faults.
func (e *env) fund(ctx context.Context) error {
	for _, w := range e.plan.wallets {
		amt := money.Amount{Minor: w.funded, Currency: w.cur}
		if err := retry(ctx, func() error {
			_, err := e.st.Ledger.CashIn(ctx, "chaos-fund-"+w.id, w.id, amt, "chaos")
			return err
		}); err != nil {
			return fmt.Errorf("fund %s: %w", w.id, err)
		}
		if w.frozen {
			if err := retry(ctx, func() error { return e.st.Ledger.SetStatus(ctx, w.id, w.cur, ledger.WalletFrozen) }); err != nil {
				return fmt.Errorf("freeze %s: %w", w.id, err)
			}
		}
	}
	return nil
}

// retry calls fn until it succeeds or fails permanently, at most
// clientAttemptsMax times.
func retry(ctx context.Context, fn func() error) error {
	var err error
	for i := range clientAttemptsMax {
		if err = fn(); err == nil {
			return nil
		}
		if isPermanent(err) {
			return err
		}
		if serr := sleepCtx(ctx, time.Duration(min(clientBackoffMsMax, clientBackoffMsMin<<min(i, 6)))*time.Millisecond); serr != nil {
			return serr
		}
	}
	return err
}

// restartDB stops DynamoDB Local and starts it again on the same files,
// DBRestarts times, spread over the first seconds of the load.
func (e *env) restartDB(ctx context.Context) error {
	d := newDice(e.o.Seed, 5)
	for i := range e.o.DBRestarts {
		if sleepCtx(ctx, time.Duration(500+d.intN(1500))*time.Millisecond) != nil {
			return nil
		}
		t0 := time.Now()
		e.dbMu.Lock()
		err := e.db.Stop()
		e.dbMu.Unlock()
		if err != nil {
			return fmt.Errorf("chaos: stop DynamoDB Local: %w", err)
		}
		e.faults.add(FaultDBRestart)
		_ = sleepCtx(context.WithoutCancel(ctx), time.Duration(e.o.DBDownMs)*time.Millisecond)
		inst, err := ddblocal.Start(context.WithoutCancel(ctx), ddblocal.Options{Root: e.o.Root, DBPath: e.dbDir, SharedDB: true})
		if err != nil {
			return fmt.Errorf("chaos: restart %d of DynamoDB Local: %w", i+1, err)
		}
		e.dbMu.Lock()
		e.db = inst
		e.dbMu.Unlock()
		if err := e.proxy.setBackend(inst.Endpoint); err != nil {
			return err
		}
		down := time.Since(t0)
		e.mu.Lock()
		e.dbDown += down
		e.mu.Unlock()
		e.say("DynamoDB Local restart %d/%d: down %s", i+1, e.o.DBRestarts, down.Round(time.Millisecond))
	}
	return nil
}

// sendAll sends requests with Workers concurrent clients.
func (e *env) sendAll(ctx context.Context, reqs []request) {
	work := make(chan int)
	var wg sync.WaitGroup
	for w := range e.o.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				r := reqs[i]
				a := e.client.send(ctx, r, i+w)
				e.record(r, a)
			}
		}()
	}
	for i := range reqs {
		work <- i
	}
	close(work)
	wg.Wait()
}

func (e *env) record(r request, a answer) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.sent[r.kind]++
	switch r.kind {
	case kindRefund, kindRefundRe:
		if a.accepted() {
			e.refunds[r.refundID].accepted = true
		}
		e.answers["refund:"+r.refundID] = append(e.answers["refund:"+r.refundID], a)
		return
	}
	if e.plan.charges[r.chargeID].attack != "" && a.accepted() {
		e.attacks[r.kind]++
	}
	e.answers[r.chargeID] = append(e.answers[r.chargeID], a)
}

// replay sends accepted requests again, byte for byte: every one must be
// refused (401 replayed, or 503 if the replay record could not be read).
func (e *env) replay(ctx context.Context) {
	var raws []*rawRequest
	e.mu.Lock()
	for _, id := range sortedKeys(e.answers) {
		for _, a := range e.answers[id] {
			if a.raw != nil && len(raws) < e.o.Replays {
				raws = append(raws, a.raw)
			}
		}
	}
	e.mu.Unlock()
	for _, raw := range raws {
		a := e.client.resend(ctx, raw)
		e.mu.Lock()
		e.sent[attackReplay]++
		key := fmt.Sprintf("%d %s", a.status, a.reason)
		e.replays[key]++
		if a.accepted() {
			e.attacks[attackReplay]++
		}
		e.mu.Unlock()
	}
}

// insider posts events straight onto the Broker, as someone on the cluster
// network could: malformed ones (they must end in the dead-letter sink with
// a reason) and, with InsiderScreened, unsigned charge.screened events for
// funded wallets (charge must refuse them).
func (e *env) insider(ctx context.Context) {
	n := max(2, e.o.Charges/100)
	for i := range n {
		ev, err := events.NewEvent(events.TypeChargeRequested, "/insider", events.ChargeRequested{
			ChargeID: fmt.Sprintf("cx-%d-bad-%d", e.o.Seed, i), Marketplace: "mp-alpha", MerchantID: "m-alpha-1",
			PayerWallet: e.plan.wallets[0].id, Amount: 1, Currency: string(e.plan.wallets[0].cur), RequestedAt: time.Now().UTC()})
		if err != nil {
			panic(err)
		}
		ev.DataEncoded = []byte(fmt.Sprintf(`{"charge_id":"cx-%d-bad-%d","amount":-5}`, e.o.Seed, i))
		e.publishInsider(ctx, insiderMalformed, ev)
	}
	if !e.o.InsiderScreened {
		return
	}
	for i := range n {
		w := e.plan.wallets[i%len(e.plan.wallets)]
		c := &chargePlan{id: fmt.Sprintf("cx-%d-ins-%d", e.o.Seed, i), mp: e.plan.mps[0], merchant: "m-alpha-1",
			payer: w, amount: max(1, w.funded/10), attack: insiderScreened}
		e.mu.Lock()
		e.plan.charges[c.id] = c
		e.mu.Unlock()
		ev, err := events.NewEvent(events.TypeChargeScreened, "/sebelas/fraud", events.ChargeScreened{
			Charge: events.ChargeRequested{ChargeID: c.id, Marketplace: c.mp.id, MerchantID: c.merchant, PayerWallet: w.id,
				Amount: c.amount, Currency: string(w.cur), RequestedAt: time.Now().UTC()},
			Screening: events.Screening{Decision: events.DecisionAllow, Reasons: []string{}}})
		if err != nil {
			panic(err)
		}
		e.publishInsider(ctx, insiderScreened, ev)
	}
	e.roleInsider(ctx) // roles.go: real keys of the wrong role
}

func (e *env) publishInsider(ctx context.Context, kind string, ev cloudevents.Event) {
	e.mu.Lock()
	e.sent[kind]++
	e.insiders = append(e.insiders, ev)
	e.mu.Unlock()
	_ = retry(ctx, func() error { return e.st.Router.Publish(ctx, ev) })
}

// drain waits until no copy is pending and the Broker is idle, twice in a
// row (a copy may start a chain, a chain may make a copy).
func (e *env) drain(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(e.o.WaitTimeoutMs)*time.Millisecond)
	defer cancel()
	for {
		if err := e.dl.waitCopies(ctx); err != nil {
			return fmt.Errorf("waiting for duplicates: %w", err)
		}
		if err := e.st.Router.Wait(ctx); err != nil {
			return fmt.Errorf("waiting for the Broker: %w", err)
		}
		if e.dl.pending.Load() == 0 {
			return nil
		}
	}
}

// refundPhase refunds part of the succeeded charges through the ingress:
// partial, full and too-large refunds, some sent twice.
func (e *env) refundPhase(ctx context.Context) error {
	rng := rand.New(rand.NewPCG(e.o.Seed, 6))
	verify, err := e.directLedger(ctx)
	if err != nil {
		return err
	}
	var reqs []request
	for _, id := range sortedKeys(e.plan.charges) {
		c := e.plan.charges[id]
		if c.attack != "" || rng.Float64() >= e.o.RefundShare {
			continue
		}
		rec, ok, err := verify.GetCharge(ctx, id)
		if err != nil {
			return err
		}
		if !ok || rec.Status != ledger.ChargeSucceeded {
			continue
		}
		// Half partial, a quarter full, a quarter more than the charge
		// (must be rejected, moving nothing).
		var amount int64
		switch x := rng.Float64(); {
		case x < 0.5:
			amount = max(1, rec.Amount/3)
		case x < 0.75:
			amount = rec.Amount
		default:
			amount = rec.Amount + 1
		}
		rp := &refundPlan{id: "rx-" + id, chargeID: id, amount: amount}
		e.refunds[rp.id] = rp
		r := refundRequest(c, rp.id, amount)
		reqs = append(reqs, r)
		if rng.Float64() < 0.3 {
			rr := r
			rr.kind = kindRefundRe
			reqs = append(reqs, rr)
		}
	}
	rng.Shuffle(len(reqs), func(i, j int) { reqs[i], reqs[j] = reqs[j], reqs[i] })
	e.say("phase 2: %d refund requests for %d succeeded charges", len(reqs), len(e.refunds))
	e.sendAll(ctx, reqs)
	return e.drain(ctx)
}

// reviewPhase plays the risk team: every charge fraud held for review gets
// a signed charge.reviewed, approve or reject, through the Broker under the
// same faults. Before each rejection an insider posts a forged, unsigned
// approval: charge must refuse it (dead letter), or the money would move
// against the reviewer's decision.
func (e *env) reviewPhase(ctx context.Context) error {
	verify, err := e.directLedger(ctx)
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(e.o.Seed, 7))
	var held []string
	for _, id := range sortedKeys(e.plan.charges) {
		if e.plan.charges[id].attack != "" {
			continue
		}
		rec, ok, err := verify.GetCharge(ctx, id)
		if err != nil {
			return err
		}
		if ok && rec.Status == ledger.ChargeInReview {
			held = append(held, id)
		}
	}
	var heldTopups []string
	if len(e.topups) > 0 {
		store, err := e.topupStore(ctx)
		if err != nil {
			return err
		}
		for _, tp := range e.topups {
			rec, ok, err := store.Get(ctx, tp.id)
			if err != nil {
				return err
			}
			if ok && rec.Status == topup.StatusReview {
				heldTopups = append(heldTopups, tp.id)
			}
		}
	}
	if len(held)+len(heldTopups) == 0 {
		return nil
	}
	e.say("phase 2: %d charges and %d top-ups held for review: signed decisions, and a forged approval before every rejection", len(held), len(heldTopups))
	for _, id := range heldTopups {
		decision := events.ReviewReject
		if rng.IntN(2) == 0 {
			decision = events.ReviewApprove
		}
		e.reviews[id] = decision
		if decision == events.ReviewReject {
			forged, err := events.NewEvent(events.TypeTopupReviewed, reviewSource, events.TopupReviewed{
				TopupID: id, Decision: events.ReviewApprove, Reviewer: "mallory", DecidedAt: time.Now().UTC()})
			if err != nil {
				panic(err)
			}
			e.publishInsider(ctx, insiderTopupReviewed, forged)
		}
		ev, err := events.NewEvent(events.TypeTopupReviewed, reviewSource, events.TopupReviewed{
			TopupID: id, Decision: decision, Reviewer: "risk-analyst-1", Note: "chaos", DecidedAt: time.Now().UTC()})
		if err != nil {
			panic(err)
		}
		if err := e.keys.Sign(&ev, time.Now()); err != nil {
			return err
		}
		e.mu.Lock()
		e.sent["review: signed topup.reviewed ("+decision+")"]++
		e.mu.Unlock()
		if err := retry(ctx, func() error { return e.st.Router.Publish(ctx, ev) }); err != nil {
			return err
		}
	}
	for _, id := range held {
		approve := rng.IntN(2) == 0
		decision := events.ReviewReject
		if approve {
			decision = events.ReviewApprove
		}
		e.reviews[id] = decision
		if !approve {
			forged, err := events.NewEvent(events.TypeChargeReviewed, reviewSource, events.ChargeReviewed{
				ChargeID: id, Decision: events.ReviewApprove, Reviewer: "mallory", DecidedAt: time.Now().UTC()})
			if err != nil {
				panic(err)
			}
			e.publishInsider(ctx, insiderReviewed, forged)
		}
		ev, err := events.NewEvent(events.TypeChargeReviewed, reviewSource, events.ChargeReviewed{
			ChargeID: id, Decision: decision, Reviewer: "risk-analyst-1", Note: "chaos", DecidedAt: time.Now().UTC()})
		if err != nil {
			panic(err)
		}
		if err := e.keys.Sign(&ev, time.Now()); err != nil {
			return err
		}
		e.mu.Lock()
		e.sent["review: signed charge.reviewed ("+decision+")"]++
		e.mu.Unlock()
		if err := retry(ctx, func() error { return e.st.Router.Publish(ctx, ev) }); err != nil {
			return err
		}
	}
	return e.drain(ctx)
}

// reviewSource is the source the risk team's tool uses (triggers.yaml).
const reviewSource = "/sebelas/review"

// topupStore is the top-up store on a client that bypasses the fault proxy.
func (e *env) topupStore(ctx context.Context) (*topup.Store, error) {
	e.dbMu.Lock()
	endpoint := e.db.Endpoint
	e.dbMu.Unlock()
	db, err := table.NewClient(ctx, table.Config{Endpoint: endpoint, Table: tableName, MaxAttempts: 5, TimeoutMs: 10_000})
	if err != nil {
		return nil, err
	}
	return topup.NewStore(db, tableName, ledger.New(db, tableName, nil), nil), nil
}

// directLedger is a ledger on a client that bypasses the fault proxy.
func (e *env) directLedger(ctx context.Context) (*ledger.Store, error) {
	e.dbMu.Lock()
	endpoint := e.db.Endpoint
	e.dbMu.Unlock()
	db, err := table.NewClient(ctx, table.Config{Endpoint: endpoint, Table: tableName, MaxAttempts: 5, TimeoutMs: 10_000})
	if err != nil {
		return nil, err
	}
	return ledger.New(db, tableName, nil), nil
}
