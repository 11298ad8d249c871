// Package autoscale is a small simulation of the Knative Pod Autoscaler
// (KPA) of Knative Serving, so that an operator can see what a Service's
// autoscaling settings do to the festival night before the night: replicas
// and cold starts over time, per function.
//
// It follows the KPA's decider (pkg/autoscaler/scaling in Knative Serving):
// every tick (2 s) it averages the observed concurrency over the stable
// window (60 s) and the panic window (panic-window-percentage of it), wants
// ceil(average / (target x target-utilization)) pods, moves at most
// max-scale-up-rate times up and max-scale-down-rate times down per tick,
// panics when the panic window wants panic-threshold-percentage of the ready
// pods (and then never scales down until the surge has been in the stable
// window for a whole window), holds scale-downs for scale-down-delay, applies
// min-scale and max-scale, scales from zero at once when a request arrives
// (the activator's poke) and to zero only after scale-to-zero-grace-period.
//
// What it leaves out, on purpose: the queue-proxy's and activator's
// buffering (observed concurrency is the demand, as the activator reports
// it while pods are missing), target-burst-capacity, and scheduling
// failures. A new pod is ready ColdStart after it is asked for.
package autoscale

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Knative Serving defaults (config-autoscaler), used where a Service does not
// say otherwise.
const (
	DefaultTargetUtilization        = 0.70
	DefaultStableWindow             = 60 * time.Second
	DefaultPanicWindowPercentage    = 10.0
	DefaultPanicThresholdPercentage = 200.0
	DefaultMaxScaleUpRate           = 1000.0
	DefaultMaxScaleDownRate         = 2.0
	DefaultScaleToZeroGracePeriod   = 30 * time.Second
	DefaultTickInterval             = 2 * time.Second
	DefaultContainerConcurrency     = 0 // unlimited
	DefaultTarget                   = 100.0
	DefaultInitialScale             = 1
	// defaultColdStart is a pod's way from "asked for" to "ready" when
	// nothing better is known: scheduling, pulling a ~15 MB image from a
	// nearby registry, starting the queue-proxy and the function, the
	// first readiness probe. The function's own share is measured by
	// `sebelas bench` (tens of milliseconds); the rest is the cluster's.
	defaultColdStart = 3 * time.Second
)

// Limits of a simulation.
const (
	// SecondsMax bounds a simulation's length (a day and a half at 1 s).
	SecondsMax = 36 * 3600
	// podsMax bounds the pods a simulation may ask for.
	podsMax = 100_000
)

// Settings are one Service's autoscaling settings, as Knative names them.
type Settings struct {
	// Target is autoscaling.knative.dev/target: concurrent requests per pod
	// the autoscaler aims at, before utilisation.
	Target float64
	// TargetUtilization is target-utilization-percentage / 100.
	TargetUtilization float64
	// ContainerConcurrency is the hard limit per pod (0: none).
	ContainerConcurrency int
	MinScale             int
	MaxScale             int // 0: no limit
	InitialScale         int
	StableWindow         time.Duration
	// PanicWindowPercentage is the panic window as a percentage of the
	// stable window.
	PanicWindowPercentage    float64
	PanicThresholdPercentage float64
	ScaleDownDelay           time.Duration
	ScaleToZeroGracePeriod   time.Duration
	MaxScaleUpRate           float64
	MaxScaleDownRate         float64
	TickInterval             time.Duration
	// ColdStart is how long a new pod takes to become ready.
	ColdStart time.Duration
}

// Defaults returns Knative's defaults.
func Defaults() Settings {
	return Settings{
		Target: DefaultTarget, TargetUtilization: DefaultTargetUtilization,
		ContainerConcurrency: DefaultContainerConcurrency, InitialScale: DefaultInitialScale,
		StableWindow: DefaultStableWindow, PanicWindowPercentage: DefaultPanicWindowPercentage,
		PanicThresholdPercentage: DefaultPanicThresholdPercentage,
		ScaleToZeroGracePeriod:   DefaultScaleToZeroGracePeriod,
		MaxScaleUpRate:           DefaultMaxScaleUpRate, MaxScaleDownRate: DefaultMaxScaleDownRate,
		TickInterval: DefaultTickInterval, ColdStart: defaultColdStart,
	}
}

// PanicWindow is the panic window's length.
func (s Settings) PanicWindow() time.Duration {
	return time.Duration(float64(s.StableWindow) * s.PanicWindowPercentage / 100)
}

