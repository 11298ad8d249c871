package bench

import (
	"math"
	"testing"
	"time"

	"github.com/sebelas/sebelas/internal/autoscale"
	"github.com/sebelas/sebelas/internal/burst"
)

// TestFirstSaleMarks checks the merchant-day index projection at its two
// limits, computed by hand: when every merchant sells on every pod within
// the minute, the marks are pods x merchants, over 32 shards and 60 s; when
// sales are rare, every sale is a first sale: rate / 32 shards.
func TestFirstSaleMarks(t *testing.T) {
	p := burst.DefaultProfile(2026)
	id := p.MarketIndex("ID")
	p.Markets[id].ActiveMerchants = 10
	s := autoscale.Defaults()
	s.Target, s.TargetUtilization, s.MaxScale = 1, 1, 50
	sim := &FunctionSim{Settings: s, ServiceTime: time.Millisecond}
	tests := []struct {
		name string
		rate float64
		want float64
	}{
		{"saturated: 50 pods (max-scale) x 10 merchants", 1e6, 50.0 * 10 / 32 / 60},
		{"rare: every sale a first sale", 1e-5, 1e-5 / 32},
	}
	for _, tc := range tests {
		got := firstSaleMarks(p, id, tc.rate, sim)
		if math.Abs(got-tc.want) > 1e-3*tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
