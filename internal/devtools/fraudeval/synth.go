// Package fraudeval measures the quality of fraud rules offline: it generates
// labelled synthetic traffic for the seven markets (seeded, reproducible),
// reads labelled history in the PaySim CSV layout, replays either through
// the fraud scorer with an in-memory feature store, and reports precision,
// recall and false-decline rate. `sebelas fraud eval` is its command.
//
// The in-memory store (fraud.MemoryStore) is for this offline evaluation
// only; it counts like the DynamoDB store, which is tested on its own against
// DynamoDB Local.
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

// Patterns: the label of a synthetic payment. Legit traffic has variants
// that look like fraud on purpose, so that false declines are measured.
const (
	PatternLegit         = "legit"
	PatternLegitNewPhone = "legit_new_phone"  // a user on a new phone
	PatternLegitTravel   = "legit_travel"     // a user abroad
	PatternLegitNewUser  = "legit_new_user"   // signed up during the festival
	PatternLegitFamily   = "legit_family"     // wallets sharing one phone
	PatternLegitFestival = "legit_festival"   // the 11.11 midnight spree
	PatternTakeover      = "account_takeover" // drain in a few transfers
	PatternStolenCard    = "stolen_card"      // cash-in by stolen card, then spend
	PatternCouponFarm    = "coupon_farm"      // bots, many new wallets, one device
	PatternSIMSwap       = "sim_swap_topup"   // top-ups from a swapped SIM
)

// FraudPatterns lists the fraud patterns in report order.
var FraudPatterns = []string{PatternTakeover, PatternStolenCard, PatternCouponFarm, PatternSIMSwap}

// Txn is one labelled payment to screen.
type Txn struct {
	Payment fraud.Payment
	// Balance is the payer's spendable balance just before the payment.
	Balance int64
	Fraud   bool
	Pattern string
	// Warmup payments build the wallets' history before the period; they
	// are screened (so the store knows them) but not counted.
	Warmup bool
	// CashIn is money into Payment.Wallet (from Payment.Payee): not
	// screened, recorded as history.
	CashIn bool
	// Festival: on the market's festival day (11.11, local date).
	Festival bool
	// PayeeBalance is the receiving wallet's balance before a transfer.
	PayeeBalance int64
}

// Config shapes the synthetic traffic.
type Config struct {
	Seed uint64
	// UsersPerMarket is the number of ordinary wallets per market; fraud
	// cases scale with it.
	UsersPerMarket int
	// Start and Days: the simulated period. The default is 2026-11-09 to
	// 2026-11-12 UTC, so every market's 11.11 midnight is inside.
	Start time.Time
	Days  int
}

// Limits of the generator.
const (
	usersPerMarketMax = 100_000
	daysMax           = 31
	merchantsPerMkt   = 400
)

// DefaultConfig is the configuration the report in docs/ is made with.
func DefaultConfig(seed uint64) Config {
	return Config{Seed: seed, UsersPerMarket: 2000, Start: time.Date(2026, 11, 9, 0, 0, 0, 0, time.UTC), Days: 3}
}

// unitsPerUSD converts the generator's dollar amounts into each market's
// minor units (rough 2026 rates; IDR and PKR have no minor unit).
var unitsPerUSD = map[string]float64{
	"ID": 16000, "PH": 5700, "MY": 450, "TH": 3500, "BD": 12000, "PK": 280, "IN": 8400,
}

// dialCodes start the synthetic phone numbers.
var dialCodes = map[string]string{"ID": "62", "PH": "63", "MY": "60", "TH": "66", "BD": "880", "PK": "92", "IN": "91"}

// foreign is where travellers and attackers' devices are.
var foreign = []string{"SG", "HK", "AE", "JP", "US", "GB", "AU", "CN"}

type action struct {
	at     time.Time
	seq    int   // tie-break, generation order
	cashIn int64 // > 0: money in, not screened
	txn    *Txn
}

type gen struct {
	cfg     Config
	rng     *rand.Rand
	m       market.Market
	unit    float64
	end     time.Time
	actions map[string][]action // by wallet
	seq     int
	ids     int
}