// TargetValue is the concurrency per pod the autoscaler aims at.
func (s Settings) TargetValue() float64 { return s.Target * s.TargetUtilization }

// Validate checks the settings against the ranges Knative accepts.
func (s Settings) Validate() error {
	switch {
	case !(s.Target >= 0.01):
		return fmt.Errorf("autoscale: target %v must be at least 0.01", s.Target)
	case !(s.TargetUtilization > 0 && s.TargetUtilization <= 1):
		return fmt.Errorf("autoscale: target utilization %v must be in (0, 1]", s.TargetUtilization)
	case s.ContainerConcurrency < 0:
		return fmt.Errorf("autoscale: containerConcurrency %d is negative", s.ContainerConcurrency)
	case s.MinScale < 0 || s.MaxScale < 0 || s.InitialScale < 0:
		return fmt.Errorf("autoscale: scales must not be negative")
	case s.MaxScale > 0 && s.MinScale > s.MaxScale:
		return fmt.Errorf("autoscale: min-scale %d above max-scale %d", s.MinScale, s.MaxScale)
	case s.StableWindow < 6*time.Second || s.StableWindow > time.Hour:
		return fmt.Errorf("autoscale: stable window %v must be 6s..1h", s.StableWindow)
	case !(s.PanicWindowPercentage >= 1 && s.PanicWindowPercentage <= 100):
		return fmt.Errorf("autoscale: panic-window-percentage %v must be 1..100", s.PanicWindowPercentage)
	case !(s.PanicThresholdPercentage >= 110 && s.PanicThresholdPercentage <= 1000):
		return fmt.Errorf("autoscale: panic-threshold-percentage %v must be 110..1000", s.PanicThresholdPercentage)
	case s.ScaleDownDelay < 0 || s.ScaleDownDelay > time.Hour:
		return fmt.Errorf("autoscale: scale-down-delay %v must be 0..1h", s.ScaleDownDelay)
	case s.ScaleToZeroGracePeriod < 0:
		return fmt.Errorf("autoscale: scale-to-zero grace period is negative")
	case !(s.MaxScaleUpRate > 1) || !(s.MaxScaleDownRate > 1):
		return fmt.Errorf("autoscale: max scale up/down rates must be above 1")
	case s.TickInterval < time.Second || s.TickInterval%time.Second != 0:
		return fmt.Errorf("autoscale: tick %v must be whole seconds", s.TickInterval)
	case s.ColdStart < 0:
		return fmt.Errorf("autoscale: cold start is negative")
	}
	return nil
}

// Annotation keys the simulation reads (autoscaling.knative.dev/...).
const (
	annotationPrefix = "autoscaling.knative.dev/"
	AnnTarget        = annotationPrefix + "target"
	AnnUtilization   = annotationPrefix + "target-utilization-percentage"
	AnnMinScale      = annotationPrefix + "min-scale"
	AnnMaxScale      = annotationPrefix + "max-scale"
	AnnInitialScale  = annotationPrefix + "initial-scale"
	AnnWindow        = annotationPrefix + "window"
	AnnPanicWindow   = annotationPrefix + "panic-window-percentage"
	AnnPanicThresh   = annotationPrefix + "panic-threshold-percentage"
	AnnScaleDown     = annotationPrefix + "scale-down-delay"
	AnnClass         = annotationPrefix + "class"
	AnnMetric        = annotationPrefix + "metric"
)

// FromAnnotations reads a revision template's autoscaling annotations over
// Knative's defaults; containerConcurrency is the template's. With no
// target annotation, a containerConcurrency above zero is the target (as
// Knative does).
func FromAnnotations(ann map[string]string, containerConcurrency int) (Settings, error) {
	s := Defaults()
	s.ContainerConcurrency = containerConcurrency
	if containerConcurrency > 0 {
		s.Target = float64(containerConcurrency)
	}
	if c := ann[AnnClass]; c != "" && c != "kpa.autoscaling.knative.dev" {
		return s, fmt.Errorf("autoscale: class %q is not the KPA", c)
	}
	if m := ann[AnnMetric]; m != "" && m != "concurrency" {
		return s, fmt.Errorf("autoscale: metric %q: only concurrency is simulated", m)
	}
	num := func(key string, dst *float64) error {
		v, ok := ann[key]
		if !ok {
			return nil
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			return fmt.Errorf("autoscale: %s=%q: %w", key, v, err)
		}
		*dst = f
		return nil
	}
	integer := func(key string, dst *int) error {
		v, ok := ann[key]
		if !ok {
			return nil
		}
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("autoscale: %s=%q: %w", key, v, err)
		}
		*dst = n
		return nil
	}
	dur := func(key string, dst *time.Duration) error {
		v, ok := ann[key]
		if !ok {
			return nil
		}
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("autoscale: %s=%q: %w", key, v, err)
		}
		*dst = d
		return nil
	}
	util := s.TargetUtilization * 100
	for _, err := range []error{
		num(AnnTarget, &s.Target), num(AnnUtilization, &util),
		integer(AnnMinScale, &s.MinScale), integer(AnnMaxScale, &s.MaxScale), integer(AnnInitialScale, &s.InitialScale),
		dur(AnnWindow, &s.StableWindow), num(AnnPanicWindow, &s.PanicWindowPercentage),
		num(AnnPanicThresh, &s.PanicThresholdPercentage), dur(AnnScaleDown, &s.ScaleDownDelay),
	} {
		if err != nil {
			return s, err
		}
	}
	s.TargetUtilization = util / 100
	return s, s.Validate()
}

