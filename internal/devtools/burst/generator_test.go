package burst_test

import (
	"context"
	"math"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sebelas/sebelas/events"
	"github.com/sebelas/sebelas/internal/devtools/burst"
	"github.com/sebelas/sebelas/internal/msisdn"
	"github.com/sebelas/sebelas/internal/topup"
)

func drain(t *testing.T, pl burst.Plan, n int) []burst.Event {
	t.Helper()
	g, err := burst.NewGenerator(pl)
	if err != nil {
		t.Fatal(err)
	}
	var out []burst.Event
	for len(out) < n {
		ev, ok := g.Next()
		if !ok {
			break
		}
		out = append(out, ev)
	}
	return out
}

// within fails unless got is within k standard deviations of a binomial
// proportion p over n draws.
func within(t *testing.T, what string, got, p float64, n int, k float64) {
	t.Helper()
	sd := math.Sqrt(p * (1 - p) / float64(n))
	if math.Abs(got-p) > k*sd+1e-12 {
		t.Errorf("%s = %.4f, want %.4f ± %.4f", what, got, p, k*sd)
	}
}

// TestPeakSkew draws events at the markets' midnights and checks the shares
// against the profile: markets in proportion to their peak rates, kinds by
// the mix, the flagship at 30% of charges, and the other merchants by Zipf
// (rank 2 sells 3/2 as much as rank 3 with exponent 1).
func TestPeakSkew(t *testing.T) {
	p := burst.DefaultProfile(2026)
	const n = 40_000
	evs := drain(t, burst.Plan{Profile: p, PeakPerSec: 100, Seed: 7, AtPeak: time.Nanosecond}, n)
	if len(evs) != n {
		t.Fatalf("got %d events, want %d", len(evs), n)
	}
	var kinds [3]int
	markets := make([]int, len(p.Markets))
	charges, flagship, rank2, rank3 := 0, 0, 0, 0
	for _, ev := range evs {
		kinds[ev.Kind]++
		markets[ev.Market]++
		if ev.Kind != burst.KindCharge {
			continue
		}
		charges++
		switch ev.Merchant {
		case 0:
			flagship++
		case 1:
			rank2++
		case 2:
			rank3++
		}
	}
	total := 0.0
	for i := range p.Markets {
		total += p.PeakRate(i)
	}
	for i, m := range p.Markets {
		within(t, m.Code+" share", float64(markets[i])/n, p.PeakRate(i)/total, n, 4)
	}
	for _, k := range burst.Kinds() {
		within(t, k.String()+" share", float64(kinds[k])/n, p.Mix[k], n, 4)
	}
	within(t, "flagship share of charges", float64(flagship)/float64(charges), 0.30, charges, 4)
	// Among rank 2 and rank 3 sales, rank 2 takes (1/2)/(1/2+1/3) = 3/5.
	within(t, "rank 2 share of ranks 2+3", float64(rank2)/float64(rank2+rank3), 0.6, rank2+rank3, 4)
}

// TestPayersTakeTurns checks that a market's payers pay in turn (no payer
// twice within PayersIn consecutive payments of its market, as many people
// each paying now and then), and that payer counts follow the markets'
// peaks: Indonesia (the busiest) has Payers, Malaysia (weight 0.25) a
// quarter.
func TestPayersTakeTurns(t *testing.T) {
	p := burst.DefaultProfile(2026)
	p.Payers = 40
	evs := drain(t, burst.Plan{Profile: p, PeakPerSec: 100, Seed: 9, AtPeak: time.Minute}, 5000)
	last := map[[2]int]int{} // (market, payer) -> index among the market's payments
	seen := make([]int, len(p.Markets))
	for _, ev := range evs {
		if ev.Kind == burst.KindRefund {
			continue
		}
		k := [2]int{ev.Market, ev.Payer}
		if j, ok := last[k]; ok && seen[ev.Market]-j < p.PayersIn(ev.Market) {
			t.Fatalf("%s payer %d paid again after %d payments of its market, want %d", p.Markets[ev.Market].Code, ev.Payer, seen[ev.Market]-j, p.PayersIn(ev.Market))
		}
		last[k] = seen[ev.Market]
		seen[ev.Market]++
	}
	if got := []int{p.PayersIn(p.MarketIndex("ID")), p.PayersIn(p.MarketIndex("MY"))}; !cmp.Equal(got, []int{40, 10}) {
		t.Errorf("payers in ID and MY = %v, want [40 10]", got)
	}
}

