package fraudeval

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/sebelas/sebelas/internal/fraud"
	"github.com/sebelas/sebelas/internal/market"
)

// The second generator ("mobile money") is independent of the first: other
// people, other parameters, other fraud shapes, and money that moves between
// wallets (transfers, cash-in, cash-out) as in the PaySim layout. The rules
// were tuned on the first generator only; this one exists so that a report
// can show them on traffic they were not fitted to. Its fraud is the kind the
// first generator lacks: money fanning in to a mule, a balance drained slowly
// in transfers each under the drain share, card testing, and takeovers from a
// device that looks like the victim's own. Its festival day carries 26 to 80
// times a normal day's volume, most of it in the hour after midnight.

// Patterns of the second generator.
const (
	PatternMuleFanIn     = "mule_fan_in"     // many victims pay one mule, who cashes out
	PatternSlowDrain     = "slow_drain"      // a balance drained in many small transfers
	PatternCardTesting   = "card_testing"    // tiny payments at many merchants, then large ones
	PatternLegitCollect  = "legit_collector" // a vendor paid by many customers, cashing out daily
	PatternLegitRent     = "legit_rent"      // most of the balance to the landlord
	PatternLegitCashOut  = "legit_cash_out"  // salary in, cash out within the hour
	PatternLegitCommuter = "legit_commuter"  // many tiny fares at many merchants
)

// FraudPatterns2 are the fraud patterns of the second generator.
var FraudPatterns2 = []string{PatternTakeover, PatternMuleFanIn, PatternSlowDrain, PatternCardTesting}

// Config2 shapes the second generator's traffic.
type Config2 struct {
	Seed uint64
	// Markets are the market codes generated (each its own population).
	Markets []string
	// UsersPerMarket is the number of ordinary wallets per market; fraud
	// cases scale with it.
	UsersPerMarket int
	// Start of the evaluated period; HistoryDays before it are warm-up
	// (screened so that profiles exist, not counted). Days is the
	// evaluated period; the festival is 11.11 in each market's zone.
	Start       time.Time
	HistoryDays int
	Days        int
}

// DefaultConfig2 is the second generator's configuration in docs/.
func DefaultConfig2(seed uint64) Config2 {
	return Config2{Seed: seed, Markets: []string{"PH", "ID", "TH"}, UsersPerMarket: 600,
		Start: time.Date(2026, 11, 10, 0, 0, 0, 0, time.UTC), HistoryDays: 5, Days: 3}
}

// FestivalDate is the festival's local date in every market.
const FestivalDate = "2026-11-11"

type gen2 struct {
	cfg        Config2
	rng        *rand.Rand
	m          market.Market
	unit       float64
	from, end  time.Time // history start, period end
	surge      float64   // the festival day's volume over a normal day
	acts       []action2
	ids        int
	users      []*user2
	merchants  int
	txnsByUser map[string]int
}

// action2 is one movement of money, settled in global time order so that a
// transfer's money is the receiver's to move on.
type action2 struct {
	at  time.Time
	seq int
	txn Txn
	// share > 0: the amount is this share of the payer's balance at the
	// time (fraud and rent), in thousandths.
	share int64
	// payeeWallet: a transfer credits this wallet.
	payeeWallet bool
}

type user2 struct {
	wallet, device string
	typical        float64 // USD
	perDay         float64
	favorites      []string
	contacts       []string // wallets they send money to
	commuter       bool
}

