package burst_test

import (
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sebelas/sebelas/internal/devtools/burst"
)

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// TestStaggeredMidnights checks each market's festival start against the
// offsets of DESIGN.md, computed by hand.
func TestStaggeredMidnights(t *testing.T) {
	p := burst.DefaultProfile(2026)
	want := map[string]struct {
		midnight string
		offset   time.Duration
	}{
		"MY": {"2026-11-10T16:00:00Z", 8 * time.Hour},
		"PH": {"2026-11-10T16:00:00Z", 8 * time.Hour},
		"ID": {"2026-11-10T17:00:00Z", 7 * time.Hour},
		"TH": {"2026-11-10T17:00:00Z", 7 * time.Hour},
		"BD": {"2026-11-10T18:00:00Z", 6 * time.Hour},
		"IN": {"2026-11-10T18:30:00Z", 5*time.Hour + 30*time.Minute},
		"PK": {"2026-11-10T19:00:00Z", 5 * time.Hour},
	}
	type got struct {
		Midnight string
		Offset   time.Duration
	}
	gotAll, wantAll := map[string]got{}, map[string]got{}
	for i, m := range p.Markets {
		gotAll[m.Code] = got{p.Midnight(i).Format(time.RFC3339), p.UTCOffset(i)}
		wantAll[m.Code] = got{want[m.Code].midnight, want[m.Code].offset}
	}
	if diff := cmp.Diff(wantAll, gotAll); diff != "" {
		t.Errorf("midnights (-want +got):\n%s", diff)
	}
	from, to := p.DefaultWindow()
	if diff := cmp.Diff([]string{"2026-11-10T15:30:00Z", "2026-11-10T20:00:00Z"},
		[]string{from.Format(time.RFC3339), to.Format(time.RFC3339)}); diff != "" {
		t.Errorf("default window (-want +got):\n%s", diff)
	}
}

// TestRateMultipliers checks the rate around a market's midnight against
// hand-computed values. With spike share s = 0.15 and decay tau = 20 min
// over a day D = 1440 min, the spike's height is s*D/tau/(1-e^-72) = 10.8
// (e^-72 is below float precision), so the rate at midnight is
// (1 - 0.15 + 10.8) = 11.65 times the festival day's average.
func TestRateMultipliers(t *testing.T) {
	p := burst.DefaultProfile(2026)
	id := p.MarketIndex("ID")
	mid := p.Midnight(id)
	const baseline = 12.6
	tests := []struct {
		name string
		mult float64
		at   time.Time
		want float64
	}{
		{"a second before midnight: a normal day", 26, mid.Add(-time.Second), baseline},
		{"midnight at 26x", 26, mid, baseline * 26 * 11.65},
		{"midnight at 80x", 80, mid, baseline * 80 * 11.65},
		{"one decay later", 26, mid.Add(20 * time.Minute), baseline * 26 * (0.85 + 10.8/math.E)},
		{"local noon: the floor", 26, mid.Add(12 * time.Hour), baseline * 26 * (0.85 + 10.8*math.Exp(-36))},
		{"the day after", 26, mid.Add(24 * time.Hour), baseline},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p.Markets[id].Multiplier = tc.mult
			if got := p.Rate(id, tc.at); math.Abs(got-tc.want) > 1e-9*tc.want {
				t.Errorf("Rate = %.6f, want %.6f", got, tc.want)
			}
		})
	}
	p.Markets[id].Multiplier = 26
	if got := p.PeakFactor(); math.Abs(got-11.65) > 1e-9 {
		t.Errorf("PeakFactor = %v, want 11.65", got)
	}
	// The largest market at the largest multiplier is the manifests'
	// design point: ~10,000 charges/s at midnight.
	p.Markets[id].Multiplier = burst.PeakMultiplierMax
	if got, want := p.KindPeakRate(id, burst.KindCharge), 12.6*80*11.65*0.85; math.Abs(got-want) > 1e-6 {
		t.Errorf("charges/s at 80x = %v, want %v", got, want)
	}
}

