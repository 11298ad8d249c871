// Package bench is the engine of `sebelas bench`: in one process and one
// run it measures
//
//   - (a) the raw ceiling: the DynamoDB operations the charge path performs
//     for one charge (rawSteps), issued directly against DynamoDB Local by N
//     workers;
//   - (b) the full path: charge.requested POSTed over HTTP to the local
//     Broker (internal/devtools/stack: the manifests' Triggers, fraud, charge, their
//     replies) by the same N workers, each waiting for its charge's outcome;
//
// on the same DynamoDB Local and the same seeded events (the festival
// profile of internal/devtools/burst, drawn at the markets' midnights: the
// flagship-store profile), interleaved in rounds so that the other load of
// a shared machine falls on both. It reports throughput, p50/p99/p99.9
// latency, the ratio (b)/(a), DynamoDB round trips and capacity per charge,
// the busiest partition keys with their measured write rates and their
// projected rates at the profile's real-world volume, the functions' cold
// starts and binary sizes, and a simulation of the Knative autoscaler over
// the festival with the settings of infra/knative. WriteReport renders it
// as markdown with SVG plots.
package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/sebelas/sebelas/internal/devtools/burst"
	"github.com/sebelas/sebelas/internal/devtools/ddblocal"
	"github.com/sebelas/sebelas/internal/devtools/router"
	"github.com/sebelas/sebelas/internal/devtools/stack"
	"github.com/sebelas/sebelas/internal/fraud"
	"github.com/sebelas/sebelas/internal/ledger"
	"github.com/sebelas/sebelas/internal/money"
	"github.com/sebelas/sebelas/internal/table"
)

// Bounds of a run: the machine is shared, a benchmark must end.
const (
	ConcurrencyMax   = 256
	PhaseDurationMax = 5 * time.Minute
	RoundsMax        = 10
	WarmupMax        = time.Minute
	ColdRunsMax      = 100
	// concurrencyDefault: DynamoDB Local serializes much of its work; 16
	// in flight keeps it busy on two cores without only measuring queues.
	concurrencyDefault   = 16
	phaseDurationDefault = 12 * time.Second
	roundsDefault        = 2
	warmupDefault        = 3 * time.Second
	// peakWindowDefault: events are drawn in the first minute after each
	// market's midnight, where the flagship's share is at its highest
	// (30%, decaying with a 15 min e-folding time): the projections take
	// the market's rate at that very minute.
	peakWindowDefault = time.Minute
	// localTimeoutMs bounds one DynamoDB attempt of every client of the
	// run: DynamoDB Local on a loaded two-core machine can take seconds.
	localTimeoutMs = 10_000
	// fundInFlight: funding is set-up, not measured; gentle on the store.
	fundInFlight = 8
	// gsiAttr is the attribute holding the index's partition key
	// (infra/dynamodb/table.json).
	gsiAttr = "gsi1pk"
)

// Options say what to run.
type Options struct {
	// Root is the repository root (DynamoDB Local's cache, infra/knative,
	// functions/ for the cold-start builds); empty means ddblocal.RepoRoot.
	Root string
	// Endpoint is a running DynamoDB-compatible store; empty starts
	// DynamoDB Local.
	Endpoint string
	// Concurrency is the number of workers of both phases.
	Concurrency int
	// PhaseDuration is one round of one phase; Rounds alternate (a), (b).
	PhaseDuration time.Duration
	Rounds        int
	// Warmup runs each phase once, unrecorded, before the rounds; zero
	// means the default, negative none.
	Warmup time.Duration
	// Profile is the festival; Payers and Merchants are the generated
	// population. The benchmark sends charges only; the Mix is used to
	// project real-world charge rates.
	Profile burst.Profile
	// PeakWindow: events are drawn this long after each market's midnight.
	PeakWindow time.Duration
	Seed       uint64
	// ColdRuns is how often each function binary is started to measure
	// its start-up; 0 skips building and starting them.
	ColdRuns int
	// ColdOnly measures the cold starts (and simulates the autoscaler)
	// without the two phases.
	ColdOnly bool
	// Warm primes fraud's features before the rounds: every payer's wallet
	// and device seen once, two hours before, as established users are on
	// the festival night. Without it every payer is new (fresh mode).
	Warm bool
	// Progress receives a line per step; nil for none.
	Progress io.Writer
}

