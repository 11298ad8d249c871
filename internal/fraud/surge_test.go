package fraud

import (
	"testing"
	"time"
)

// TestMarketSurge: a market paying at a steady rate has no surge; when it
// pays fifty times faster, market_surge says so within minutes; before a
// day of history it claims none.
func TestMarketSurge(t *testing.T) {
	r := NewMarketRates()
	at := time.Date(2026, 11, 8, 0, 0, 0, 0, time.UTC)
	var s float64
	for range 3 * 24 * 60 { // one payment a minute for three days
		s = r.Observe("PH", at)
		if at.Before(time.Date(2026, 11, 8, 23, 0, 0, 0, time.UTC)) && s != 1 {
			t.Fatalf("surge %v before a day of history", s)
		}
		at = at.Add(time.Minute)
	}
	if s < 0.8 || s > 1.25 {
		t.Errorf("steady rate: surge %v, want about 1", s)
	}
	for range 50 * 10 { // fifty a minute for ten minutes
		s = r.Observe("PH", at)
		at = at.Add(time.Minute / 50)
	}
	if s < 20 {
		t.Errorf("fifty times the rate: surge %v", s)
	}
	if other := r.Observe("ID", at); other != 1 {
		t.Errorf("another market: surge %v", other)
	}
}
