package burst

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"time"

	"github.com/sebelas/sebelas/internal/money"
	"github.com/sebelas/sebelas/internal/msisdn"
	"github.com/sebelas/sebelas/internal/topup"
)

// Event is one generated event, before it becomes a CloudEvent: everything
// about it is decided here, from the seed, so that two runs with the same
// plan and seed send the very same events.
type Event struct {
	Seq  int64         // 0, 1, 2, ... in sending order
	Wall time.Duration // when to send it, from the start of the run
	At   time.Time     // the festival instant (UTC) it stands for
	// Market is an index into Profile.Markets.
	Market int
	Kind   Kind
	// Payer is the payer's number in its market, 0..PayersIn-1 (charges
	// and top-ups).
	Payer int
	// Merchant is the merchant's rank-1 in its market: 0 is the flagship
	// store, 1.. the others by Zipf rank (charges).
	Merchant int
	// Amount is in minor units of the market's currency.
	Amount int64
	// RefundOf is the Seq of the charge a refund gives back (refunds).
	RefundOf int64
	// Product is the catalogue product a top-up buys (its Amount is the
	// product's price).
	Product string
}

// Plan says what to generate: the festival window, how fast to play it and
// how much of its volume to send.
type Plan struct {
	Profile Profile
	// From and To bound the festival time replayed (UTC).
	From, To time.Time
	// Compression is festival seconds per wall second: 60 plays an hour in
	// a minute.
	Compression float64
	// PeakPerSec is the sent rate at the busiest instant of the window;
	// every other instant is scaled by the same factor (Scale).
	PeakPerSec float64
	// Seed makes the plan reproducible.
	Seed uint64
	// AtPeak, when set, ignores From, To and Compression: every event is
	// drawn as if at its market's local midnight plus a uniform offset in
	// [0, AtPeak), markets weighted by their rate there, and Wall is zero
	// (a closed-loop benchmark sends as fast as it is answered).
	AtPeak time.Duration
}

// Limits of a plan.
const (
	compressionMax = 100_000
	// peakPerSecMax bounds the sent rate: far above what one machine's
	// DynamoDB Local takes, low enough that a typo cannot flood a cluster.
	peakPerSecMax = 50_000
	// refundMemory is how many recent charges a refund may pick from.
	refundMemory = 4096
)

// Validate checks the plan.
func (pl Plan) Validate() error {
	if err := pl.Profile.Validate(); err != nil {
		return err
	}
	if !(pl.PeakPerSec > 0 && pl.PeakPerSec <= peakPerSecMax) {
		return fmt.Errorf("plan: peak rate %v/s must be in (0, %d]", pl.PeakPerSec, peakPerSecMax)
	}
	if pl.AtPeak > 0 {
		if pl.AtPeak > festivalDay {
			return fmt.Errorf("plan: at-peak offset %v must be at most 24h", pl.AtPeak)
		}
		return nil
	}
	if !pl.To.After(pl.From) {
		return fmt.Errorf("plan: window %s..%s is empty", pl.From.Format(time.RFC3339), pl.To.Format(time.RFC3339))
	}
	if !(pl.Compression >= 1 && pl.Compression <= compressionMax) {
		return fmt.Errorf("plan: compression %v must be 1..%d", pl.Compression, compressionMax)
	}
	return nil
}

// Scale is sent events per real-world event.
func (pl Plan) Scale() float64 {
	if pl.AtPeak > 0 {
		total := 0.0
		for i := range pl.Profile.Markets {
			total += pl.Profile.PeakRate(i)
		}
		return pl.PeakPerSec / total
	}
	return pl.PeakPerSec / pl.Profile.MaxTotalRate(pl.From, pl.To)
}

// WallDuration is how long the window takes to play.
func (pl Plan) WallDuration() time.Duration {
	if pl.AtPeak > 0 {
		return 0
	}
	return time.Duration(float64(pl.To.Sub(pl.From)) / pl.Compression)
}