// Input is what a simulation runs over.
type Input struct {
	// Demand is the concurrency (requests in flight) the Service is asked
	// for, one sample a second from time zero.
	Demand []float64
	// InitialPods are ready at time zero (the night starts with the
	// revision long deployed, at min-scale or wherever it was).
	InitialPods int
	// PriorDemand is the steady concurrency before time zero: it fills the
	// windows, as if it had lasted for ever.
	PriorDemand float64
}

// Step is one second of a simulation.
type Step struct {
	Second    int
	Demand    float64
	Ready     int // pods serving
	Pods      int // pods asked for: ready and starting
	Desired   int // the autoscaler's last decision
	Panicking bool
	Started   int // pods started in this second (cold starts)
	// Shortfall is the demand above what the ready pods may take
	// (containerConcurrency x ready; all of it with no ready pod): requests
	// waiting in the activator or queue-proxy.
	Shortfall float64
}

// Result is a whole simulation.
type Result struct {
	Steps []Step
	// PodStarts counts every pod started: each is a cold start.
	PodStarts int
	PeakPods  int
	// ZeroReadySeconds counts seconds with demand and no ready pod: the
	// requests of those seconds wait for a cold start.
	ZeroReadySeconds int
	// MaxShortfall and ShortfallSeconds sum up Step.Shortfall:
	// ShortfallSeconds is its integral (request-seconds of waiting).
	MaxShortfall     float64
	ShortfallSeconds float64
}

type pod struct{ readyAt int }

// decider is the KPA's state between ticks.
type decider struct {
	s            Settings
	panicSince   int // second of the last over-threshold tick; -1: not panicking
	maxPanicPods int
	// delay holds (second, desired) of past decisions within the
	// scale-down-delay window.
	delay []delayed
}

type delayed struct{ at, pods int }

// decide is Knative's Autoscaler.Scale for one tick at second now.
func (d *decider) decide(now int, stable, panicAvg float64, ready int) (desired int, panicking bool) {
	s := d.s
	readyPods := math.Max(1, float64(ready))
	maxUp := math.Ceil(s.MaxScaleUpRate * readyPods)
	maxDown := math.Floor(readyPods / s.MaxScaleDownRate)
	tv := s.TargetValue()
	dspc := math.Ceil(stable / tv)
	dppc := math.Ceil(panicAvg / tv)
	desiredStable := int(math.Min(math.Max(dspc, maxDown), maxUp))
	desiredPanic := int(math.Min(math.Max(dppc, maxDown), maxUp))
	over := dppc/readyPods >= s.PanicThresholdPercentage/100
	stableSecs := int(s.StableWindow / time.Second)
	switch {
	case over:
		d.panicSince = now // start or extend panicking
	case d.panicSince >= 0 && d.panicSince+stableSecs < now:
		// The surge is in the stable window now: stop panicking.
		d.panicSince, d.maxPanicPods = -1, 0
	}
	desired = desiredStable
	if d.panicSince >= 0 {
		desired = max(desired, desiredPanic)
		// Never scale down while panicking.
		d.maxPanicPods = max(d.maxPanicPods, desired)
		desired = d.maxPanicPods
	}
	if s.ScaleDownDelay > 0 {
		// The highest decision of the window (now-delay, now].
		delaySecs := int(s.ScaleDownDelay / time.Second)
		keep := d.delay[:0]
		for _, x := range d.delay {
			if x.at > now-delaySecs {
				keep = append(keep, x)
			}
		}
		d.delay = append(keep, delayed{now, desired})
		for _, x := range d.delay {
			desired = max(desired, x.pods)
		}
	}
	return desired, d.panicSince >= 0
}