func (o *Options) defaults() {
	if o.Concurrency == 0 {
		o.Concurrency = concurrencyDefault
	}
	if o.PhaseDuration == 0 {
		o.PhaseDuration = phaseDurationDefault
	}
	if o.Rounds == 0 {
		o.Rounds = roundsDefault
	}
	if o.Warmup == 0 {
		o.Warmup = warmupDefault
	}
	if o.Profile.Markets == nil {
		o.Profile = burst.DefaultProfile(2026)
	}
	if o.PeakWindow == 0 {
		o.PeakWindow = peakWindowDefault
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
}

// chargesOnly is p sending charges alone.
func chargesOnly(p burst.Profile) burst.Profile {
	p.Mix = burst.Mix{burst.KindCharge: 1}
	return p
}

// Validate checks the options (after defaults).
func (o Options) Validate() error {
	switch {
	case o.Concurrency < 1 || o.Concurrency > ConcurrencyMax:
		return fmt.Errorf("bench: concurrency %d must be 1..%d", o.Concurrency, ConcurrencyMax)
	case o.PhaseDuration < time.Second || o.PhaseDuration > PhaseDurationMax:
		return fmt.Errorf("bench: phase duration %v must be 1s..%v", o.PhaseDuration, PhaseDurationMax)
	case o.Rounds < 1 || o.Rounds > RoundsMax:
		return fmt.Errorf("bench: rounds %d must be 1..%d", o.Rounds, RoundsMax)
	case o.Warmup > WarmupMax:
		return fmt.Errorf("bench: warm-up %v must be 0..%v", o.Warmup, WarmupMax)
	case o.ColdRuns < 0 || o.ColdRuns > ColdRunsMax:
		return fmt.Errorf("bench: cold runs %d must be 0..%d", o.ColdRuns, ColdRunsMax)
	}
	return o.Profile.Validate()
}

// Phase is one phase's measurement over all its rounds.
type Phase struct {
	Name       string
	Ops, OK    int
	Elapsed    time.Duration // measured time, rounds together
	Throughput float64       // successful charges per second
	Latency    Latency
	// Stage is the full path's latency to fraud's reply.
	Stage    Latency
	Series   []Bucket
	ByMarket []MarketPhase
	// Outcomes counts how the charges ended (succeeded, declined with the
	// reason, held for review, timed out, errors).
	Outcomes map[string]int
	// DDB is what DynamoDB saw.
	RoundTrips  map[string]int64 // per operation
	Errors      map[string]int64
	TableCU     map[string]float64
	IndexCU     map[string]float64
	Keys        []KeyStat
	IndexShards []IndexShards
	// Meter is table.Meter's count (raw ceiling only: the functions'
	// clients are theirs).
	Meter *table.MeterSnapshot
	// CPU is the Go process's CPU time (benchmark client, Broker and
	// functions all live in it); StoreCPU is DynamoDB Local's.
	CPU, StoreCPU time.Duration
}

// MarketPhase is one market's share of a phase.
type MarketPhase struct {
	Code    string
	OK      int
	Latency Latency
}

// Result is a whole run.
type Result struct {
	Started    time.Time
	Options    Options
	GoVersion  string
	CPUs       int
	LoadBefore [3]float64
	LoadAfter  [3]float64
	Raw, Path  Phase
	// Bare is phase (0): the ledger's charge transaction alone, the most
	// DynamoDB (Local) allows for a charge.
	Bare        Phase
	RawSteps    []string
	ChargeBytes int // stored size of one successful charge item
	BalanceByte int // stored size of a payer's balance item
	// CountersBytes is the stored size of that payer's fraud counters item
	// (rewritten by every screening).
	CountersBytes int
	Cold          []ColdStart
	ColdErr       string
	// Instances is phase (c): one process per function, no Broker.
	Instances InstancePhase
	Autoscale []FunctionSim
	AutoErr   string
	NotBuilt  []string
}

// Ratio is (b)/(a): the full path's throughput over the raw ceiling's.
func (r *Result) Ratio() float64 {
	if r.Raw.Throughput == 0 {
		return 0
	}
	return r.Path.Throughput / r.Raw.Throughput
}

// BareRatio is (b)/(0): the full path's throughput over the bare charge
// transaction's, what the store allows for a charge and nothing else.
func (r *Result) BareRatio() float64 {
	if r.Bare.Throughput == 0 {
		return 0
	}
	return r.Path.Throughput / r.Bare.Throughput
}

func (r *Result) logf(format string, args ...any) {
	fmt.Fprintf(r.Options.Progress, format+"\n", args...)
}

// Run runs the benchmark.
func Run(ctx context.Context, o Options) (*Result, error) {
	o.defaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.Root == "" {
		root, err := ddblocal.RepoRoot()
		if err != nil {
			return nil, err
		}
		o.Root = root
	}
	res := &Result{Started: time.Now().UTC(), Options: o, GoVersion: runtime.Version(), CPUs: runtime.NumCPU(), LoadBefore: loadavg()}
	res.logf("load average %.2f %.2f %.2f on %d CPUs", res.LoadBefore[0], res.LoadBefore[1], res.LoadBefore[2], res.CPUs)

	if o.ColdOnly {
		dir, err := os.MkdirTemp("", "sebelas-bin-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		res.coldStarts(ctx, dir, "http://127.0.0.1:9")
		res.simulate()
		res.LoadAfter = loadavg()
		return res, ctx.Err()
	}
	endpoint, storePID := o.Endpoint, 0
	if endpoint == "" {
		res.logf("starting DynamoDB Local")
		inst, err := ddblocal.Start(ctx, ddblocal.Options{Root: o.Root, InMemory: true, SharedDB: true})
		if err != nil {
			return nil, fmt.Errorf("DynamoDB Local: %w", err)
		}
		defer inst.Stop()
		endpoint, storePID = inst.Endpoint, inst.PID
	}
	rec, err := startRecorder(endpoint, gsiAttr)
	if err != nil {
		return nil, err
	}
	defer rec.close()

	trk := newTracker()
	tableName := "bench-" + res.Started.Format("20060102-150405")
	st, err := stack.Start(ctx, stack.Options{
		Root: o.Root, Endpoint: rec.url, Table: tableName,
		Builders: wrap(stack.Builders, trk),
		// Fresh keys per role come with the stack. The per-attempt timeout
		// is DynamoDB Local's on a busy two-core machine, not DynamoDB's
		// (the raw client gets the same).
		Env:    map[string]string{table.EnvTimeoutMs: strconv.Itoa(localTimeoutMs)},
		Logger: slog.New(slog.DiscardHandler),
		// Room for every worker's delivery and its retries: the Broker
		// must not be the narrow pipe of the full path.
		Router: router.Options{MaxInFlight: 4 * o.Concurrency, Logger: slog.New(slog.DiscardHandler)},
	})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	res.NotBuilt = st.NotBuilt

	var meter table.Meter
	tc := table.Config{Endpoint: rec.url, Table: tableName, TimeoutMs: localTimeoutMs}
	client, err := table.NewClient(ctx, tc, meter.Option())
	if err != nil {
		return nil, err
	}
	mdb := meteredDB{client, &meter}
	raw := ledger.New(mdb, tableName, nil)
	steps, err := rawSteps(raw, mdb, tableName, money.DefaultLimits())
	if err != nil {
		return nil, err
	}
	for _, s := range steps {
		res.RawSteps = append(res.RawSteps, s.name)
	}

	payers := 0
	for i := range o.Profile.Markets {
		payers += o.Profile.PayersIn(i)
	}
	res.logf("funding %d payers in %d markets", payers, len(o.Profile.Markets))
	if err := burst.FundPayers(ctx, st.Ledger, o.Profile, fundInFlight); err != nil {
		return nil, err
	}

	if o.Warm {
		res.logf("warm mode: priming fraud's features of %d payers (first seen 2 h ago)", payers)
		if err := prime(ctx, mdb, tableName, o.Profile, time.Now().Add(-primeAge)); err != nil {
			return nil, err
		}
	}

	httpClient := &http.Client{Transport: &http.Transport{
		MaxIdleConns: 2 * o.Concurrency, MaxIdleConnsPerHost: 2 * o.Concurrency, IdleConnTimeout: 30 * time.Second,
	}}
	bp := chargesOnly(o.Profile)
	plan := burst.Plan{Profile: bp, PeakPerSec: 1, Seed: o.Seed, AtPeak: o.PeakWindow}
	// One stream of charges for the whole run, phases taking turns on it:
	// payers take turns across phases too, so no payer pays more often
	// than the profile says (fraud's velocity rules count every phase's
	// payments, the raw ceiling's included). Both phases draw from the
	// same distribution.
	g, err := burst.NewGenerator(plan)
	if err != nil {
		return nil, err
	}
	stream := &eventSource{g: g}
	source := func() (*eventSource, error) { return stream, nil }
	runID := func(phase string, round int) string {
		return fmt.Sprintf("bn%s-%s%d", res.Started.Format("150405"), phase, round)
	}
	if o.Warmup > 0 {
		res.logf("warming up: %v of each phase", o.Warmup)
		for _, ph := range []struct {
			name string
			do   op
		}{
			{"wa", rawOp(steps, bp, runID("wa", 0))},
			{"wb", pathOp(httpClient, st.IngressURL, bp, runID("wb", 0), trk, st.Keys)},
		} {
			src, err := source()
			if err != nil {
				return nil, err
			}
			closedLoop(ctx, o.Concurrency, o.Warmup, 0, src, ph.do)
		}
	}

	var rawSamples, pathSamples, bareSamples []sample
	rawDDB, pathDDB, bareDDB := newPhaseDDB(), newPhaseDDB(), newPhaseDDB()
	rawMeter := table.MeterSnapshot{ByOp: map[string]int64{}}
	for round := 1; round <= o.Rounds; round++ {
		for _, ph := range []struct {
			name    string
			phase   *Phase
			samples *[]sample
			ddb     *phaseDDB
			do      op
			meter   bool
		}{
			{"(0) bare", &res.Bare, &bareSamples, bareDDB, rawOp(steps[len(steps)-1:], bp, runID("z", round)), false},
			{"(a) raw", &res.Raw, &rawSamples, rawDDB, rawOp(steps, bp, runID("a", round)), true},
			{"(b) path", &res.Path, &pathSamples, pathDDB, pathOp(httpClient, st.IngressURL, bp, runID("b", round), trk, st.Keys), false},
		} {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			src, err := source()
			if err != nil {
				return nil, err
			}
			offset := time.Duration(round-1) * o.PhaseDuration
			m0, cpu0, store0 := meter.Snapshot(), cpuSelf(), cpuOf(storePID)
			rec.begin()
			t0 := time.Now()
			s := closedLoop(ctx, o.Concurrency, o.PhaseDuration, offset, src, ph.do)
			elapsed := time.Since(t0)
			d := rec.end()
			ph.phase.Elapsed += elapsed
			ph.phase.CPU += cpuSelf() - cpu0
			ph.phase.StoreCPU += cpuOf(storePID) - store0
			if ph.meter {
				md := meter.Snapshot().Sub(m0)
				rawMeter.Calls += md.Calls
				rawMeter.RoundTrips += md.RoundTrips
				rawMeter.Capacity += md.Capacity
				for k, v := range md.ByOp {
					rawMeter.ByOp[k] += v
				}
			}
			mergeDDB(ph.ddb, d, offset)
			*ph.samples = append(*ph.samples, s...)
			ok := 0
			for _, x := range s {
				if x.ok {
					ok++
				}
			}
			res.logf("round %d %-9s %6d charges in %5.1fs: %6.1f/s", round, ph.name, ok, elapsed.Seconds(), float64(ok)/elapsed.Seconds())
		}
	}
	finishPhase(&res.Raw, "raw ceiling", rawSamples, rawDDB, o.Profile)
	res.Raw.Meter = &rawMeter
	finishPhase(&res.Path, "full path", pathSamples, pathDDB, o.Profile)
	finishPhase(&res.Bare, "bare charge transaction", bareSamples, bareDDB, o.Profile)
	if res.Raw.OK == 0 || res.Path.OK == 0 {
		return res, fmt.Errorf("bench: no successful charge (raw %d of %d, path %d of %d): see the report", res.Raw.OK, res.Raw.Ops, res.Path.OK, res.Path.Ops)
	}
	if err := res.itemSizes(ctx, client, tableName, rawDDB); err != nil {
		res.logf("item sizes: %v", err)
	}
	// The load the phases ran under, before the cold-start builds add to it.
	loadAfter := loadavg()
	binDir, err := os.MkdirTemp("", "sebelas-bin-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(binDir)
	res.coldStarts(ctx, binDir, endpoint)
	if len(res.Cold) > 0 {
		res.logf("(c) one instance each of %s, separate processes, no Broker: %v", strings.Join(instanceChain, " and "), o.PhaseDuration)
		res.Instances = measureInstances(ctx, binDir, rec.url, tableName, o.Concurrency, o.PhaseDuration, bp, stream, runID("c", 1))
		if res.Instances.Err != "" {
			res.logf("(c): %s", res.Instances.Err)
		}
	}
	res.simulate()
	res.LoadAfter = loadAfter
	res.projectKeys(rawDDB, pathDDB)
	return res, ctx.Err()
}

// coldStarts builds the function binaries into dir and measures their
// start-up (when ColdRuns > 0). Failures are recorded in the result: they
// are part of the report.
func (r *Result) coldStarts(ctx context.Context, dir, endpoint string) {
	if r.Options.ColdRuns == 0 {
		return
	}
	r.logf("cold starts: building and starting each function %d times", r.Options.ColdRuns)
	cold, err := measureColdStarts(ctx, r.Options.Root, dir, r.Options.ColdRuns, endpoint)
	r.Cold = cold
	if err != nil {
		r.ColdErr = err.Error()
		r.logf("cold starts: %v", err)
	}
}

// simulate runs the autoscaler over the festival with the measured cold
// starts.
func (r *Result) simulate() {
	sims, err := simulateFestival(r.Options.Root, r.Options.Profile, r)
	r.Autoscale = sims
	if err != nil {
		r.AutoErr = err.Error()
		r.logf("autoscale: %v", err)
	}
}

// mergeDDB adds round d into acc, shifting its seconds by offset.
func mergeDDB(acc, d *phaseDDB, offset time.Duration) {
	if d == nil {
		return
	}
	shift := int(offset / time.Second)
	for k, v := range d.roundTrips {
		acc.roundTrips[k] += v
	}
	for k, v := range d.errors {
		acc.errors[k] += v
	}
	for k, v := range d.tableCU {
		acc.tableCU[k] += v
	}
	for k, v := range d.indexCU {
		acc.indexCU[k] += v
	}
	for k, kw := range d.keys {
		a := acc.keys[k]
		if a == nil {
			a = &keyWrites{index: kw.index, perSec: map[int]int64{}}
			acc.keys[k] = a
		}
		a.total += kw.total
		for s, n := range kw.perSec {
			a.perSec[s+shift] += n
		}
	}
}

func finishPhase(ph *Phase, name string, samples []sample, d *phaseDDB, p burst.Profile) {
	ph.Name = name
	ph.Ops = len(samples)
	var lats, stages []time.Duration
	byMarket := make([][]time.Duration, len(p.Markets))
	ph.Outcomes = countOutcomes(samples)
	for _, s := range samples {
		if !s.ok {
			continue
		}
		ph.OK++
		lats = append(lats, s.lat)
		if s.stage > 0 {
			stages = append(stages, s.stage)
		}
		byMarket[s.market] = append(byMarket[s.market], s.lat)
	}
	if ph.Elapsed > 0 {
		ph.Throughput = float64(ph.OK) / ph.Elapsed.Seconds()
	}
	ph.Latency = summarize(lats)
	ph.Stage = summarize(stages)
	ph.Series = series(samples, len(p.Markets))
	for i, m := range p.Markets {
		ph.ByMarket = append(ph.ByMarket, MarketPhase{Code: m.Code, OK: len(byMarket[i]), Latency: summarize(byMarket[i])})
	}
	ph.RoundTrips, ph.Errors, ph.TableCU, ph.IndexCU = d.roundTrips, d.errors, d.tableCU, d.indexCU
}

// outcomeBytesMax bounds an outcome's text in the counts (errors carry
// details that would make every one distinct).
const outcomeBytesMax = 96

func countOutcomes(samples []sample) map[string]int {
	out := map[string]int{}
	for _, s := range samples {
		o := s.outcome
		if len(o) > outcomeBytesMax {
			o = o[:outcomeBytesMax] + "…"
		}
		out[o]++
	}
	return out
}

// itemSizes reads back one successful charge of the raw ceiling and its
// payer's balance: what real DynamoDB would bill is a function of their
// stored sizes.
func (r *Result) itemSizes(ctx context.Context, db *dynamodb.Client, tableName string, written *phaseDDB) error {
	get := func(pk, sk string) (map[string]types.AttributeValue, error) {
		out, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(tableName), ConsistentRead: aws.Bool(true),
			Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: pk}, "sk": &types.AttributeValueMemberS{Value: sk}}})
		if err != nil {
			return nil, err
		}
		if len(out.Item) == 0 {
			return nil, fmt.Errorf("no item %s/%s", pk, sk)
		}
		return out.Item, nil
	}
	str := func(item map[string]types.AttributeValue, name string) string {
		if v, ok := item[name].(*types.AttributeValueMemberS); ok {
			return v.Value
		}
		return ""
	}
	// The item layout is the ledger's; only the keys of a charge and of a
	// balance are spelled here, as DESIGN.md names them.
	for key := range written.keys {
		if !strings.HasPrefix(key, "C#") {
			continue
		}
		c, err := get(key, "C")
		if err != nil {
			return err
		}
		if str(c, "status") != ledger.ChargeSucceeded {
			continue
		}
		b, err := get("W#"+str(c, "payer_wallet"), "BAL#"+str(c, "currency"))
		if err != nil {
			return err
		}
		r.ChargeBytes, r.BalanceByte = table.ItemBytes(c), table.ItemBytes(b)
		r.CountersBytes, err = fraud.NewDynamoStore(db, tableName, nil).CountersBytes(ctx, str(c, "payer_wallet"), str(c, "currency"))
		return err
	}
	return fmt.Errorf("no successful charge written")
}