// TestDayVolume integrates the rate over the festival day: the spike only
// redistributes the day, which is Multiplier normal days in total.
func TestDayVolume(t *testing.T) {
	p := burst.DefaultProfile(2026)
	for i, m := range p.Markets {
		mid := p.Midnight(i)
		const step = time.Second
		sum := 0.0
		for at := mid; at.Before(mid.Add(24 * time.Hour)); at = at.Add(step) {
			// Midpoint rule.
			sum += p.Rate(i, at.Add(step/2)) * step.Seconds()
		}
		want := m.BaselinePerSec * m.Multiplier * 86400
		if math.Abs(sum-want) > 1e-4*want {
			t.Errorf("%s: festival day volume %.0f, want %.0f (%v x a normal day)", m.Code, sum, want, m.Multiplier)
		}
		if got := p.DayVolume(i); math.Abs(got-want) > 1e-9*want {
			t.Errorf("%s: DayVolume = %v, want %v", m.Code, got, want)
		}
	}
}

// TestMaxTotalRate checks that the closed form finds the busiest instant of
// the window (it is at a midnight) by scanning the window every 10 s.
func TestMaxTotalRate(t *testing.T) {
	p := burst.DefaultProfile(2026)
	from, to := p.DefaultWindow()
	scan := 0.0
	for at := from; !at.After(to); at = at.Add(10 * time.Second) {
		scan = max(scan, p.TotalRate(at))
	}
	got := p.MaxTotalRate(from, to)
	if got < scan || got > scan*1.0001 {
		t.Errorf("MaxTotalRate = %v, scan found %v", got, scan)
	}
}

// TestZipfShare checks the skew against fractions computed by hand: with 3
// merchants and exponent 1 the weights are 1, 1/2, 1/3 out of 11/6.
func TestZipfShare(t *testing.T) {
	tests := []struct {
		r, n int
		s    float64
		want float64
	}{
		{1, 3, 1, 6.0 / 11},
		{2, 3, 1, 3.0 / 11},
		{3, 3, 1, 2.0 / 11},
		{1, 4, 0, 0.25}, // exponent 0: no skew
		{1, 2, 2, 0.8},  // 1 / (1 + 1/4)
		{4, 3, 1, 0},    // out of range
	}
	for _, tc := range tests {
		if got := burst.ZipfShare(tc.r, tc.n, tc.s); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("ZipfShare(%d, %d, %v) = %v, want %v", tc.r, tc.n, tc.s, got, tc.want)
		}
	}
}

// TestFlagshipShare checks the flagship's share around midnight: 30% at
// midnight, its Zipf share (1/H(1000) for 1,000 merchants) outside the
// festival day, and 1/e of the way back after one decay time.
func TestFlagshipShare(t *testing.T) {
	p := burst.DefaultProfile(2026)
	id := p.MarketIndex("ID")
	mid := p.Midnight(id)
	h := 0.0
	for k := 1; k <= 1000; k++ {
		h += 1 / float64(k)
	}
	base := 1 / h
	tests := []struct {
		at   time.Time
		want float64
	}{
		{mid.Add(-time.Minute), base},
		{mid, 0.30},
		{mid.Add(15 * time.Minute), base + (0.30-base)/math.E},
		{mid.Add(25 * time.Hour), base},
	}
	for _, tc := range tests {
		if got := p.FlagshipShare(id, tc.at); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("FlagshipShare(%s) = %v, want %v", tc.at.Format(time.TimeOnly), got, tc.want)
		}
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*burst.Profile)
	}{
		{"multiplier above 80", func(p *burst.Profile) { p.Markets[0].Multiplier = 81 }},
		{"multiplier below 1", func(p *burst.Profile) { p.Markets[0].Multiplier = 0.5 }},
		{"mix not summing to 1", func(p *burst.Profile) { p.Mix[burst.KindCharge] = 0.9 }},
		{"no payers", func(p *burst.Profile) { p.Payers = 0 }},
		{"spike share 1", func(p *burst.Profile) { p.SpikeShare = 1 }},
		{"market twice", func(p *burst.Profile) { p.Markets[1].Code = p.Markets[0].Code }},
		{"negative baseline", func(p *burst.Profile) { p.Markets[2].BaselinePerSec = -1 }},
	}
	if err := burst.DefaultProfile(2026).Validate(); err != nil {
		t.Fatalf("default profile: %v", err)
	}
	for _, tc := range tests {
		p := burst.DefaultProfile(2026)
		tc.change(&p)
		if err := p.Validate(); err == nil {
			t.Errorf("%s: Validate accepted it", tc.name)
		}
	}
}