// Simulate runs the KPA over in.Demand with settings s.
func Simulate(s Settings, in Input) (Result, error) {
	if err := s.Validate(); err != nil {
		return Result{}, err
	}
	if len(in.Demand) > SecondsMax {
		return Result{}, fmt.Errorf("autoscale: %d seconds, at most %d", len(in.Demand), SecondsMax)
	}
	if in.InitialPods < 0 || in.InitialPods > podsMax || in.PriorDemand < 0 {
		return Result{}, fmt.Errorf("autoscale: initial pods %d and prior demand %v must be in range", in.InitialPods, in.PriorDemand)
	}
	stableSecs := int(s.StableWindow / time.Second)
	panicSecs := max(1, int(math.Round(s.PanicWindow().Seconds())))
	tick := int(s.TickInterval / time.Second)
	cold := int(math.Ceil(s.ColdStart.Seconds()))
	grace := int(math.Ceil(s.ScaleToZeroGracePeriod.Seconds()))

	// history holds the observed concurrency per second; prior seconds
	// first so that windows are full from the start.
	prior := 0
	if in.PriorDemand > 0 || in.InitialPods > 0 {
		prior = stableSecs
	}
	history := make([]float64, 0, prior+len(in.Demand))
	for range prior {
		history = append(history, in.PriorDemand)
	}
	avg := func(window int) float64 {
		n := min(window, len(history))
		sum := 0.0
		for _, x := range history[len(history)-n:] {
			sum += x
		}
		return sum / float64(n)
	}

	d := &decider{s: s, panicSince: -1}
	pods := make([]pod, 0, in.InitialPods)
	for range in.InitialPods {
		pods = append(pods, pod{readyAt: 0})
	}
	if s.ScaleDownDelay > 0 && in.InitialPods > 0 {
		d.delay = append(d.delay, delayed{0, in.InitialPods})
	}
	res := Result{Steps: make([]Step, 0, len(in.Demand))}
	desired, panicking := in.InitialPods, false
	zeroSince := -1
	for now, demand := range in.Demand {
		if demand < 0 || math.IsNaN(demand) || math.IsInf(demand, 0) {
			return Result{}, fmt.Errorf("autoscale: demand %v at second %d", demand, now)
		}
		history = append(history, demand)
		ready := 0
		for _, p := range pods {
			if p.readyAt <= now {
				ready++
			}
		}
		started := 0
		// The activator pokes the autoscaler as soon as a request finds
		// no pod; otherwise it decides every tick.
		poke := len(pods) == 0 && demand > 0
		if now%tick == 0 || poke {
			desired, panicking = d.decide(now, avg(stableSecs), avg(panicSecs), ready)
			want := max(desired, s.MinScale)
			if s.MaxScale > 0 {
				want = min(want, s.MaxScale)
			}
			want = min(want, podsMax)
			// Scale to zero only after the grace period; until then the
			// last pod stays.
			if want == 0 && len(pods) > 0 {
				if zeroSince < 0 {
					zeroSince = now
				}
				if now-zeroSince < grace {
					want = 1
				}
			} else {
				zeroSince = -1
			}
			switch {
			case want > len(pods):
				for range want - len(pods) {
					pods = append(pods, pod{readyAt: now + cold})
					started++
				}
			case want < len(pods):
				// Pods still starting go first (they serve nothing yet),
				// then ready ones; pods are appended in start order, so
				// the newest are at the end.
				pods = pods[:want]
			}
			ready = 0
			for _, p := range pods {
				if p.readyAt <= now {
					ready++
				}
			}
		}
		capacity := math.Inf(1)
		if ready == 0 {
			capacity = 0
		} else if s.ContainerConcurrency > 0 {
			capacity = float64(ready * s.ContainerConcurrency)
		}
		st := Step{Second: now, Demand: demand, Ready: ready, Pods: len(pods), Desired: desired,
			Panicking: panicking, Started: started, Shortfall: math.Max(0, demand-capacity)}
		res.Steps = append(res.Steps, st)
		res.PodStarts += started
		res.PeakPods = max(res.PeakPods, len(pods))
		if demand > 0 && ready == 0 {
			res.ZeroReadySeconds++
		}
		res.MaxShortfall = math.Max(res.MaxShortfall, st.Shortfall)
		res.ShortfallSeconds += st.Shortfall
	}
	return res, nil
}