// TestTimelineFollowsProfile plays the default window (4.5 h at 60x: 270 s
// of wall time) and checks the count against the integral of the scaled
// rate, and that every market's traffic jumps at its own midnight.
func TestTimelineFollowsProfile(t *testing.T) {
	p := burst.DefaultProfile(2026)
	from, to := p.DefaultWindow()
	pl := burst.Plan{Profile: p, From: from, To: to, Compression: 60, PeakPerSec: 200, Seed: 11}
	if got := pl.WallDuration(); got != 270*time.Second {
		t.Fatalf("WallDuration = %v, want 270s", got)
	}
	evs := drain(t, pl, 1_000_000)
	// Expected count: the integral over wall time of Scale * TotalRate.
	want := 0.0
	const step = 100 * time.Millisecond
	for w := time.Duration(0); w < pl.WallDuration(); w += step {
		want += pl.Scale() * p.TotalRate(pl.FestivalTime(w+step/2)) * step.Seconds()
	}
	if got := float64(len(evs)); math.Abs(got-want) > 4*math.Sqrt(want) {
		t.Errorf("events = %.0f, want %.0f ± %.0f (Poisson, 4 sd)", got, want, 4*math.Sqrt(want))
	}
	for i := 1; i < len(evs); i++ {
		if evs[i].Wall < evs[i-1].Wall || evs[i].Seq != evs[i-1].Seq+1 {
			t.Fatalf("event %d out of order", i)
		}
	}
	// Ten festival minutes before and after each midnight.
	for i, m := range p.Markets {
		mid := p.Midnight(i)
		before, after := 0, 0
		for _, ev := range evs {
			if ev.Market != i {
				continue
			}
			switch d := ev.At.Sub(mid); {
			case d >= -10*time.Minute && d < 0:
				before++
			case d >= 0 && d < 10*time.Minute:
				after++
			}
		}
		// Expected ratio: 26 x (0.85 + 10.8 x mean of e^-t/20min over
		// 10 min = 0.787) ≈ 243. Asking for 50x leaves room for the
		// Poisson noise of a handful of baseline events.
		if after < 50*max(before, 1) {
			t.Errorf("%s: %d events in the 10 min after midnight, %d before: want a jump of ~243x", m.Code, after, before)
		}
	}
}

// TestReproducible checks that a seed fixes the events, and another seed
// changes them.
func TestReproducible(t *testing.T) {
	p := burst.DefaultProfile(2026)
	from, to := p.DefaultWindow()
	pl := burst.Plan{Profile: p, From: from, To: to, Compression: 600, PeakPerSec: 300, Seed: 42}
	a, b := drain(t, pl, 2000), drain(t, pl, 2000)
	if diff := cmp.Diff(a, b); diff != "" {
		t.Errorf("same seed, different events (-first +second):\n%s", diff)
	}
	pl.Seed = 43
	if c := drain(t, pl, 2000); cmp.Equal(a, c) {
		t.Error("seeds 42 and 43 gave the same events")
	}
}