// Generate returns the labelled payments of every market, in time order.
func Generate(cfg Config) ([]Txn, error) {
	if cfg.UsersPerMarket < 10 || cfg.UsersPerMarket > usersPerMarketMax {
		return nil, fmt.Errorf("users per market %d: want 10..%d", cfg.UsersPerMarket, usersPerMarketMax)
	}
	if cfg.Days < 1 || cfg.Days > daysMax {
		return nil, fmt.Errorf("days %d: want 1..%d", cfg.Days, daysMax)
	}
	var all []Txn
	for i, m := range market.All() {
		// One stream per market: a market's traffic does not change when
		// another market's generation changes.
		g := &gen{
			cfg: cfg, m: m, unit: unitsPerUSD[m.Code],
			rng:     rand.New(rand.NewPCG(cfg.Seed, uint64(i)+0x5eb31a5)),
			end:     cfg.Start.Add(time.Duration(cfg.Days) * 24 * time.Hour),
			actions: map[string][]action{},
		}
		g.market()
		all = append(all, g.settle()...)
	}
	sort.SliceStable(all, func(a, b int) bool { return all[a].Payment.At.Before(all[b].Payment.At) })
	for i := range all {
		all[i].Payment.EventKey = fmt.Sprintf("/synthetic|%08d", i)
	}
	return all, nil
}

// user is an ordinary wallet.
type user struct {
	wallet    string
	device    string
	phone     string
	typical   float64 // USD
	perDay    float64
	favorites []string
	since     time.Time // first activity
}

func (g *gen) id(prefix string) string {
	g.ids++
	return fmt.Sprintf("%s-%s-%06d", prefix, g.m.Code, g.ids)
}

func (g *gen) phone() string {
	return fmt.Sprintf("%s8%09d", dialCodes[g.m.Code], g.rng.IntN(1_000_000_000))
}

func (g *gen) merchant() string {
	return fmt.Sprintf("m-%s-%04d", g.m.Code, g.rng.IntN(merchantsPerMkt))
}

func (g *gen) logNormal(median, sigma float64) float64 {
	return median * math.Exp(sigma*g.rng.NormFloat64())
}

func (g *gen) minor(usd float64) int64 {
	return max(int64(math.Round(usd*g.unit)), 1)
}

func (g *gen) uniform(lo, hi float64) float64 { return lo + (hi-lo)*g.rng.Float64() }

func (g *gen) at(t time.Time) time.Time { return t.Truncate(time.Millisecond) }

func (g *gen) add(wallet string, a action) {
	g.seq++
	a.seq = g.seq
	a.at = g.at(a.at)
	g.actions[wallet] = append(g.actions[wallet], a)
}

func (g *gen) pay(wallet string, at time.Time, kind, payee, device, country string, usd float64, fraudulent bool, pattern string) {
	g.add(wallet, action{at: at, txn: &Txn{
		Payment: fraud.Payment{Kind: kind, Type: map[string]string{fraud.KindCharge: fraud.TypePayment, fraud.KindTopup: fraud.TypeTopup}[kind], Wallet: wallet, Payee: payee, DeviceID: device, DeviceCountry: country,
			Amount: g.minor(usd), Currency: string(g.m.Currency), At: at},
		Fraud: fraudulent, Pattern: pattern,
	}})
}

// randomTime is a time in [from, to) weighted to waking hours in the market.
func (g *gen) randomTime(from, to time.Time) time.Time {
	span := to.Sub(from)
	for range 8 {
		t := from.Add(time.Duration(g.rng.Int64N(int64(span))))
		if h := t.In(g.m.Location).Hour(); h >= 7 || g.rng.Float64() < 0.15 {
			return t
		}
	}
	return from.Add(time.Duration(g.rng.Int64N(int64(span))))
}

func (g *gen) festivalMidnight() time.Time {
	return time.Date(2026, 11, 11, 0, 0, 0, 0, g.m.Location)
}

