// Package burst models the 11.11 festival peak and replays it: the profile
// maths (seven markets with staggered midnights, a baseline rate and a peak
// multiplier per market, a midnight spike, a mix of charges, refunds and
// top-ups, many payers and a Zipf-like merchant skew with one flagship store
// taking a large share at midnight), a seeded generator of events from it,
// and a sender that replays them against one Broker URL, bounded in requests
// and time.
//
// Two clocks meet here. Festival time is the real-world instant an event
// stands for (UTC); wall time is when the generator sends it. Compression is
// festival seconds per wall second, and Scale is sent events per real-world
// event: the real festival is far above what one laptop serves, so the
// generator keeps the shape and the mix and scales the volume down to a
// chosen peak rate.
package burst

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/sebelas/sebelas/internal/market"
	"github.com/sebelas/sebelas/internal/money"
)

// Kind is the kind of a generated event.
type Kind uint8

// The kinds of events a festival brings.
const (
	KindCharge Kind = iota
	KindRefund
	KindTopup
	kindsCount
)

// Kinds lists every kind, in order.
func Kinds() []Kind { return []Kind{KindCharge, KindRefund, KindTopup} }

func (k Kind) String() string {
	switch k {
	case KindCharge:
		return "charge"
	case KindRefund:
		return "refund"
	case KindTopup:
		return "topup"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Mix is the share of each kind in a market's events; the shares sum to 1.
type Mix [kindsCount]float64

// Limits of a profile. They bound what an operator can ask for on the
// command line, not what DynamoDB can take.
const (
	// PeakMultiplierMax is the largest festival-day/normal-day ratio of the
	// 2019 reports (DESIGN.md: 26x on average, 38x for one wallet, 80x for
	// the largest). Beyond it the profile would be extrapolation.
	PeakMultiplierMax = 80
	// PeakMultiplierDefault is the average of the reports.
	PeakMultiplierDefault = 26
	// merchantsMax and payersMax bound the generated population per market
	// (memory: one float64 per merchant for the Zipf table).
	merchantsMax = 1_000_000
	payersMax    = 10_000_000
	// festivalDay is the length of the festival in each market: from its
	// local midnight for 24 hours.
	festivalDay = 24 * time.Hour
)

// MarketProfile is one market's traffic in the real world.
type MarketProfile struct {
	Code     string         // ISO 3166 alpha-2, "ID"
	Currency money.Currency // the market's only currency
	Location *time.Location // the market's zone (its midnight starts the peak)
	// BaselinePerSec is the real-world event rate of a normal day, averaged
	// over the day, all kinds together.
	BaselinePerSec float64
	// Multiplier is the festival day's volume over a normal day's.
	Multiplier float64
	// ActivePayers is the real-world number of distinct payers in the peak
	// hour; it turns a payer's share of local traffic into a real rate.
	ActivePayers float64
	// ActiveMerchants is the real-world number of merchants selling in the
	// first minutes of the festival.
	ActiveMerchants float64
}

// Profile is the festival as the generator and the projections see it.
type Profile struct {
	// Day is the festival date (11 November of some year); only its year,
	// month and day count, each market's midnight is in its own zone.
	Day     time.Time
	Markets []MarketProfile
	// SpikeShare is the share of a festival day's volume that arrives in
	// the midnight spike; the rest is spread evenly over the day.
	SpikeShare float64
	// SpikeDecay is the e-folding time of the spike: the rate above the
	// day's floor falls to 1/e of its midnight value after SpikeDecay.
	SpikeDecay time.Duration
	// Mix is the share of each kind of event.
	Mix Mix
	// Merchants is the generated merchants per market; Payers the
	// generated payers of the busiest market at its peak, the others in
	// proportion (PayersIn).
	Merchants int
	Payers    int
	// ZipfExponent skews sales over merchants: the merchant of rank r
	// (1-based) sells in proportion to r^-ZipfExponent.
	ZipfExponent float64
	// FlagshipMidnight is the flagship store's (rank 1) share of a market's
	// charges at its local midnight; it decays towards its Zipf share with
	// FlagshipDecay as e-folding time.
	FlagshipMidnight float64
	FlagshipDecay    time.Duration
}

// marketWeights are the markets' relative sizes in the default profile (the
// largest, Indonesia, is 1): population and e-wallet adoption, rounded. They
// are assumptions, as is defaultBaselineID; an operator replaces them with
// the wallet's own figures (MarketProfile fields, or the CLI flags).
var marketWeights = map[string]float64{"ID": 1, "PH": 0.6, "MY": 0.25, "TH": 0.4, "BD": 0.5, "PK": 0.3, "IN": 0.8}

// Default profile values and why.
const (
	// defaultBaselineID is Indonesia's normal-day average, in events/s
	// (~1.1 million events a day). It is chosen so that the largest market
	// at the largest multiplier (80x) reaches the design point the
	// manifests were sized for, ~10,000 charges/s in its peak minute
	// (infra/knative/charge.yaml): 12.6 x 80 x 11.65 (spike factor)
	// x 0.85 (charges) = ~10,000.
	defaultBaselineID = 12.6
	// defaultSpikeShare and defaultSpikeDecay: 15% of the day in a spike
	// that halves every ~14 minutes (e-folding 20 min): the reports' card
	// cash-in congested for the first ten minutes after midnight. The rate
	// at midnight is then 11.65x the festival day's average.
	defaultSpikeShare = 0.15
	defaultSpikeDecay = 20 * time.Minute
	// Charges dominate; refunds trail the festival by days; top-ups are
	// the phone credit bought at midnight.
	defaultChargeShare = 0.85
	defaultRefundShare = 0.03
	defaultTopupShare  = 0.12
	// defaultFlagshipMidnight: one flagship store takes 30% of a market's
	// charges at midnight (the store that ran the televised countdown),
	// falling back to its Zipf share within the first hour.
	defaultFlagshipMidnight = 0.30
	defaultFlagshipDecay    = 15 * time.Minute
	defaultZipfExponent     = 1.0
	defaultMerchants        = 1_000
	// defaultPayers: a person checking out does not pay five times a
	// minute (fraud's burst_1m rule holds such payments for review), so
	// generated traffic needs many payers, each paying now and then: 2,000
	// in the busiest market take 120 charges/s with each payer paying
	// every ~17 s (payers take turns, see Generator).
	defaultPayers = 2_000
	// defaultActivePayersID: distinct Indonesian payers in the peak hour.
	defaultActivePayersID = 3_000_000
	// defaultActiveMerchantsID: Indonesian merchants selling at midnight.
	defaultActiveMerchantsID = 100_000
)

// DefaultProfile is the festival of 11 November of year, every market at
// PeakMultiplierDefault.
func DefaultProfile(year int) Profile {
	p := Profile{
		Day:              time.Date(year, time.November, 11, 0, 0, 0, 0, time.UTC),
		SpikeShare:       defaultSpikeShare,
		SpikeDecay:       defaultSpikeDecay,
		Mix:              Mix{KindCharge: defaultChargeShare, KindRefund: defaultRefundShare, KindTopup: defaultTopupShare},
		Merchants:        defaultMerchants,
		Payers:           defaultPayers,
		ZipfExponent:     defaultZipfExponent,
		FlagshipMidnight: defaultFlagshipMidnight,
		FlagshipDecay:    defaultFlagshipDecay,
	}
	for _, m := range market.All() {
		w := marketWeights[m.Code]
		p.Markets = append(p.Markets, MarketProfile{
			Code: m.Code, Currency: m.Currency, Location: m.Location,
			BaselinePerSec:  defaultBaselineID * w,
			Multiplier:      PeakMultiplierDefault,
			ActivePayers:    defaultActivePayersID * w,
			ActiveMerchants: defaultActiveMerchantsID * w,
		})
	}
	return p
}

// Validate checks a profile built by hand or from flags.
func (p Profile) Validate() error {
	if len(p.Markets) == 0 {
		return errors.New("profile: no markets")
	}
	if p.Day.IsZero() {
		return errors.New("profile: no festival day")
	}
	seen := map[string]bool{}
	for _, m := range p.Markets {
		if seen[m.Code] {
			return fmt.Errorf("profile: market %s twice", m.Code)
		}
		seen[m.Code] = true
		if m.Location == nil {
			return fmt.Errorf("profile: market %s has no zone", m.Code)
		}
		if !(m.BaselinePerSec > 0) || math.IsInf(m.BaselinePerSec, 0) {
			return fmt.Errorf("profile: market %s: baseline %v events/s must be positive", m.Code, m.BaselinePerSec)
		}
		if !(m.Multiplier >= 1 && m.Multiplier <= PeakMultiplierMax) {
			return fmt.Errorf("profile: market %s: multiplier %v must be 1..%d", m.Code, m.Multiplier, PeakMultiplierMax)
		}
		if !(m.ActivePayers >= 1) || !(m.ActiveMerchants >= 1) {
			return fmt.Errorf("profile: market %s: active payers and merchants must be at least 1", m.Code)
		}
	}
	if !(p.SpikeShare >= 0 && p.SpikeShare < 1) {
		return fmt.Errorf("profile: spike share %v must be in [0, 1)", p.SpikeShare)
	}
	if p.SpikeDecay < time.Second || p.SpikeDecay > festivalDay {
		return fmt.Errorf("profile: spike decay %v must be 1s..24h", p.SpikeDecay)
	}
	sum := 0.0
	for _, s := range p.Mix {
		if !(s >= 0) {
			return fmt.Errorf("profile: mix %v has a negative share", p.Mix)
		}
		sum += s
	}
	if math.Abs(sum-1) > 1e-9 {
		return fmt.Errorf("profile: mix %v sums to %v, want 1", p.Mix, sum)
	}
	if p.Merchants < 1 || p.Merchants > merchantsMax {
		return fmt.Errorf("profile: merchants %d must be 1..%d", p.Merchants, merchantsMax)
	}
	if p.Payers < 1 || p.Payers > payersMax {
		return fmt.Errorf("profile: payers %d must be 1..%d", p.Payers, payersMax)
	}
	if !(p.ZipfExponent >= 0 && p.ZipfExponent <= 4) {
		return fmt.Errorf("profile: Zipf exponent %v must be 0..4", p.ZipfExponent)
	}
	if !(p.FlagshipMidnight >= 0 && p.FlagshipMidnight <= 1) {
		return fmt.Errorf("profile: flagship share %v must be 0..1", p.FlagshipMidnight)
	}
	if p.FlagshipDecay < time.Second || p.FlagshipDecay > festivalDay {
		return fmt.Errorf("profile: flagship decay %v must be 1s..24h", p.FlagshipDecay)
	}
	return nil
}

// PayersIn is the number of generated payers of market i: Payers for the
// market with the highest peak rate, the others in proportion to theirs
// (at least one), so that a payer of any market pays about as often.
func (p Profile) PayersIn(i int) int {
	top := 0.0
	for j := range p.Markets {
		top = max(top, p.PeakRate(j))
	}
	return max(1, int(math.Round(float64(p.Payers)*p.PeakRate(i)/top)))
}

// MarketIndex returns the index of the market with code, or -1.
func (p Profile) MarketIndex(code string) int {
	for i, m := range p.Markets {
		if m.Code == code {
			return i
		}
	}
	return -1
}

// Midnight is the UTC instant the festival starts in market i: 00:00 of the
// festival day in the market's own zone.
func (p Profile) Midnight(i int) time.Time {
	m := p.Markets[i]
	return time.Date(p.Day.Year(), p.Day.Month(), p.Day.Day(), 0, 0, 0, 0, m.Location).UTC()
}

// UTCOffset is market i's offset from UTC on the festival day.
func (p Profile) UTCOffset(i int) time.Duration {
	_, off := p.Midnight(i).In(p.Markets[i].Location).Zone()
	return time.Duration(off) * time.Second
}

// spikeFactor is the rate at the first instant of the festival over the
// festival day's average rate: the floor (1-s) plus the spike's height. The
// spike s*D/tau*exp(-t/tau) is normalised over the day [0, D) so that the
// day's volume is exactly Multiplier normal days:
// integral over [0, D) of s*D/(tau*(1-exp(-D/tau)))*exp(-t/tau) dt = s*D.
func (p Profile) spikeFactor(lt time.Duration) float64 {
	d, tau := festivalDay.Seconds(), p.SpikeDecay.Seconds()
	height := p.SpikeShare * d / (tau * -math.Expm1(-d/tau))
	return (1 - p.SpikeShare) + height*math.Exp(-lt.Seconds()/tau)
}

// PeakFactor is the festival's rate at midnight over the festival day's
// average (the same in every market).
func (p Profile) PeakFactor() float64 { return p.spikeFactor(0) }

// Rate is market i's real-world rate of events (all kinds) at the UTC
// instant t, in events/s: the baseline outside the festival day, the
// multiplied day with its midnight spike inside it.
func (p Profile) Rate(i int, t time.Time) float64 {
	m := p.Markets[i]
	lt := t.Sub(p.Midnight(i))
	if lt < 0 || lt >= festivalDay {
		return m.BaselinePerSec
	}
	return m.BaselinePerSec * m.Multiplier * p.spikeFactor(lt)
}

// TotalRate is the sum of Rate over the markets.
func (p Profile) TotalRate(t time.Time) float64 {
	sum := 0.0
	for i := range p.Markets {
		sum += p.Rate(i, t)
	}
	return sum
}

// PeakRate is market i's highest real-world rate, at its midnight, in
// events/s of every kind (multiply by Mix[k] for one kind).
func (p Profile) PeakRate(i int) float64 { return p.Rate(i, p.Midnight(i)) }

// MaxTotalRate is the highest TotalRate in [from, to]. Every market's rate
// is constant outside its festival day and decays inside it, so the total
// only rises at a midnight: the maximum is at from or at a midnight in the
// window.
func (p Profile) MaxTotalRate(from, to time.Time) float64 {
	best := p.TotalRate(from)
	for i := range p.Markets {
		if mid := p.Midnight(i); !mid.Before(from) && !mid.After(to) {
			best = max(best, p.TotalRate(mid))
		}
	}
	return best
}

// DefaultWindow is the part of the festival where the midnights are: half an
// hour before the first (MY and PH, UTC+8) to an hour after the last (PK,
// UTC+5).
func (p Profile) DefaultWindow() (from, to time.Time) {
	from, to = p.Midnight(0), p.Midnight(0)
	for i := range p.Markets {
		mid := p.Midnight(i)
		if mid.Before(from) {
			from = mid
		}
		if mid.After(to) {
			to = mid
		}
	}
	return from.Add(-30 * time.Minute), to.Add(time.Hour)
}

// zipfWeights returns r^-s for ranks 1..n.
func zipfWeights(n int, s float64) []float64 {
	w := make([]float64, n)
	for r := range n {
		w[r] = math.Pow(float64(r+1), -s)
	}
	return w
}

// ZipfShare is the share of rank r (1-based) among n merchants with exponent
// s: r^-s / sum over k of k^-s.
func ZipfShare(r, n int, s float64) float64 {
	if r < 1 || r > n {
		return 0
	}
	sum := 0.0
	for _, w := range zipfWeights(n, s) {
		sum += w
	}
	return math.Pow(float64(r), -s) / sum
}

// FlagshipShare is the flagship store's share of market i's charges at the
// UTC instant t: FlagshipMidnight at the market's midnight, decaying towards
// its Zipf share (never below it) during the festival day, its Zipf share
// outside it.
func (p Profile) FlagshipShare(i int, t time.Time) float64 {
	base := ZipfShare(1, p.Merchants, p.ZipfExponent)
	lt := t.Sub(p.Midnight(i))
	if lt < 0 || lt >= festivalDay || p.FlagshipMidnight <= base {
		return base
	}
	return base + (p.FlagshipMidnight-base)*math.Exp(-lt.Seconds()/p.FlagshipDecay.Seconds())
}

// KindPeakRate is market i's real-world rate of one kind at its midnight.
func (p Profile) KindPeakRate(i int, k Kind) float64 { return p.PeakRate(i) * p.Mix[k] }

// DayVolume is market i's real-world events on the festival day: Multiplier
// normal days.
func (p Profile) DayVolume(i int) float64 {
	m := p.Markets[i]
	return m.BaselinePerSec * m.Multiplier * festivalDay.Seconds()
}
