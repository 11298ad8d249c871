package fraud

import (
	"math"
	"sync"
	"time"
)

// MarketRates measures each market's own payment rate, so that velocity can
// be read against it: at the festival midnight every wallet pays faster at
// once, and a surge the whole market shares is not evidence against one
// wallet. It is in process memory, fed by the payments this instance screens
// (each instance sees a share of the market, and the ratio of two rates of
// the same share is the market's), and costs no round trip.
//
// Two exponentially decaying counts, over about 10 minutes and about 3
// days, each divided by its own horizon corrected for the time observed so
// far, give the short and the long rate; market_surge is their ratio. Until
// an instance has watched a market for surgeWarmS it reports 1 (no surge
// known): a new instance at the peak does not discount velocity. That errs
// towards review, never towards letting a burst through.
type MarketRates struct {
	mu      sync.Mutex
	markets map[string]*marketRate
}

type marketRate struct {
	first, last float64 // unix seconds
	short, long float64 // decayed counts at last
	initialised bool
}

const (
	surgeShortS = 600.0
	surgeLongS  = 3 * 86400.0
	surgeWarmS  = 86400.0
	surgeMax    = 1000.0
)

// NewMarketRates returns empty rates.
func NewMarketRates() *MarketRates { return &MarketRates{markets: map[string]*marketRate{}} }

// Observe counts a payment of market at t and returns the market's surge:
// its rate over the last minutes over its rate over the last days.
func (r *MarketRates) Observe(market string, t time.Time) float64 {
	now := float64(t.UnixNano()) / 1e9
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.markets[market]
	if m == nil {
		m = &marketRate{}
		r.markets[market] = m
	}
	if !m.initialised {
		m.first, m.last, m.initialised = now, now, true
	}
	if dt := now - m.last; dt > 0 { // late arrivals count at the last time
		m.short *= math.Exp(-dt / surgeShortS)
		m.long *= math.Exp(-dt / surgeLongS)
		m.last = now
	}
	m.short++
	m.long++
	seen := m.last - m.first
	if seen < surgeWarmS {
		return 1
	}
	shortRate := m.short / (surgeShortS * (1 - math.Exp(-seen/surgeShortS)))
	longRate := m.long / (surgeLongS * (1 - math.Exp(-seen/surgeLongS)))
	return math.Min(shortRate/longRate, surgeMax)
}