// Generate2 returns the second generator's labelled payments and cash-ins
// of every configured market, in time order.
func Generate2(cfg Config2) ([]Txn, error) {
	if cfg.UsersPerMarket < 50 || cfg.UsersPerMarket > usersPerMarketMax {
		return nil, fmt.Errorf("users per market %d: want 50..%d", cfg.UsersPerMarket, usersPerMarketMax)
	}
	if cfg.Days < 1 || cfg.Days+cfg.HistoryDays > daysMax || cfg.HistoryDays < 0 {
		return nil, fmt.Errorf("days %d + history %d: want 1..%d in all", cfg.Days, cfg.HistoryDays, daysMax)
	}
	var all []Txn
	for _, code := range cfg.Markets {
		m, err := market.ByCode(code)
		if err != nil {
			return nil, err
		}
		g := &gen2{cfg: cfg, m: m, unit: unitsPerUSD[m.Code], merchants: 300,
			rng:  rand.New(rand.NewPCG(cfg.Seed^0x9e3779b97f4a7c15, uint64(len(all))+uint64(m.Code[0])<<8+uint64(m.Code[1]))),
			from: cfg.Start.Add(-time.Duration(cfg.HistoryDays) * 24 * time.Hour),
			end:  cfg.Start.Add(time.Duration(cfg.Days) * 24 * time.Hour)}
		g.surge = g.uniform(26, 80)
		g.population()
		all = append(all, g.settle()...)
	}
	sort.SliceStable(all, func(a, b int) bool { return all[a].Payment.At.Before(all[b].Payment.At) })
	for i := range all {
		all[i].Payment.EventKey = fmt.Sprintf("/synthetic2|%08d", i)
	}
	return all, nil
}

func (g *gen2) uniform(lo, hi float64) float64 { return lo + (hi-lo)*g.rng.Float64() }

func (g *gen2) logNormal(median, sigma float64) float64 {
	return median * math.Exp(sigma*g.rng.NormFloat64())
}

func (g *gen2) minor(usd float64) int64 { return max(int64(math.Round(usd*g.unit)), 1) }

func (g *gen2) id(prefix string) string {
	g.ids++
	return fmt.Sprintf("%s%s%07d", prefix, g.m.Code, g.ids)
}

func (g *gen2) merchant() string { return fmt.Sprintf("M%s%05d", g.m.Code, g.rng.IntN(g.merchants)) }

