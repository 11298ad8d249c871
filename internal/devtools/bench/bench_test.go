package bench_test

import (
	"bytes"
	"context"
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sebelas/sebelas/internal/devtools/bench"
	"github.com/sebelas/sebelas/internal/devtools/burst"
	"github.com/sebelas/sebelas/internal/devtools/ddblocal"
	"github.com/sebelas/sebelas/internal/devtools/ddbtest"
	"github.com/sebelas/sebelas/internal/devtools/router"
	"github.com/sebelas/sebelas/internal/devtools/stack"
	"github.com/sebelas/sebelas/internal/ledger"
	"github.com/sebelas/sebelas/internal/money"
	"github.com/sebelas/sebelas/internal/signing"
	"github.com/sebelas/sebelas/internal/table"
)

func TestMain(m *testing.M) { ddbtest.Main(m) }

func smallProfile() burst.Profile {
	p := burst.DefaultProfile(2026)
	p.Payers, p.Merchants = 20, 20
	return p
}

// TestBenchSmoke runs both phases for a second each on DynamoDB Local and
// checks what the report rests on: charges went through both ways, both
// phases sent the same kinds of DynamoDB operations (the raw ceiling
// mirrors the path), every successful charge wrote its own charge item
// once, the unsettled index's shards were seen, and the report and
// its plots are written and well-formed.
func TestBenchSmoke(t *testing.T) {
	ctx := context.Background()
	res, err := bench.Run(ctx, bench.Options{
		Endpoint: ddbtest.Endpoint(t), Concurrency: 2, PhaseDuration: time.Second, Rounds: 1,
		Warmup: -1, Profile: smallProfile(), Seed: 3, ColdRuns: 0, Warm: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, ph := range []bench.Phase{res.Bare, res.Raw, res.Path} {
		if ph.OK == 0 || ph.Throughput <= 0 || ph.Latency.P50 <= 0 {
			t.Errorf("%s: %d charges, %.1f/s, p50 %v: want some", ph.Name, ph.OK, ph.Throughput, ph.Latency.P50)
		}
	}
	// The ledger's transaction and fraud's counter in both phases.
	for _, label := range []string{"TransactWriteItems (charge item)", "UpdateItem (velocity counter)"} {
		if res.Raw.RoundTrips[label] == 0 || res.Path.RoundTrips[label] == 0 {
			t.Errorf("%s: raw %d, path %d round trips: want both", label, res.Raw.RoundTrips[label], res.Path.RoundTrips[label])
		}
	}
	// Warm: every payer is established, so fraud never writes a device item
	// and the bare phase is the ledger's transaction alone.
	for _, ph := range []bench.Phase{res.Raw, res.Path} {
		if n := ph.RoundTrips["UpdateItem (device counter)"]; n != 0 {
			t.Errorf("%s: %d device writes in warm mode, want none", ph.Name, n)
		}
	}
	for label := range res.Bare.RoundTrips {
		if label != "TransactWriteItems (charge item)" && !strings.HasPrefix(label, "Query") && !strings.HasPrefix(label, "GetItem") {
			t.Errorf("bare phase sent %s", label)
		}
	}
	// Every successful charge of the path has its charge item written
	// exactly once (a charge id is never reused across phases or runs).
	for _, k := range res.Path.Keys {
		if strings.HasPrefix(k.Key, "C#") && k.Writes != 1 {
			t.Errorf("%s written %d times", k.Key, k.Writes)
		}
	}
	if len(res.Path.IndexShards) == 0 {
		t.Error("no unsettled index shard seen in the path")
	}
	if res.ChargeBytes == 0 || res.BalanceByte == 0 || res.CountersBytes == 0 {
		t.Errorf("item sizes %d, %d and %d: want all read back", res.ChargeBytes, res.BalanceByte, res.CountersBytes)
	}
	if len(res.Autoscale) == 0 {
		t.Errorf("no autoscaler simulation: %s", res.AutoErr)
	}

	dir := t.TempDir()
	if err := bench.WriteReport(dir, res, "go test"); err != nil {
		t.Fatal(err)
	}
	report, err := os.ReadFile(filepath.Join(dir, bench.ReportFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"## Targets", "## Busiest partition keys", "go test", "throughput.svg",
		"of the bare charge transaction", "WCU per payment, all in"} {
		if !bytes.Contains(report, []byte(want)) {
			t.Errorf("report lacks %q", want)
		}
	}
	for _, line := range strings.Split(string(report), "\n") {
		if strings.Contains(line, "all in") || strings.Contains(line, "operations per payment") || strings.Contains(line, "bare charge") {
			t.Log(line)
		}
	}
	svgs, _ := filepath.Glob(filepath.Join(dir, "*.svg"))
	if len(svgs) < 5 {
		t.Errorf("%d plots written, want at least 5", len(svgs))
	}
	for _, f := range svgs {
		b, _ := os.ReadFile(f)
		d := xml.NewDecoder(bytes.NewReader(b))
		for {
			_, err := d.Token()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Errorf("%s is not well-formed: %v", filepath.Base(f), err)
				break
			}
		}
	}
}

// TestBurstAgainstStack replays a few seconds of the festival's charges
// into the local Broker with burst.Send and checks the money: every charge
// sent is stored with an outcome, and the payers' balances fell by exactly
// the charges that succeeded.
func TestBurstAgainstStack(t *testing.T) {
	ctx := context.Background()
	_, name := ddbtest.New(t)
	st, err := stack.Start(ctx, stack.Options{
		Endpoint: ddbtest.Endpoint(t), Table: name,
		// burst posts unsigned marketplace requests straight to the local
		// Broker, as against `sebelas dev --accept-unsigned`.
		Env:    map[string]string{signing.EnvDevAcceptUnsigned: "true", table.EnvTimeoutMs: "10000"},
		Router: router.Options{Sleep: func(context.Context, time.Duration) error { return nil }},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	p := smallProfile()
	p.Mix = burst.Mix{burst.KindCharge: 1}
	if err := burst.FundPayers(ctx, st.Ledger, p, 8); err != nil {
		t.Fatal(err)
	}
	total := func() map[money.Currency]int64 {
		sums := map[money.Currency]int64{}
		for i, m := range p.Markets {
			for n := range p.PayersIn(i) {
				b, _, err := st.Ledger.GetBalance(ctx, burst.PayerID(m.Code, n), m.Currency)
				if err != nil {
					t.Fatal(err)
				}
				sums[m.Currency] += b.Balance
			}
		}
		return sums
	}
	before := total()

	from, to := p.DefaultWindow()
	g, err := burst.NewGenerator(burst.Plan{Profile: p, From: from, To: to, Compression: 10_000, PeakPerSec: 100, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	const sent = 40
	stats, err := burst.Send(ctx, g, burst.SendOptions{URL: st.IngressURL, Run: "smoke", MaxRequests: sent, MaxDuration: 20 * time.Second, InFlightMax: 8})
	if err != nil {
		t.Fatal(err)
	}
	if stats.Sent != sent || stats.Accepted != sent {
		t.Fatalf("sent %d, accepted %d: want %d each (%v)", stats.Sent, stats.Accepted, sent, stats.Status)
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := st.Router.Wait(wctx); err != nil {
		t.Fatal(err)
	}
	charged := map[money.Currency]int64{}
	stored := 0
	for seq := range int64(sent) {
		c, ok, err := st.Ledger.GetCharge(ctx, burst.ChargeID("smoke", seq))
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			continue
		}
		stored++
		if c.Status == ledger.ChargeSucceeded {
			charged[money.Currency(c.Currency)] += c.Amount
		}
	}
	if stored != sent {
		t.Errorf("%d of %d charges stored with an outcome", stored, sent)
	}
	after := total()
	for cur, b := range before {
		if diff := cmp.Diff(b-charged[cur], after[cur]); diff != "" {
			t.Errorf("%s: before - charged != after (-want +got):\n%s", cur, diff)
		}
	}
}

// TestSettingsOverrides reads the Services' autoscaling settings from
// infra/knative and checks that an override replaces exactly what it names.
func TestSettingsOverrides(t *testing.T) {
	root, err := ddblocal.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	base, err := bench.Settings(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	over, err := bench.ParseOverrides("charge.min-scale=7,charge.containerConcurrency=9")
	if err != nil {
		t.Fatal(err)
	}
	got, err := bench.Settings(root, over)
	if err != nil {
		t.Fatal(err)
	}
	want := base["charge"]
	want.MinScale, want.ContainerConcurrency = 7, 9
	if diff := cmp.Diff(want, got["charge"]); diff != "" {
		t.Errorf("charge (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(base["fraud"], got["fraud"]); diff != "" {
		t.Errorf("fraud changed (-want +got):\n%s", diff)
	}
	for _, bad := range []string{"charge", "charge.min-scale", "min-scale=1", "charge.=1"} {
		if _, err := bench.ParseOverrides(bad); err == nil {
			t.Errorf("ParseOverrides(%q) accepted", bad)
		}
	}
}
