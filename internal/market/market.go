// Package market names the seven markets of the wallet: country, currency and
// the time zone whose midnight starts the festival peak and closes the
// merchants' business day.
//
// Zones are loaded with time.LoadLocation, and the package imports
// time/tzdata so that a binary on a distroless image without
// /usr/share/zoneinfo still knows them (LoadLocation prefers the system
// database when there is one, and falls back to the embedded copy, about
// 450 KB of binary size).
package market

import (
	"fmt"
	"time"
	_ "time/tzdata"

	"github.com/sebelas/sebelas/internal/fault"
	"github.com/sebelas/sebelas/internal/money"
)

// ReasonUnknownMarket is the fault reason of ByCode for a code that is not
// one of the seven.
const ReasonUnknownMarket = "unknown_market"

// Market is one country the wallet operates in.
type Market struct {
	Code     string         // ISO 3166-1 alpha-2, upper case: "ID"
	Currency money.Currency // its only currency
	Zone     string         // IANA zone name: "Asia/Jakarta"
	Location *time.Location // Zone, loaded; shared and read-only
}

// LocalDate is t's calendar date in the market's zone, "2006-01-02": the
// business day a charge belongs to and the key settlement reads by.
func (m Market) LocalDate(t time.Time) string {
	if m.Location == nil {
		panic("market: LocalDate on a Market that did not come from this package")
	}
	return t.In(m.Location).Format(time.DateOnly)
}

// marketsCount is the number of markets the wallet operates in.
const marketsCount = 7

// markets is DESIGN.md's order, filled once at package init: seven lookups in
// the zone database (microseconds), and a failure is a broken build, so load
// panics. None of the seven zones observes daylight saving time today, but
// dates are always computed through the zone database, never as a fixed
// offset, so a future rule change is a tzdata update and not a code change.
var markets = load([marketsCount][3]string{
	{"ID", "IDR", "Asia/Jakarta"},      // UTC+7 (WIB, where most wallet users are)
	{"PH", "PHP", "Asia/Manila"},       // UTC+8
	{"MY", "MYR", "Asia/Kuala_Lumpur"}, // UTC+8
	{"TH", "THB", "Asia/Bangkok"},      // UTC+7
	{"BD", "BDT", "Asia/Dhaka"},        // UTC+6
	{"PK", "PKR", "Asia/Karachi"},      // UTC+5
	{"IN", "INR", "Asia/Kolkata"},      // UTC+5:30
})

func load(table [marketsCount][3]string) [marketsCount]Market {
	var out [marketsCount]Market
	for i, row := range table {
		code, currencyCode, zone := row[0], row[1], row[2]
		c, err := money.ParseCurrency(currencyCode)
		if err != nil {
			panic(fmt.Sprintf("market: %s: %v", code, err))
		}
		location, err := time.LoadLocation(zone)
		if err != nil {
			panic(fmt.Sprintf("market: %s: loading zone %s: %v", code, zone, err))
		}
		out[i] = Market{Code: code, Currency: c, Zone: zone, Location: location}
	}
	return out
}

// ByCode returns the market of an upper-case ISO 3166 alpha-2 code. Anything
// else, lower case included, is a permanent "unknown_market" error: codes
// come from events, and one spelling per market keeps keys unique.
func ByCode(code string) (Market, error) {
	for _, m := range markets {
		if m.Code == code {
			return m, nil
		}
	}
	return Market{}, fault.Permanentf(ReasonUnknownMarket, "market %.8q is not one of ID, PH, MY, TH, BD, PK, IN", code)
}

// ByCurrency returns the one market that uses c.
func ByCurrency(c money.Currency) (Market, error) {
	for _, m := range markets {
		if m.Currency == c {
			return m, nil
		}
	}
	return Market{}, fault.Permanentf(money.ReasonUnknownCurrency, "no market uses currency %.8q", string(c))
}

// All returns the seven markets in DESIGN.md's order (a fresh slice).
func All() []Market {
	out := make([]Market, len(markets))
	copy(out, markets[:])
	return out
}