// FestivalTime is the festival instant at wall offset w.
func (pl Plan) FestivalTime(w time.Duration) time.Time {
	return pl.From.Add(time.Duration(float64(w) * pl.Compression))
}

// Generator draws the events of a plan, in order. It is not safe for
// concurrent use.
type Generator struct {
	pl    Plan
	rng   *rand.Rand
	scale float64
	// lambdaMax is the thinning bound in events per wall second.
	lambdaMax float64
	wall      float64 // seconds
	seq       int64
	// zipfCum is the cumulative Zipf weight of ranks 2..Merchants.
	zipfCum []float64
	// peakCum is the cumulative market weight at their peaks (AtPeak).
	peakCum []float64
	// recent holds the last charges per market, for refunds.
	recent [][]Event
	// turn is each market's next payer: payers take turns, as many people
	// each paying now and then do, rather than a random few paying in
	// quick succession (which fraud's velocity rules rightly hold).
	turn   []int
	payers []int // PayersIn per market
	// offers caches what each (market, operator) sells for top-ups.
	catalog *topup.Catalog
	offers  map[[2]string][]offer
	done    bool
}

// offer is one top-up a payer can buy: a product, or an open airtime
// amount.
type offer struct {
	product string
	amount  int64
}

// NewGenerator starts drawing pl's events.
func NewGenerator(pl Plan) (*Generator, error) {
	if err := pl.Validate(); err != nil {
		return nil, err
	}
	g := &Generator{
		pl:     pl,
		rng:    rand.New(rand.NewPCG(pl.Seed, pl.Seed^0x11_11_2019)),
		scale:  pl.Scale(),
		recent: make([][]Event, len(pl.Profile.Markets)),
		turn:   make([]int, len(pl.Profile.Markets)),
	}
	g.catalog, g.offers = topup.DefaultCatalog(), map[[2]string][]offer{}
	for i := range pl.Profile.Markets {
		g.payers = append(g.payers, pl.Profile.PayersIn(i))
	}
	g.lambdaMax = pl.PeakPerSec
	w := zipfWeights(pl.Profile.Merchants, pl.Profile.ZipfExponent)
	sum := 0.0
	for _, x := range w[1:] {
		sum += x
		g.zipfCum = append(g.zipfCum, sum)
	}
	if pl.AtPeak > 0 {
		sum = 0
		for i := range pl.Profile.Markets {
			sum += pl.Profile.PeakRate(i)
			g.peakCum = append(g.peakCum, sum)
		}
	}
	return g, nil
}

// Next returns the next event; false once the window is over.
func (g *Generator) Next() (Event, bool) {
	if g.done {
		return Event{}, false
	}
	if g.pl.AtPeak > 0 {
		i := pick(g.peakCum, g.rng.Float64())
		at := g.pl.Profile.Midnight(i).Add(time.Duration(g.rng.Float64() * float64(g.pl.AtPeak)))
		return g.draw(i, at, 0), true
	}
	// Thinning (Lewis and Shedler): candidates arrive as a Poisson process
	// at lambdaMax, and one at wall time w is kept with probability
	// rate(w)/lambdaMax, which leaves a Poisson process of rate rate(w).
	end := g.pl.WallDuration().Seconds()
	for {
		g.wall += g.rng.ExpFloat64() / g.lambdaMax
		if g.wall >= end {
			g.done = true
			return Event{}, false
		}
		wall := time.Duration(g.wall * float64(time.Second))
		at := g.pl.FestivalTime(wall)
		total := g.pl.Profile.TotalRate(at)
		if g.rng.Float64()*g.lambdaMax >= total*g.scale {
			continue
		}
		// The market, in proportion to its rate at that instant.
		u := g.rng.Float64() * total
		i := 0
		for ; i < len(g.pl.Profile.Markets)-1; i++ {
			u -= g.pl.Profile.Rate(i, at)
			if u < 0 {
				break
			}
		}
		return g.draw(i, at, wall), true
	}
}