func (g *gen) market() {
	n := g.cfg.UsersPerMarket
	users := make([]*user, 0, n)
	for range n {
		u := &user{
			wallet: g.id("w"), device: g.id("dev"), phone: g.phone(),
			typical: g.logNormal(12, 0.8), perDay: g.logNormal(1.2, 0.7), since: g.cfg.Start,
		}
		for range 3 + g.rng.IntN(10) {
			u.favorites = append(u.favorites, g.merchant())
		}
		users = append(users, u)
		g.ordinary(u)
	}
	// Fraud cases scale with the market.
	for range max(n/100, 1) {
		g.takeover(users[g.rng.IntN(len(users))])
	}
	for range max(n/150, 1) {
		g.stolenCard()
	}
	for range max(n/400, 1) {
		g.couponFarm()
	}
	for range max(n/200, 1) {
		g.simSwap(users[g.rng.IntN(len(users))])
	}
	// Legit lookalikes.
	for range max(n/20, 1) {
		g.newUser()
	}
	for range max(n/150, 1) {
		g.family()
	}
}

// ordinary generates one user's days: shopping and top-ups, a new phone or a
// trip for a few, the festival spree for many.
func (g *gen) ordinary(u *user) {
	// Everyone starts with a history: the week before the period.
	g.add(u.wallet, action{at: g.cfg.Start.Add(-7 * 24 * time.Hour), cashIn: g.minor(u.typical * g.uniform(5, 20))})
	history := 2 + g.rng.IntN(12)
	for range history {
		at := g.cfg.Start.Add(-time.Duration(1 + g.rng.Int64N(int64(6*24*time.Hour))))
		g.pay(u.wallet, at, fraud.KindCharge, u.favorites[g.rng.IntN(len(u.favorites))], u.device, g.m.Code, g.logNormal(u.typical, 0.4), false, PatternLegit)
		g.actions[u.wallet][len(g.actions[u.wallet])-1].txn.Warmup = true
	}
	device, country, pattern := u.device, g.m.Code, PatternLegit
	var switchAt, travelFrom, travelTo time.Time
	if g.rng.Float64() < 0.03 {
		switchAt = g.randomTime(g.cfg.Start, g.end)
	}
	if g.rng.Float64() < 0.015 {
		travelFrom = g.randomTime(g.cfg.Start, g.end)
		travelTo = travelFrom.Add(time.Duration(12+g.rng.IntN(36)) * time.Hour)
	}
	abroad := foreign[g.rng.IntN(len(foreign))]
	newPhone := "dev-new-" + u.device
	family := []string{g.phone(), g.phone()}
	days := g.cfg.Days
	payments := int(math.Round(u.perDay * float64(days)))
	for range payments {
		at := g.randomTime(g.cfg.Start, g.end)
		device, country, pattern = u.device, g.m.Code, PatternLegit
		if !switchAt.IsZero() && at.After(switchAt) {
			device, pattern = newPhone, PatternLegitNewPhone
		}
		if !travelFrom.IsZero() && at.After(travelFrom) && at.Before(travelTo) {
			country, pattern = abroad, PatternLegitTravel
		}
		switch r := g.rng.Float64(); {
		case r < 0.15: // top-up of their own phone or the family's
			phone := u.phone
			if g.rng.Float64() < 0.3 {
				phone = family[g.rng.IntN(len(family))]
			}
			g.pay(u.wallet, at, fraud.KindTopup, phone, device, country, g.uniform(1, 10), false, pattern)
		case r < 0.30: // somewhere new
			g.pay(u.wallet, at, fraud.KindCharge, g.merchant(), device, country, g.logNormal(u.typical, 0.6), false, pattern)
		default:
			g.pay(u.wallet, at, fraud.KindCharge, u.favorites[g.rng.IntN(len(u.favorites))], device, country, g.logNormal(u.typical, 0.5), false, pattern)
		}
	}
	// The 11.11 spree: a few deals in the first minutes after midnight,
	// bigger than usual, often at new shops.
	if g.rng.Float64() < 0.4 {
		midnight := g.festivalMidnight()
		at := midnight.Add(time.Duration(g.rng.IntN(600)) * time.Second)
		for range 1 + g.rng.IntN(4) {
			payee := u.favorites[g.rng.IntN(len(u.favorites))]
			if g.rng.Float64() < 0.5 {
				payee = g.merchant()
			}
			g.pay(u.wallet, at, fraud.KindCharge, payee, u.device, g.m.Code, g.logNormal(u.typical*2.5, 0.6), false, PatternLegitFestival)
			at = at.Add(time.Duration(5+g.rng.IntN(90)) * time.Second)
		}
	}
}