// TestCloudEvents renders every kind in every market and checks that the
// events pass their schemas (events.NewEvent validates) and that top-up
// numbers are valid mobile numbers of their market.
func TestCloudEvents(t *testing.T) {
	p := burst.DefaultProfile(2026)
	p.Mix = burst.Mix{0.4, 0.3, 0.3}
	evs := drain(t, burst.Plan{Profile: p, PeakPerSec: 100, Seed: 3, AtPeak: time.Minute}, 3000)
	seen := map[string]bool{}
	for _, ev := range evs {
		ce, err := p.CloudEvent("run-1", ev, time.Now())
		if err != nil {
			t.Fatalf("event %d (%v in %s): %v", ev.Seq, ev.Kind, p.Markets[ev.Market].Code, err)
		}
		seen[p.Markets[ev.Market].Code+" "+ce.Type()] = true
		if ev.Kind == burst.KindTopup {
			// What the top-up function will check: the product is on
			// sale for the number's operator, at this price.
			n, err := msisdn.Parse(burst.MSISDN(p.Markets[ev.Market].Code, ev.Payer), p.Markets[ev.Market].Code)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := topup.DefaultCatalog().Quote(p.Markets[ev.Market].Code, n.Operator.ID, ev.Product, ev.Amount); err != nil {
				t.Errorf("top-up %d in %s: %v", ev.Seq, p.Markets[ev.Market].Code, err)
			}
		}
		if ev.Kind == burst.KindRefund && ev.RefundOf >= ev.Seq {
			t.Errorf("refund %d refers to a later charge %d", ev.Seq, ev.RefundOf)
		}
	}
	for _, m := range p.Markets {
		for _, typ := range []string{events.TypeChargeRequested, events.TypeRefundRequested, events.TypeTopupRequested} {
			if !seen[m.Code+" "+typ] {
				t.Errorf("no %s in %s among %d events", typ, m.Code, len(evs))
			}
		}
		for _, n := range []int{0, 1, 99, 9_999_999} {
			if _, err := msisdn.Parse(burst.MSISDN(m.Code, n), m.Code); err != nil {
				t.Errorf("MSISDN(%s, %d): %v", m.Code, n, err)
			}
		}
		if got := burst.MarketOfID(burst.PayerID(m.Code, 5)); got != m.Code {
			t.Errorf("MarketOfID(PayerID(%s)) = %q", m.Code, got)
		}
		if got := burst.MarketOfID(burst.MerchantID(m.Code, 0)); got != m.Code {
			t.Errorf("MarketOfID(MerchantID(%s, 0)) = %q", m.Code, got)
		}
	}
}

// TestSendBounds runs the sender against a local server: it stops at
// MaxRequests, and it never follows a redirect away from the address given.
func TestSendBounds(t *testing.T) {
	var elsewhere atomic.Int64
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { elsewhere.Add(1) }))
	defer other.Close()
	var got atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if got.Add(1)%2 == 0 {
			http.Redirect(w, r, other.URL, http.StatusTemporaryRedirect)
			return
		}
		if r.Header.Get("Ce-Type") == "" {
			http.Error(w, "not a binary-mode CloudEvent", http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()

	p := burst.DefaultProfile(2026)
	from, to := p.DefaultWindow()
	pl := burst.Plan{Profile: p, From: from, To: to, Compression: 10_000, PeakPerSec: 2000, Seed: 1}
	g, err := burst.NewGenerator(pl)
	if err != nil {
		t.Fatal(err)
	}
	st, err := burst.Send(context.Background(), g, burst.SendOptions{
		URL: srv.URL, Run: "t1", MaxRequests: 60, MaxDuration: time.Minute, InFlightMax: 4,
	})
	if err != nil {
		t.Fatal(err)
	}
	type counts struct{ Sent, Served, Accepted, Redirected, Elsewhere int64 }
	want := counts{Sent: 60, Served: 60, Accepted: 30, Redirected: 30, Elsewhere: 0}
	gotC := counts{st.Sent, got.Load(), st.Status[http.StatusAccepted], st.Status[http.StatusTemporaryRedirect], elsewhere.Load()}
	if diff := cmp.Diff(want, gotC); diff != "" {
		t.Errorf("send (-want +got):\n%s", diff)
	}
	if st.Stopped != burst.StoppedMaxRequests {
		t.Errorf("stopped because %q, want %q", st.Stopped, burst.StoppedMaxRequests)
	}
}

func TestSendOptionsRefused(t *testing.T) {
	base := burst.SendOptions{URL: "http://127.0.0.1:8080", Run: "r", MaxRequests: 1, MaxDuration: time.Second, InFlightMax: 1}
	tests := []struct {
		name   string
		change func(*burst.SendOptions)
	}{
		{"no scheme", func(o *burst.SendOptions) { o.URL = "127.0.0.1:8080" }},
		{"ftp", func(o *burst.SendOptions) { o.URL = "ftp://host/" }},
		{"unbounded requests", func(o *burst.SendOptions) { o.MaxRequests = 0 }},
		{"unbounded time", func(o *burst.SendOptions) { o.MaxDuration = 0 }},
		{"too long", func(o *burst.SendOptions) { o.MaxDuration = 7 * time.Hour }},
		{"run with #", func(o *burst.SendOptions) { o.Run = "a#b" }},
	}
	if err := base.Validate(); err != nil {
		t.Fatalf("base options: %v", err)
	}
	for _, tc := range tests {
		o := base
		tc.change(&o)
		if err := o.Validate(); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
}