// draw decides everything about one event of market i at festival time at.
func (g *Generator) draw(i int, at time.Time, wall time.Duration) Event {
	p := &g.pl.Profile
	ev := Event{Seq: g.seq, Wall: wall, At: at, Market: i}
	g.seq++
	u := g.rng.Float64()
	ev.Kind = KindCharge
	for _, k := range Kinds() {
		if u < p.Mix[k] {
			ev.Kind = k
			break
		}
		u -= p.Mix[k]
	}
	// A refund needs a charge before it; the first events of a market
	// are charges whatever the mix says.
	if ev.Kind == KindRefund && len(g.recent[i]) == 0 {
		ev.Kind = KindCharge
	}
	cur := p.Markets[i].Currency
	switch ev.Kind {
	case KindCharge:
		ev.Payer = g.nextPayer(i)
		if g.rng.Float64() >= p.FlagshipShare(i, at) {
			ev.Merchant = 1 + pick(g.zipfCum, g.rng.Float64())
		}
		ev.Amount = amount(g.rng, cur, chargeUSDMin, chargeUSDMax)
		r := g.recent[i]
		if len(r) < refundMemory {
			g.recent[i] = append(r, ev)
		} else {
			r[g.rng.IntN(refundMemory)] = ev
		}
	case KindRefund:
		c := g.recent[i][g.rng.IntN(len(g.recent[i]))]
		ev.RefundOf, ev.Payer, ev.Merchant = c.Seq, c.Payer, c.Merchant
		ev.Amount = c.Amount
		if g.rng.IntN(2) == 0 && c.Amount > 1 {
			ev.Amount = c.Amount / 2 // a partial refund: one of two items sent back
		}
	case KindTopup:
		ev.Payer = g.nextPayer(i)
		if offs := g.offersFor(p.Markets[i], ev.Payer); len(offs) > 0 {
			o := offs[g.rng.IntN(len(offs))]
			ev.Product, ev.Amount = o.product, o.amount
		} else {
			ev.Amount = amount(g.rng, cur, topupUSDMin, topupUSDMax)
		}
	}
	return ev
}

// nextPayer is market i's next payer in turn.
func (g *Generator) nextPayer(i int) int {
	n := g.turn[i]
	g.turn[i] = (n + 1) % g.payers[i]
	return n
}

// pick returns the index of the first cumulative weight above u*total.
func pick(cum []float64, u float64) int {
	if len(cum) == 0 {
		return 0
	}
	x := u * cum[len(cum)-1]
	return min(sort.SearchFloat64s(cum, x), len(cum)-1)
}

// Basket sizes in US dollars, drawn log-uniformly (many small baskets, few
// large ones), and converted at rounded 2019 rates: well below every
// per-charge limit and fraud ceiling, so the traffic is ordinary shopping.
const (
	chargeUSDMin = 2
	chargeUSDMax = 60
	topupUSDMin  = 1
	topupUSDMax  = 5
)

// majorPerUSD is how many major units of each currency a dollar buys.
var majorPerUSD = map[money.Currency]float64{
	money.IDR: 14_000, money.PHP: 51, money.MYR: 4.2, money.THB: 30,
	money.BDT: 85, money.PKR: 155, money.INR: 71,
}

// amount draws an amount between lo and hi dollars in c's minor units,
// rounded to whole major units (prices on a festival banner are).
func amount(rng *rand.Rand, c money.Currency, lo, hi float64) int64 {
	usd := lo * math.Exp(rng.Float64()*math.Log(hi/lo))
	major := math.Max(1, math.Round(usd*majorPerUSD[c]))
	return int64(major) * c.MinorPerMajor()
}

// Identifiers of generated events. They embed the market so that a key in
// the table can be traced back to its market (bench's hot-key projection).

// PayerID is the wallet of payer n in market code.
func PayerID(code string, n int) string {
	return fmt.Sprintf("w-b-%s-%06d", strings.ToLower(code), n)
}