// newUser signs up during the period, cashes in and shops; a third of them
// spend most of their first cash-in at once, as a stolen card would.
func (g *gen) newUser() {
	wallet, device := g.id("w"), g.id("dev")
	at := g.randomTime(g.cfg.Start, g.end.Add(-6*time.Hour))
	first := g.logNormal(25, 0.7)
	g.add(wallet, action{at: at, cashIn: g.minor(first * g.uniform(1.05, 3))})
	at = at.Add(time.Duration(1+g.rng.IntN(120)) * time.Minute)
	for i := range 1 + g.rng.IntN(4) {
		usd := g.logNormal(12, 0.7)
		if i == 0 {
			usd = first
		}
		g.pay(wallet, at, fraud.KindCharge, g.merchant(), device, g.m.Code, usd, false, PatternLegitNewUser)
		at = at.Add(time.Duration(10+g.rng.IntN(600)) * time.Minute)
	}
}

// family: two or three new wallets of one household on one phone.
func (g *gen) family() {
	device := g.id("dev")
	at := g.randomTime(g.cfg.Start, g.end.Add(-6*time.Hour))
	for range 2 + g.rng.IntN(2) {
		wallet := g.id("w")
		g.add(wallet, action{at: at, cashIn: g.minor(g.uniform(20, 80))})
		at = at.Add(time.Duration(5+g.rng.IntN(180)) * time.Minute)
		g.pay(wallet, at, fraud.KindCharge, g.merchant(), device, g.m.Code, g.logNormal(10, 0.5), false, PatternLegitFamily)
	}
}

// takeover: an attacker on a new device (often abroad) drains an
// established wallet in two to four transfers to mule merchants.
func (g *gen) takeover(victim *user) {
	device := g.id("dev-atk")
	country := g.m.Code
	if g.rng.Float64() < 0.5 {
		country = foreign[g.rng.IntN(len(foreign))]
	}
	at := g.randomTime(g.cfg.Start, g.end.Add(-2*time.Hour))
	// Victims worth attacking hold money: a salary just arrived.
	g.add(victim.wallet, action{at: at.Add(-time.Duration(1+g.rng.IntN(48)) * time.Hour), cashIn: g.minor(g.uniform(150, 900))})
	steps := 2 + g.rng.IntN(3)
	for i := range steps {
		share := g.uniform(0.4, 1.0)
		if i == steps-1 {
			share = 1
		}
		// Amount is a share of what is left: settled in settle().
		g.add(victim.wallet, action{at: at, txn: &Txn{
			Payment: fraud.Payment{Kind: fraud.KindCharge, Type: fraud.TypePayment, Wallet: victim.wallet, Payee: fmt.Sprintf("m-%s-mule-%03d", g.m.Code, g.rng.IntN(50)),
				DeviceID: device, DeviceCountry: country, Amount: -int64(share * 1000), Currency: string(g.m.Currency), At: at},
			Fraud: true, Pattern: PatternTakeover,
		}})
		at = at.Add(time.Duration(2+g.rng.IntN(25)) * time.Minute)
	}
}

