package autoscale

import (
	"fmt"
	"time"

	"github.com/sebelas/sebelas/internal/devtools/burst"
)

// Function is one Service's share of the festival: the kinds of events it
// serves (one request each) and how long one request holds it.
type Function struct {
	Name  string
	Kinds []burst.Kind
	// ServiceTime is a request's time in the function against real
	// DynamoDB; by Little's law, concurrency = rate x ServiceTime.
	ServiceTime time.Duration
}

// Service times of the design, per request against real DynamoDB in the
// same region. `sebelas bench` measures the functions' own share locally
// (see docs/autoscaling.md); the storage share is DynamoDB's published
// single-digit-millisecond latency, doubled for a transaction.
const (
	chargeServiceTime = 15 * time.Millisecond   // one TransactWriteItems
	fraudServiceTime  = 10 * time.Millisecond   // rules in memory + one counter UpdateItem
	refundServiceTime = 30 * time.Millisecond   // read the charge + one transaction
	topupServiceTime  = 2000 * time.Millisecond // a telco operator's answer
)

// DefaultFunctions are the Services that see the festival's traffic, as the
// event flow of DESIGN.md routes it (fraud screens charges and top-ups).
func DefaultFunctions() []Function {
	return []Function{
		{Name: "fraud", Kinds: []burst.Kind{burst.KindCharge, burst.KindTopup}, ServiceTime: fraudServiceTime},
		{Name: "charge", Kinds: []burst.Kind{burst.KindCharge}, ServiceTime: chargeServiceTime},
		{Name: "refund", Kinds: []burst.Kind{burst.KindRefund}, ServiceTime: refundServiceTime},
		{Name: "topup", Kinds: []burst.Kind{burst.KindTopup}, ServiceTime: topupServiceTime},
	}
}

// Rate is f's real-world request rate at t, in requests/s.
func (f Function) Rate(p burst.Profile, t time.Time) float64 {
	sum := 0.0
	for i := range p.Markets {
		r := p.Rate(i, t)
		for _, k := range f.Kinds {
			sum += r * p.Mix[k]
		}
	}
	return sum
}

// FestivalDemand is f's concurrency, one sample a second for seconds from
// from, at the profile's real-world volume.
func FestivalDemand(p burst.Profile, f Function, from time.Time, seconds int) ([]float64, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if seconds < 1 || seconds > SecondsMax {
		return nil, fmt.Errorf("autoscale: %d seconds, want 1..%d", seconds, SecondsMax)
	}
	if f.ServiceTime <= 0 {
		return nil, fmt.Errorf("autoscale: %s has no service time", f.Name)
	}
	out := make([]float64, seconds)
	for s := range out {
		// The middle of the second: the spike's first second is its
		// highest, and sampling its start would round the step up.
		t := from.Add(time.Duration(s)*time.Second + time.Second/2)
		out[s] = f.Rate(p, t) * f.ServiceTime.Seconds()
	}
	return out, nil
}
