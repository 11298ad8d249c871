package autoscale_test

import (
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sebelas/sebelas/internal/devtools/autoscale"
	"github.com/sebelas/sebelas/internal/devtools/burst"
)

// base is Knative's defaults with a target of 10 (target value 7 at 70%)
// and a 5 s cold start: round numbers to compute by hand.
func base() autoscale.Settings {
	s := autoscale.Defaults()
	s.Target = 10
	s.ColdStart = 5 * time.Second
	return s
}

func constant(v float64, n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = v
	}
	return out
}

// podsAt returns the pod count at the given seconds.
func podsAt(r autoscale.Result, secs ...int) []int {
	var out []int
	for _, s := range secs {
		out = append(out, r.Steps[s].Pods)
	}
	return out
}

// TestColdStep: from zero pods a step to 70 in flight. The activator pokes
// at once (second 0): stable and panic averages are 70 over the one second
// seen, 70/7 = 10 pods, and 10 over max(1, 0 ready) is above the 200%
// threshold, so the autoscaler panics. The ten pods are ready at second 5;
// seconds 0-4 wait for a cold start. Panicking lasts 60 s after the last
// over-threshold tick (second 4, the last with no ready pod), so it ends at
// the first tick after 64: 66. The demand ends after second 9. At 66 the
// stable window (seconds 7-66) holds three seconds of 70: 3.5 in flight ->
// 1 pod, but at most halving: 5. At 68 (seconds 9-68, one of 70): 1 pod,
// halving from 5: 2. At 70: 0 wanted, halving from 2: 1. At 72: 0 wanted
// and allowed (floor(1/2) = 0); the last pod goes after the 30 s grace
// period, at 102.
func TestColdStep(t *testing.T) {
	demand := append(constant(70, 10), constant(0, 110)...)
	r, err := autoscale.Simulate(base(), autoscale.Input{Demand: demand})
	if err != nil {
		t.Fatal(err)
	}
	type summary struct {
		PodStarts, ZeroReadySeconds int
		ReadyAt4, ReadyAt5          int
		PanickingAt0, PanickingAt64 bool
		PanickingAt66               bool
		Pods                        []int
	}
	want := summary{
		PodStarts: 10, ZeroReadySeconds: 5, ReadyAt4: 0, ReadyAt5: 10,
		PanickingAt0: true, PanickingAt64: true, PanickingAt66: false,
		Pods: []int{10, 10, 5, 5, 2, 1, 1, 1, 1, 0},
	}
	got := summary{
		PodStarts: r.PodStarts, ZeroReadySeconds: r.ZeroReadySeconds,
		ReadyAt4: r.Steps[4].Ready, ReadyAt5: r.Steps[5].Ready,
		PanickingAt0: r.Steps[0].Panicking, PanickingAt64: r.Steps[64].Panicking, PanickingAt66: r.Steps[66].Panicking,
		Pods: podsAt(r, 0, 64, 66, 67, 68, 70, 72, 100, 101, 102),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	// While no pod is ready, all of the demand waits: 70 x 5 s.
	if math.Abs(r.ShortfallSeconds-350) > 1e-9 {
		t.Errorf("ShortfallSeconds = %v, want 350", r.ShortfallSeconds)
	}
}

// TestStableDecline: 10 pods serving a steady 70 (7 each), then nothing.
// At an even second t the stable window (t-59..t) holds 59-t seconds of 70
// before the drop, so the autoscaler wants ceil((59-t) x 70/60 / 7) =
// ceil((59-t)/6) pods: never less than half, so halving does not bind. At
// 60 it wants 0; the last pod waits out the 30 s grace period and goes at
// 90.
func TestStableDecline(t *testing.T) {
	r, err := autoscale.Simulate(base(), autoscale.Input{Demand: constant(0, 130), InitialPods: 10, PriorDemand: 70})
	if err != nil {
		t.Fatal(err)
	}
	var want, got []int
	for sec := 0; sec < 130; sec++ {
		d := sec - sec%2 // the last tick
		w := max(1, (59-d+5)/6)
		if d >= 60 {
			w = 1 // the grace period
		}
		if sec >= 90 {
			w = 0
		}
		want = append(want, w)
		got = append(got, r.Steps[sec].Pods)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("pods per second (-want +got):\n%s", diff)
	}
	if r.PodStarts != 0 {
		t.Errorf("PodStarts = %d, want 0", r.PodStarts)
	}
}

// TestScaleDownDelay: each decision is the highest of the window
// (t-20 s, t]. From 10 pods at 70 the first lower decision (9) is at 6;
// with the delay the 10s of seconds 0-4 hold until the window has passed
// second 4: at 24. From one pod at 7, the autoscaler wants 0 at 60; with the
// delay at 78 (the window (58, 78] holds only zeros), and the pod goes after
// the grace period: at 108 instead of 90.
func TestScaleDownDelay(t *testing.T) {
	s := base()
	s.ScaleDownDelay = 20 * time.Second
	r, err := autoscale.Simulate(s, autoscale.Input{Demand: constant(0, 130), InitialPods: 10, PriorDemand: 70})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]int{10, 10, 9}, podsAt(r, 6, 23, 24)); diff != "" {
		t.Errorf("10 pods, delayed (-want +got):\n%s", diff)
	}
	for _, tc := range []struct {
		delay time.Duration
		zero  int
	}{{0, 90}, {20 * time.Second, 108}} {
		s.ScaleDownDelay = tc.delay
		r, err := autoscale.Simulate(s, autoscale.Input{Demand: constant(0, 130), InitialPods: 1, PriorDemand: 7})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]int{1, 0}, podsAt(r, tc.zero-1, tc.zero)); diff != "" {
			t.Errorf("delay %v: pods at %d and %d (-want +got):\n%s", tc.delay, tc.zero-1, tc.zero, diff)
		}
	}
}