// MerchantID is the merchant of rank-1 n in market code; 0 is the flagship.
func MerchantID(code string, n int) string {
	if n == 0 {
		return "m-" + strings.ToLower(code) + "-flagship"
	}
	return fmt.Sprintf("m-%s-%06d", strings.ToLower(code), n)
}

// MarketOfID returns the market code embedded in an id made by PayerID or
// MerchantID ("" when id is not one).
func MarketOfID(id string) string {
	for _, prefix := range []string{"w-b-", "m-"} {
		if rest, ok := strings.CutPrefix(id, prefix); ok && len(rest) > 3 && rest[2] == '-' {
			return strings.ToUpper(rest[:2])
		}
	}
	return ""
}

// ChargeID is the charge_id of the charge with sequence number seq in run.
func ChargeID(run string, seq int64) string { return fmt.Sprintf("%s-c%08d", run, seq) }

// RefundID is the refund_id of the refund with sequence number seq in run.
func RefundID(run string, seq int64) string { return fmt.Sprintf("%s-r%08d", run, seq) }

// TopupID is the topup_id of the top-up with sequence number seq in run.
func TopupID(run string, seq int64) string { return fmt.Sprintf("%s-t%08d", run, seq) }

// mobilePrefix is a mobile range of one operator of each market,
// in international format, and how many subscriber digits follow it.
var mobilePrefix = map[string]struct {
	prefix string
	digits int
}{
	"ID": {"+62812", 8}, // Telkomsel
	"PH": {"+63917", 7}, // Globe
	"MY": {"+6012", 7},  // Maxis
	"TH": {"+6692", 7},  // dtac
	"BD": {"+88017", 8}, // Grameenphone
	"PK": {"+92300", 7}, // Jazz
	"IN": {"+91983", 7}, // Airtel
}

// offersFor is what payer n of market m can top up: the products the
// operator of the payer's number sells in the default catalogue, or, for an
// operator selling open airtime only, the round amounts of USD 1, 2 and 5
// the catalogue accepts. Cached per operator.
func (g *Generator) offersFor(m MarketProfile, n int) []offer {
	num, err := msisdn.Parse(MSISDN(m.Code, n), m.Code)
	if err != nil {
		return nil
	}
	k := [2]string{m.Code, num.Operator.ID}
	if offs, ok := g.offers[k]; ok {
		return offs
	}
	var offs []offer
	for _, p := range g.catalog.Products(m.Code) {
		if p.Operator == num.Operator.ID {
			offs = append(offs, offer{product: p.ID, amount: p.Price()})
		}
	}
	if len(offs) == 0 {
		unit := m.Currency.MinorPerMajor()
		for _, usd := range []float64{1, 2, 5} {
			major := majorPerUSD[m.Currency] * usd
			// Round to one significant digit: 71 -> 70, 155 -> 200.
			mag := math.Pow(10, math.Floor(math.Log10(major)))
			amt := int64(math.Round(major/mag)*mag) * unit
			if _, err := g.catalog.Quote(m.Code, num.Operator.ID, "", amt); err == nil {
				offs = append(offs, offer{amount: amt})
			}
		}
	}
	g.offers[k] = offs
	return offs
}

// MSISDN is the phone number payer n of market code tops up: fixed per
// payer, so that a payer buys credit for their own phone.
func MSISDN(code string, n int) string {
	mp, ok := mobilePrefix[code]
	if !ok {
		panic("burst: no mobile prefix for market " + code)
	}
	// Spread payers over the range so numbers do not all start 0000.
	sub := (int64(n)*7919 + 1_234_567) % int64(math.Pow10(mp.digits))
	return fmt.Sprintf("%s%0*d", mp.prefix, mp.digits, sub)
}

// ErrNoEvents is returned by consumers of a generator that produced nothing.
var ErrNoEvents = errors.New("burst: the plan produced no events")
