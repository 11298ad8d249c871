package bench

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/sebelas/sebelas/internal/devtools/autoscale"
	"github.com/sebelas/sebelas/internal/devtools/burst"
	"github.com/sebelas/sebelas/internal/devtools/manifests"
)

// podOverhead is a new pod's way to ready besides the function's own start:
// scheduling on a warm node, the image already cached there, the
// queue-proxy's start and the first readiness probe (Knative probes
// aggressively until ready). An assumption about the cluster; the
// function's own share is measured.
const podOverhead = 2 * time.Second

// FunctionSim is one Service's night under the Knative autoscaler.
type FunctionSim struct {
	Name        string
	Settings    autoscale.Settings
	ServiceTime time.Duration
	From        time.Time // festival instant of second 0
	// PeakRate is the highest request rate of the window (requests/s).
	PeakRate float64
	Demand   []float64
	Result   autoscale.Result
}

// Overrides change a Service's settings before a simulation: Service name
// -> annotation key without its autoscaling.knative.dev/ prefix
// ("min-scale", "target", ...) or "containerConcurrency" -> value.
type Overrides map[string]map[string]string

// ParseOverrides reads "charge.min-scale=20,fraud.target=15".
func ParseOverrides(s string) (Overrides, error) {
	out := Overrides{}
	if s == "" {
		return out, nil
	}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		svc, key, ok2 := strings.Cut(k, ".")
		if !ok || !ok2 || svc == "" || key == "" || v == "" {
			return nil, fmt.Errorf("override %q: want SERVICE.KEY=VALUE, e.g. charge.min-scale=20", kv)
		}
		if out[svc] == nil {
			out[svc] = map[string]string{}
		}
		out[svc][key] = v
	}
	return out, nil
}

// Settings reads each Service's autoscaling settings from infra/knative,
// with overrides applied.
func Settings(root string, over Overrides) (map[string]autoscale.Settings, error) {
	set, err := manifests.Load(filepath.Join(root, "infra", "knative"))
	if err != nil {
		return nil, err
	}
	out := map[string]autoscale.Settings{}
	var errs []error
	for _, svc := range set.Services {
		cc := 0
		if c := svc.Spec.Template.Spec.ContainerConcurrency; c != nil {
			cc = int(*c)
		}
		ann := map[string]string{}
		for k, v := range svc.Spec.Template.Annotations {
			ann[k] = v
		}
		for k, v := range over[svc.Name] {
			if k == "containerConcurrency" {
				n, err := strconv.Atoi(v)
				if err != nil {
					return nil, fmt.Errorf("%s.containerConcurrency=%q: %w", svc.Name, v, err)
				}
				cc = n
				continue
			}
			ann["autoscaling.knative.dev/"+k] = v
		}
		s, err := autoscale.FromAnnotations(ann, cc)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", svc.Name, err))
			continue
		}
		out[svc.Name] = s
	}
	return out, errors.Join(errs...)
}

// SimulateFestival runs the autoscaler over the profile's default window for
// every function that sees festival traffic, with the settings of
// infra/knative; coldStart is each function's measured process start (0
// when unknown; podOverhead is added).
func SimulateFestival(root string, p burst.Profile, coldStart map[string]time.Duration, over Overrides) ([]FunctionSim, error) {
	settings, err := Settings(root, over)
	if err != nil && len(settings) == 0 {
		return nil, err
	}
	from, to := p.DefaultWindow()
	secs := int(to.Sub(from) / time.Second)
	var out []FunctionSim
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	for _, f := range autoscale.DefaultFunctions() {
		s, ok := settings[f.Name]
		if !ok {
			errs = append(errs, fmt.Errorf("%s: no Service in infra/knative", f.Name))
			continue
		}
		s.ColdStart = podOverhead + coldStart[f.Name]
		demand, err := autoscale.FestivalDemand(p, f, from, secs)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		// The night starts in the steady state of the evening's traffic.
		initial := s.MinScale
		if demand[0] > 0 {
			initial = max(initial, int(math.Ceil(demand[0]/s.TargetValue())))
		}
		if s.MaxScale > 0 {
			initial = min(initial, s.MaxScale)
		}
		res, err := autoscale.Simulate(s, autoscale.Input{Demand: demand, InitialPods: initial, PriorDemand: demand[0]})
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.Name, err))
			continue
		}
		peak := 0.0
		for i := range p.Markets {
			peak = max(peak, f.Rate(p, p.Midnight(i)))
		}
		out = append(out, FunctionSim{Name: f.Name, Settings: s, ServiceTime: f.ServiceTime, From: from,
			PeakRate: peak, Demand: demand, Result: res})
	}
	return out, errors.Join(errs...)
}

func simulateFestival(root string, p burst.Profile, r *Result) ([]FunctionSim, error) {
	cold := map[string]time.Duration{}
	for _, c := range r.Cold {
		cold[c.Name] = c.P50
	}
	return SimulateFestival(root, p, cold, nil)
}
