package money

import (
	"errors"
	"strings"

	"github.com/sebelas/sebelas/internal/fault"
)

// Limits is the largest single charge per currency, in minor units. It is
// configuration (ParseLimits reads it from the environment) so an operator can
// lower a market's cap during an incident without a release.
type Limits map[Currency]int64

// DefaultLimits returns the per-charge caps of a fully verified wallet, each a
// fresh map. A charge above the cap is refused even when the balance covers
// it: at the festival peak a very large charge is more likely a taken-over
// wallet than a purchase, and the cap bounds what one fraud-screening miss can
// cost. A charge can never exceed what a wallet may hold, so the caps sit at
// or below the balance caps wallets work under, and they are of one order in
// value (roughly USD 400 to 3,000) so no market is an easy target:
//   - IDR 20,000,000: Bank Indonesia's balance cap for registered e-money.
//   - INR 200,000.00: the RBI's balance cap for a full-KYC prepaid instrument.
//   - PHP 100,000.00, THB 100,000.00, MYR 5,000.00, BDT 50,000.00,
//     PKR 500,000: the top verified tier of the market's wallets, rounded.
//
// They are starting values for the festival, not regulation: the operator
// sets the licensed values with ParseLimits.
func DefaultLimits() Limits {
	return Limits{
		IDR: 20_000_000,
		PHP: 100_000_00,
		MYR: 5_000_00,
		THB: 100_000_00,
		BDT: 50_000_00,
		PKR: 500_000,
		INR: 200_000_00,
	}
}

// limitsTextBytesMax bounds the environment string ParseLimits reads. All
// seven currencies at AmountMinorMax take 7*21 = 147 bytes; twice that leaves
// room and still refuses a pasted blob before any loop runs over it.
const limitsTextBytesMax = 320

// ParseLimits reads "IDR=20000000,PHP=10000000": comma-separated
// CURRENCY=MINOR_UNITS pairs that override DefaultLimits for the currencies
// they name. An empty string is the defaults. It is strict, because a typo in
// a money cap must stop the deploy, not be ignored: no spaces, no empty
// entries, no currency twice, upper-case codes of the seven only, and a
// plain integer from 1 to AmountMinorMax (a cap of zero would silently halt a
// market; that is a different switch).
func ParseLimits(s string) (Limits, error) {
	limits := DefaultLimits()
	if s == "" {
		return limits, nil
	}
	if len(s) > limitsTextBytesMax {
		return nil, fault.Permanentf(ReasonAmountLimit, "limits are %d bytes, at most %d", len(s), limitsTextBytesMax)
	}
	seen := make(map[Currency]bool, len(currencies))
	for _, entry := range strings.Split(s, ",") {
		code, value, ok := strings.Cut(entry, "=")
		if !ok {
			return nil, fault.Permanentf(ReasonAmountLimit, "limit entry %.32q: want CURRENCY=MINOR_UNITS", entry)
		}
		c, err := ParseCurrency(code)
		if err != nil {
			return nil, err
		}
		if seen[c] {
			return nil, fault.Permanentf(ReasonAmountLimit, "limit for %s given twice", c)
		}
		seen[c] = true
		minor, err := parseMinor(value)
		if err != nil {
			return nil, fault.Permanentf(ReasonAmountLimit, "limit for %s: %v", c, err)
		}
		if minor == 0 {
			return nil, fault.Permanentf(ReasonAmountLimit, "limit for %s is zero", c)
		}
		limits[c] = minor
	}
	return limits, nil
}

// parseMinor reads a plain integer of minor units from 0 to AmountMinorMax:
// ASCII digits, no sign, no leading zeros.
func parseMinor(s string) (int64, error) {
	if s == "" {
		return 0, errors.New("no digits")
	}
	if len(s) > 1 && s[0] == '0' {
		return 0, errors.New("leading zero")
	}
	var minor int64
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, errors.New("not a plain integer of minor units")
		}
		// Bounded after every digit, as in Parse: cannot overflow int64.
		minor = minor*10 + int64(s[i]-'0')
		if minor > AmountMinorMax {
			return 0, errors.New("above the maximum amount")
		}
	}
	return minor, nil
}

// Check refuses an amount above its currency's cap; exactly at the cap is
// allowed. A currency without a cap is refused too (fail closed): a missing
// entry means broken configuration, and the safe answer with money is no.
func (l Limits) Check(a Amount) error {
	limit, ok := l[a.Currency]
	if !ok {
		return fault.Permanentf(ReasonAmountLimit, "no per-charge limit configured for %.8q", string(a.Currency))
	}
	if a.Minor > limit {
		return fault.Permanentf(ReasonAmountLimit, "%s is above the per-charge limit %s", a, Amount{Minor: limit, Currency: a.Currency})
	}
	return nil
}