// stolenCard: a new wallet funded by a stolen card spends it within minutes
// on resellable goods.
func (g *gen) stolenCard() {
	wallet, device := g.id("w"), g.id("dev-atk")
	at := g.randomTime(g.cfg.Start, g.end.Add(-2*time.Hour))
	funded := g.uniform(150, 1200)
	g.add(wallet, action{at: at, cashIn: g.minor(funded)})
	spent := 0.0
	for range 1 + g.rng.IntN(3) {
		at = at.Add(time.Duration(1+g.rng.IntN(30)) * time.Minute)
		usd := math.Min(funded-spent, funded*g.uniform(0.35, 0.95))
		if usd < 5 {
			break
		}
		spent += usd
		g.pay(wallet, at, fraud.KindCharge, g.merchant(), device, g.m.Code, usd, true, PatternStolenCard)
	}
}

// couponFarm: one device creating many wallets, each using a new-user
// coupon at one of a few shops.
func (g *gen) couponFarm() {
	device := g.id("dev-bot")
	shops := []string{g.merchant(), g.merchant(), g.merchant()}
	at := g.randomTime(g.cfg.Start, g.end.Add(-4*time.Hour))
	for range 8 + g.rng.IntN(23) {
		wallet := g.id("w")
		g.add(wallet, action{at: at, cashIn: g.minor(g.uniform(5, 25))})
		at = at.Add(time.Duration(20+g.rng.IntN(400)) * time.Second)
		g.pay(wallet, at, fraud.KindCharge, shops[g.rng.IntN(len(shops))], device, g.m.Code, g.uniform(3, 15), true, PatternCouponFarm)
		if g.rng.Float64() < 0.3 {
			g.pay(wallet, at.Add(time.Duration(30+g.rng.IntN(300))*time.Second), fraud.KindCharge, shops[g.rng.IntN(len(shops))], device, g.m.Code, g.uniform(3, 15), true, PatternCouponFarm)
		}
	}
}

// simSwap: after swapping the victim's SIM, the attacker logs in on a new
// device and buys airtime for many numbers, to resell.
func (g *gen) simSwap(victim *user) {
	device := g.id("dev-atk")
	at := g.randomTime(g.cfg.Start, g.end.Add(-3*time.Hour))
	g.add(victim.wallet, action{at: at.Add(-time.Duration(1+g.rng.IntN(72)) * time.Hour), cashIn: g.minor(g.uniform(40, 200))})
	for range 4 + g.rng.IntN(9) {
		g.pay(victim.wallet, at, fraud.KindTopup, g.phone(), device, g.m.Code, g.uniform(2, 20), true, PatternSIMSwap)
		at = at.Add(time.Duration(1+g.rng.IntN(15)) * time.Minute)
	}
}

// settle walks each wallet's actions in time order, keeping its balance:
// an ordinary payment the balance cannot cover gets a cash-in first; a
// takeover transfer takes its share of what is left; a fraudulent payment
// above the balance takes all of it.
func (g *gen) settle() []Txn {
	var out []Txn
	wallets := make([]string, 0, len(g.actions))
	for w := range g.actions {
		wallets = append(wallets, w)
	}
	sort.Strings(wallets)
	for _, w := range wallets {
		acts := g.actions[w]
		sort.SliceStable(acts, func(a, b int) bool {
			if !acts[a].at.Equal(acts[b].at) {
				return acts[a].at.Before(acts[b].at)
			}
			return acts[a].seq < acts[b].seq
		})
		var balance int64
		for _, a := range acts {
			if a.cashIn > 0 {
				balance += a.cashIn
				continue
			}
			t := *a.txn
			if t.Payment.At.After(g.end) {
				continue // a sequence running past the period
			}
			switch {
			case t.Payment.Amount < 0: // a share of the balance, in thousandths
				t.Payment.Amount = balance * -t.Payment.Amount / 1000
			case !t.Fraud && t.Payment.Amount > balance:
				balance += t.Payment.Amount * int64(1+g.rng.IntN(3))
			case t.Fraud && t.Payment.Amount > balance:
				t.Payment.Amount = balance
			}
			if t.Payment.Amount <= 0 {
				continue
			}
			t.Balance = balance
			t.Festival = g.m.LocalDate(t.Payment.At) == FestivalDate
			balance -= t.Payment.Amount
			out = append(out, t)
		}
	}
	return out
}