// TestHalving: 40 pods, demand 7 (one pod's worth). Each tick may at most
// halve the ready pods: 40 -> 20 -> 10 -> 5 -> 2 -> 1.
func TestHalving(t *testing.T) {
	r, err := autoscale.Simulate(base(), autoscale.Input{Demand: constant(7, 12), InitialPods: 40, PriorDemand: 7})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]int{20, 20, 10, 10, 5, 5, 2, 2, 1, 1, 1}, podsAt(r, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10)); diff != "" {
		t.Errorf("pods (-want +got):\n%s", diff)
	}
}

// TestBounds: 700 in flight wants 100 pods; max-scale 50 caps it, and with
// containerConcurrency 10 the 50 ready pods take 500: 200 wait. min-scale 2
// keeps two pods through an idle hour, with no cold start.
func TestBounds(t *testing.T) {
	s := base()
	s.MaxScale = 50
	s.ContainerConcurrency = 10
	r, err := autoscale.Simulate(s, autoscale.Input{Demand: constant(700, 30)})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]int{50, 50, 50}, []int{r.PeakPods, r.Steps[29].Ready, r.PodStarts}); diff != "" {
		t.Errorf("peak, ready, starts (-want +got):\n%s", diff)
	}
	if r.Steps[29].Shortfall != 200 {
		t.Errorf("shortfall = %v, want 200", r.Steps[29].Shortfall)
	}

	s = base()
	s.MinScale = 2
	r, err = autoscale.Simulate(s, autoscale.Input{Demand: constant(0, 3600), InitialPods: 2})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]int{2, 0}, []int{r.Steps[3599].Pods, r.PodStarts}); diff != "" {
		t.Errorf("min-scale: pods, starts (-want +got):\n%s", diff)
	}
}

// TestPanicWindow: a panic window of 5% (3 s) sees a step sooner than
// Knative's default 10% (6 s). From one pod serving 7, a step to 70 at
// second 1: at the tick of second 2 the 3 s window averages (7+70+70)/3 = 49
// -> 7 pods, 7/1 >= 2: panic, 7 pods. The 6 s window averages
// (4x7+2x70)/6 = 28 -> 4 pods, 4/1 >= 2: panic, 4 pods.
func TestPanicWindow(t *testing.T) {
	demand := append([]float64{7}, constant(70, 20)...)
	for _, tc := range []struct {
		pct  float64
		want int
	}{{5, 7}, {10, 4}} {
		s := base()
		s.PanicWindowPercentage = tc.pct
		r, err := autoscale.Simulate(s, autoscale.Input{Demand: demand, InitialPods: 1, PriorDemand: 7})
		if err != nil {
			t.Fatal(err)
		}
		if got := r.Steps[2].Pods; got != tc.want || !r.Steps[2].Panicking {
			t.Errorf("panic window %v%%: pods at 2 s = %d (panicking %v), want %d, panicking", tc.pct, got, r.Steps[2].Panicking, tc.want)
		}
	}
}

func TestFromAnnotations(t *testing.T) {
	s, err := autoscale.FromAnnotations(map[string]string{
		autoscale.AnnTarget: "50", autoscale.AnnMinScale: "0", autoscale.AnnMaxScale: "50",
		autoscale.AnnInitialScale: "1", autoscale.AnnPanicWindow: "5.0", autoscale.AnnScaleDown: "10m",
	}, 100)
	if err != nil {
		t.Fatal(err)
	}
	want := autoscale.Defaults()
	want.Target, want.ContainerConcurrency, want.MaxScale, want.InitialScale = 50, 100, 50, 1
	want.PanicWindowPercentage, want.ScaleDownDelay = 5, 10*time.Minute
	if diff := cmp.Diff(want, s); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if s.PanicWindow() != 3*time.Second || s.TargetValue() != 35 {
		t.Errorf("panic window %v, target value %v; want 3s, 35", s.PanicWindow(), s.TargetValue())
	}
	for _, bad := range []map[string]string{
		{autoscale.AnnTarget: "fifty"},
		{autoscale.AnnMinScale: "5", autoscale.AnnMaxScale: "2"},
		{autoscale.AnnClass: "hpa.autoscaling.knative.dev"},
		{autoscale.AnnScaleDown: "2h"},
	} {
		if _, err := autoscale.FromAnnotations(bad, 0); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

// TestFestivalDemand checks Little's law on the profile: at Indonesia's
// midnight the charge function sees the charges of ID at their peak plus
// every other market at its rate then, times 15 ms.
func TestFestivalDemand(t *testing.T) {
	p := burst.DefaultProfile(2026)
	id := p.MarketIndex("ID")
	mid := p.Midnight(id)
	f := autoscale.Function{Name: "charge", Kinds: []burst.Kind{burst.KindCharge}, ServiceTime: 15 * time.Millisecond}
	d, err := autoscale.FestivalDemand(p, f, mid.Add(-time.Second/2), 1)
	if err != nil {
		t.Fatal(err)
	}
	want := p.TotalRate(mid) * 0.85 * 0.015
	if math.Abs(d[0]-want) > 1e-9*want {
		t.Errorf("demand = %v, want %v", d[0], want)
	}
}