func (g *gen2) poisson(mean float64) int {
	if mean > 30 {
		return max(int(math.Round(mean+math.Sqrt(mean)*g.rng.NormFloat64())), 0)
	}
	l, k, p := math.Exp(-mean), 0, 1.0
	for {
		p *= g.rng.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

// festival is the start of 11.11 in the market's zone.
func (g *gen2) festival() time.Time {
	d, _ := time.ParseInLocation(time.DateOnly, FestivalDate, g.m.Location)
	return d
}

// dayTime is a time of day starting at day (local midnight), with this
// population's rhythm: lunch and evening peaks, quiet nights.
func (g *gen2) dayTime(day time.Time) time.Time {
	for {
		h := g.uniform(0, 24)
		w := 0.15
		switch {
		case h >= 11 && h < 14:
			w = 1
		case h >= 18 && h < 23:
			w = 1.2
		case h >= 7:
			w = 0.6
		}
		if g.rng.Float64() < w/1.2 {
			return day.Add(time.Duration(h * float64(time.Hour)))
		}
	}
}

func (g *gen2) add(a action2) {
	a.seq = len(g.acts)
	a.txn.Payment.Currency = string(g.m.Currency)
	a.txn.Payment.At = a.at.UTC().Truncate(time.Millisecond)
	a.at = a.txn.Payment.At
	if a.txn.Payment.Kind == "" {
		a.txn.Payment.Kind = fraud.KindCharge
	}
	g.acts = append(g.acts, a)
}

func (g *gen2) cashIn(wallet string, at time.Time, usd float64) {
	g.add(action2{at: at, txn: Txn{CashIn: true, Pattern: PatternLegit,
		Payment: fraud.Payment{Type: fraud.TypeCashIn, Wallet: wallet, Payee: "AGENT" + g.m.Code, Amount: g.minor(usd)}}})
}

func (g *gen2) pay(u *user2, at time.Time, typ, payee, device string, usd float64, pattern string, fraudulent bool) {
	g.add(action2{at: at, payeeWallet: typ == fraud.TypeTransfer, txn: Txn{Fraud: fraudulent, Pattern: pattern,
		Payment: fraud.Payment{Type: typ, Wallet: u.wallet, Payee: payee, DeviceID: device, DeviceCountry: g.m.Code, Amount: g.minor(usd)}}})
}

func (g *gen2) shareOf(u *user2, at time.Time, typ, payee, device, country string, share float64, pattern string, fraudulent bool) {
	g.add(action2{at: at, payeeWallet: typ == fraud.TypeTransfer, share: max(int64(share*1000), 1), txn: Txn{Fraud: fraudulent, Pattern: pattern,
		Payment: fraud.Payment{Type: typ, Wallet: u.wallet, Payee: payee, DeviceID: device, DeviceCountry: country, Amount: 1}}})
}

func (g *gen2) population() {
	n := g.cfg.UsersPerMarket
	for range n {
		u := &user2{wallet: g.id("C"), device: g.id("D"), typical: g.logNormal(8, 0.9), perDay: g.logNormal(0.7, 0.7)}
		for range 2 + g.rng.IntN(7) {
			u.favorites = append(u.favorites, g.merchant())
		}
		u.commuter = g.rng.Float64() < 0.06
		g.users = append(g.users, u)
	}
	for _, u := range g.users {
		for range 1 + g.rng.IntN(4) {
			u.contacts = append(u.contacts, g.users[g.rng.IntN(n)].wallet)
		}
	}
	for _, u := range g.users {
		g.ordinary(u)
	}
	scale := float64(n) / 1000
	cases := func(per1000 float64) int { return max(int(math.Round(per1000*scale)), 1) }
	for range cases(5) {
		g.collector()
	}
	g.festivalNewUsers()
	for range cases(14) {
		g.takeover(g.users[g.rng.IntN(n)])
	}
	for range cases(4) {
		g.muleRing()
	}
	for range cases(7) {
		g.slowDrain(g.users[g.rng.IntN(n)])
	}
	for range cases(6) {
		g.cardTesting()
	}
}

// ordinary is a user's days: shopping, transfers to contacts, a rare rent
// payment or salary cash-out, a new phone for a few, and the festival day.
func (g *gen2) ordinary(u *user2) {
	g.cashIn(u.wallet, g.from, u.typical*g.uniform(8, 30))
	device := u.device
	var switchAt time.Time
	if g.rng.Float64() < 0.03 {
		switchAt = g.cfg.Start.Add(time.Duration(g.rng.Int64N(int64(g.end.Sub(g.cfg.Start)))))
	}
	fest := g.festival()
	for day := g.from.In(g.m.Location); day.Before(g.end); day = day.Add(24 * time.Hour) {
		d := time.Date(day.Year(), day.Month(), day.Day(), 0, 0, 0, 0, g.m.Location)
		mean := u.perDay
		isFest := d.Equal(fest)
		if isFest {
			mean *= g.surge * 0.75 // the rest of the surge is new users
		}
		for range g.poisson(mean) {
			at := g.dayTime(d)
			if isFest && g.rng.Float64() < 0.45 {
				at = d.Add(time.Duration(g.rng.ExpFloat64() * float64(8*time.Minute)))
			}
			if at.Before(g.from) || !at.Before(g.end) {
				continue
			}
			dev, pattern := device, PatternLegit
			if !switchAt.IsZero() && at.After(switchAt) {
				dev, pattern = "N"+u.device, PatternLegitNewPhone
			}
			g.ordinaryPayment(u, at, dev, pattern, isFest)
		}
		if u.commuter {
			at := d.Add(time.Duration(7*60+g.rng.IntN(90)) * time.Minute)
			for range 3 + g.rng.IntN(5) {
				if !at.Before(g.from) && at.Before(g.end) {
					g.pay(u, at, fraud.TypePayment, fmt.Sprintf("T%s%03d", g.m.Code, g.rng.IntN(60)), device, g.uniform(0.2, 1.5), PatternLegitCommuter, false)
				}
				at = at.Add(time.Duration(3+g.rng.IntN(25)) * time.Minute)
			}
		}
	}
	if g.rng.Float64() < 0.03 { // rent, once
		at := g.dayTime(g.cfg.Start.Add(time.Duration(g.rng.IntN(g.cfg.Days)) * 24 * time.Hour))
		g.shareOf(u, at, fraud.TypeTransfer, u.contacts[0], device, g.m.Code, g.uniform(0.5, 0.95), PatternLegitRent, false)
	}
	if g.rng.Float64() < 0.03 { // salary in, cash out soon after
		at := g.dayTime(g.cfg.Start.Add(time.Duration(g.rng.IntN(g.cfg.Days)) * 24 * time.Hour))
		g.cashIn(u.wallet, at, g.uniform(150, 600))
		g.shareOf(u, at.Add(time.Duration(5+g.rng.IntN(55))*time.Minute), fraud.TypeCashOut, "AGENT"+g.m.Code, device, g.m.Code, g.uniform(0.6, 0.9), PatternLegitCashOut, false)
	}
}

func (g *gen2) ordinaryPayment(u *user2, at time.Time, device, pattern string, festival bool) {
	switch r := g.rng.Float64(); {
	case r < 0.12 && !festival:
		g.pay(u, at, fraud.TypeTransfer, u.contacts[g.rng.IntN(len(u.contacts))], device, g.logNormal(u.typical*2, 0.7), pattern, false)
	case r < 0.16:
		g.pay(u, at, fraud.TypeDebit, "BILL"+g.m.Code, device, g.logNormal(u.typical*1.5, 0.4), pattern, false)
	case r < 0.40 || festival && r < 0.7:
		g.pay(u, at, fraud.TypePayment, g.merchant(), device, g.logNormal(u.typical*map[bool]float64{true: 1.8, false: 1}[festival], 0.7), pattern, false)
	default:
		g.pay(u, at, fraud.TypePayment, u.favorites[g.rng.IntN(len(u.favorites))], device, g.logNormal(u.typical, 0.5), pattern, false)
	}
}

// festivalNewUsers join for the festival: a cash-in in the hours before
// midnight and a few deals at once. They bring a quarter of the surge (an
// ordinary day is about 0.9 payments per user; they make 3 each).
func (g *gen2) festivalNewUsers() {
	fest := g.festival()
	if !fest.Before(g.end) || fest.Before(g.cfg.Start) {
		return
	}
	count := int(math.Round(g.surge * 0.25 * 0.9 * float64(g.cfg.UsersPerMarket) / 3))
	for range max(count, 1) {
		u := &user2{wallet: g.id("C"), device: g.id("D"), typical: g.logNormal(10, 0.8)}
		at := fest.Add(-time.Duration(g.rng.IntN(180)) * time.Minute)
		g.cashIn(u.wallet, at, u.typical*g.uniform(2, 6))
		at = fest.Add(time.Duration(g.rng.ExpFloat64() * float64(20*time.Minute)))
		for range 1 + g.rng.IntN(5) {
			g.pay(u, at, fraud.TypePayment, g.merchant(), u.device, g.logNormal(u.typical*1.5, 0.6), PatternLegitNewUser, false)
			at = at.Add(time.Duration(20+g.rng.IntN(900)) * time.Second)
		}
	}
}

// collector is a vendor paid by transfer by many customers through the day,
// cashing out in the evening: fan-in and in-then-out, legitimately.
func (g *gen2) collector() {
	v := &user2{wallet: g.id("C"), device: g.id("D")}
	g.cashIn(v.wallet, g.from, 20)
	for day := g.from; day.Before(g.end); day = day.Add(24 * time.Hour) {
		d := time.Date(day.In(g.m.Location).Year(), day.In(g.m.Location).Month(), day.In(g.m.Location).Day(), 0, 0, 0, 0, g.m.Location)
		for range 8 + g.rng.IntN(25) {
			c := g.users[g.rng.IntN(len(g.users))]
			at := g.dayTime(d)
			if at.Before(g.from) || !at.Before(g.end) {
				continue
			}
			g.pay(c, at, fraud.TypeTransfer, v.wallet, c.device, g.logNormal(4, 0.6), PatternLegitCollect, false)
		}
		at := d.Add(time.Duration(21*60+g.rng.IntN(100)) * time.Minute)
		if !at.Before(g.from) && at.Before(g.end) {
			g.shareOf(v, at, fraud.TypeCashOut, "AGENT"+g.m.Code, v.device, g.m.Code, g.uniform(0.7, 1), PatternLegitCollect, false)
		}
	}
}

// periodTime is a time in the evaluated period, leaving room before its end.
func (g *gen2) periodTime(room time.Duration) time.Time {
	return g.cfg.Start.Add(time.Duration(g.rng.Int64N(int64(g.end.Sub(g.cfg.Start) - room))))
}

// mule is a fresh receiving wallet.
func (g *gen2) mule() *user2 {
	return &user2{wallet: g.id("C"), device: g.id("DX")}
}

// takeover: phished credentials. Unlike the first generator, a third of the
// attackers present the victim's own device id (emulators copy it) and a
// fifth send none; the money goes by transfer to a fresh mule who cashes out.
func (g *gen2) takeover(v *user2) {
	at := g.periodTime(4 * time.Hour)
	if g.rng.Float64() < 0.4 { // at night
		local := at.In(g.m.Location)
		at = time.Date(local.Year(), local.Month(), local.Day(), 1+g.rng.IntN(4), g.rng.IntN(60), 0, 0, g.m.Location)
	}
	device, country := g.id("DX"), g.m.Code
	switch r := g.rng.Float64(); {
	case r < 0.33:
		device = v.device
	case r < 0.53:
		device = ""
	case r < 0.75:
		country = foreign[g.rng.IntN(len(foreign))]
	}
	g.cashIn(v.wallet, at.Add(-time.Duration(1+g.rng.IntN(30))*time.Hour), g.uniform(80, 600))
	mule := g.mule()
	steps := 1 + g.rng.IntN(3)
	for i := range steps {
		share := g.uniform(0.5, 0.95)
		if i == steps-1 {
			share = 1
		}
		g.shareOf(v, at, fraud.TypeTransfer, mule.wallet, device, country, share, PatternTakeover, true)
		at = at.Add(time.Duration(1+g.rng.IntN(15)) * time.Minute)
	}
	g.shareOf(mule, at.Add(time.Duration(2+g.rng.IntN(30))*time.Minute), fraud.TypeCashOut, "AGENT"+g.m.Code, mule.device, g.m.Code, 1, PatternTakeover, true)
}

// muleRing: scam victims (investment, parcel, romance) each send money from
// their own phone to one fresh mule over some hours; the mule cashes out
// every few arrivals, within minutes.
func (g *gen2) muleRing() {
	mule := g.mule()
	at := g.periodTime(14 * time.Hour)
	arrivals := 0
	for range 8 + g.rng.IntN(23) {
		v := g.users[g.rng.IntN(len(g.users))]
		at = at.Add(time.Duration(2+g.rng.IntN(40)) * time.Minute)
		g.pay(v, at, fraud.TypeTransfer, mule.wallet, v.device, g.logNormal(60, 0.6), PatternMuleFanIn, true)
		if arrivals++; arrivals%(3+g.rng.IntN(3)) == 0 {
			g.shareOf(mule, at.Add(time.Duration(1+g.rng.IntN(10))*time.Minute), fraud.TypeCashOut, "AGENT"+g.m.Code, mule.device, g.m.Code, 1, PatternMuleFanIn, true)
		}
	}
	g.shareOf(mule, at.Add(time.Duration(1+g.rng.IntN(10))*time.Minute), fraud.TypeCashOut, "AGENT"+g.m.Code, mule.device, g.m.Code, 1, PatternMuleFanIn, true)
}

// slowDrain: a compromised wallet emptied over a day in transfers each well
// under the drain share, to a few mules, from a new device or the victim's.
func (g *gen2) slowDrain(v *user2) {
	at := g.periodTime(24 * time.Hour)
	g.cashIn(v.wallet, at.Add(-time.Duration(1+g.rng.IntN(20))*time.Hour), g.uniform(150, 800))
	device := v.device
	if g.rng.Float64() < 0.6 {
		device = g.id("DX")
	}
	mules := []*user2{g.mule(), g.mule(), g.mule()}[:1+g.rng.IntN(3)]
	steps := 5 + g.rng.IntN(8)
	for range steps {
		// The share of what is left that keeps each transfer near a fixed
		// share of the starting balance: 1/(steps-i) of it would be exact.
		g.shareOf(v, at, fraud.TypeTransfer, mules[g.rng.IntN(len(mules))].wallet, device, g.m.Code, g.uniform(0.1, 0.3), PatternSlowDrain, true)
		at = at.Add(time.Duration(20+g.rng.IntN(150)) * time.Minute)
	}
}

// cardTesting: a stolen card linked to a fresh wallet (or a victim's) is
// probed with tiny payments at many merchants, then spent on large ones.
func (g *gen2) cardTesting() {
	u := &user2{wallet: g.id("C"), device: g.id("DX")}
	if g.rng.Float64() < 0.4 {
		v := g.users[g.rng.IntN(len(g.users))]
		u.wallet = v.wallet
	}
	at := g.periodTime(3 * time.Hour)
	g.cashIn(u.wallet, at.Add(-time.Duration(1+g.rng.IntN(20))*time.Minute), g.uniform(60, 400))
	for range 5 + g.rng.IntN(16) {
		g.pay(u, at, fraud.TypePayment, g.merchant(), u.device, g.uniform(0.1, 1.5), PatternCardTesting, true)
		at = at.Add(time.Duration(10+g.rng.IntN(240)) * time.Second)
	}
	for range 1 + g.rng.IntN(3) {
		at = at.Add(time.Duration(1+g.rng.IntN(20)) * time.Minute)
		g.shareOf(u, at, fraud.TypePayment, g.merchant(), u.device, g.m.Code, g.uniform(0.4, 1), PatternCardTesting, true)
	}
}

// settle replays every action in time order with every wallet's balance:
// a transfer credits its receiver; an ordinary payment the balance cannot
// cover gets a cash-in first; a share takes its part of what is left.
func (g *gen2) settle() []Txn {
	sort.SliceStable(g.acts, func(a, b int) bool {
		if !g.acts[a].at.Equal(g.acts[b].at) {
			return g.acts[a].at.Before(g.acts[b].at)
		}
		return g.acts[a].seq < g.acts[b].seq
	})
	balance := map[string]int64{}
	var out []Txn
	for _, a := range g.acts {
		t := a.txn
		p := &t.Payment
		if !p.At.Before(g.end) {
			continue
		}
		t.Warmup = p.At.Before(g.cfg.Start)
		t.Festival = g.m.LocalDate(p.At) == FestivalDate
		if t.CashIn {
			t.Balance = balance[p.Wallet]
			balance[p.Wallet] += p.Amount
			out = append(out, t)
			continue
		}
		b := balance[p.Wallet]
		switch {
		case a.share > 0:
			p.Amount = b * a.share / 1000
		case !t.Fraud && p.Amount > b:
			topUp := p.Amount * int64(1+g.rng.IntN(3))
			out = append(out, Txn{CashIn: true, Pattern: PatternLegit, Balance: b, Warmup: t.Warmup, Festival: t.Festival,
				Payment: fraud.Payment{Kind: fraud.KindCharge, Type: fraud.TypeCashIn, Wallet: p.Wallet, Payee: "AGENT" + g.m.Code,
					Amount: topUp, Currency: p.Currency, At: p.At.Add(-time.Second)}})
			b += topUp
		case t.Fraud && p.Amount > b:
			p.Amount = b
		}
		if p.Amount <= 0 {
			continue
		}
		t.Balance = b
		balance[p.Wallet] = b - p.Amount
		if a.payeeWallet {
			t.PayeeBalance = balance[p.Payee]
			balance[p.Payee] += p.Amount
		}
		out = append(out, t)
	}
	return out
}
