// Package money holds amounts of the seven wallet currencies as int64 minor
// units beside an ISO 4217 code. There is no float anywhere on purpose: a
// float cannot hold 0.10 exactly, and a ledger that is off by one minor unit
// is a wrong ledger.
//
// How many minor-unit digits a currency has comes from CLDR through
// golang.org/x/text/currency, not from a table typed in here, so IDR and PKR
// have none (as CLDR and the wallets do) and the others have two.
package money

import (
	"errors"
	"fmt"
	"math"
	"strconv"

	"golang.org/x/text/currency"

	"github.com/sebelas/sebelas/internal/fault"
)

// Currency is an upper-case ISO 4217 code of one of the seven markets. Values
// come from the constants or from ParseCurrency; any other value is a
// programmer error.
type Currency string

// The currencies of the seven markets (DESIGN.md).
const (
	IDR Currency = "IDR" // Indonesia
	PHP Currency = "PHP" // Philippines
	MYR Currency = "MYR" // Malaysia
	THB Currency = "THB" // Thailand
	BDT Currency = "BDT" // Bangladesh
	PKR Currency = "PKR" // Pakistan
	INR Currency = "INR" // India
)

// Failure reasons, stable and snake_case: they end up in logs and events.
const (
	ReasonUnknownCurrency  = "unknown_currency"
	ReasonInvalidAmount    = "invalid_amount"
	ReasonCurrencyMismatch = "currency_mismatch"
	ReasonAmountOverflow   = "amount_overflow"
	ReasonAmountBelowZero  = "amount_below_zero"
	ReasonAmountLimit      = "amount_limit"
)

// currencies is the market order of DESIGN.md, which Currencies returns.
var currencies = [...]Currency{IDR, PHP, MYR, THB, BDT, PKR, INR}

// minorDigitsMax is the most minor-unit digits any of our currencies may have.
// DESIGN.md promises 0 or 2; if a CLDR update ever said otherwise, the package
// refuses to start rather than silently rescale every stored amount.
const minorDigitsMax = 2

// digitsTable is filled once from CLDR at package init (seven lookups in a
// compiled-in table: no I/O, negligible cost) so Digits is a plain switch.
var digitsTable = loadDigits()

func loadDigits() [len(currencies)]int {
	var table [len(currencies)]int
	for i, c := range currencies {
		unit, err := currency.ParseISO(string(c))
		if err != nil {
			panic(fmt.Sprintf("money: x/text does not know %s: %v", c, err))
		}
		// currency.Standard is CLDR's "digits": the precision accounts are
		// kept in. x/text v0.44.0 reports 0 for IDR and PKR under Standard
		// (and Cash and Accounting alike) and 2 for the other five; the
		// table test asserts exactly that.
		scale, _ := currency.Standard.Rounding(unit)
		if scale < 0 || scale > minorDigitsMax {
			panic(fmt.Sprintf("money: CLDR gives %s %d minor digits, want 0..%d", c, scale, minorDigitsMax))
		}
		table[i] = scale
	}
	return table
}

// index returns c's position in currencies, or -1 for a value that is not one
// of the seven.
func (c Currency) index() int {
	for i, known := range currencies {
		if c == known {
			return i
		}
	}
	return -1
}

// ParseCurrency accepts exactly one of the seven upper-case ISO codes. Lower
// case is refused rather than folded: the events carry upper case, and a
// lenient parser here would let two spellings of one currency reach storage.
func ParseCurrency(s string) (Currency, error) {
	c := Currency(s)
	if c.index() < 0 {
		return "", fault.Permanentf(ReasonUnknownCurrency, "currency %.8q is not one of %v", s, currencies)
	}
	return c, nil
}

// Currencies returns the seven currencies in market order (a fresh slice).
func Currencies() []Currency {
	out := make([]Currency, len(currencies))
	copy(out, currencies[:])
	return out
}

// Digits is the number of minor-unit digits of c per CLDR: 0 for IDR and PKR,
// 2 for the others. It panics for a value that is not one of the seven.
func (c Currency) Digits() int {
	i := c.index()
	if i < 0 {
		panic(fmt.Sprintf("money: Digits of unknown currency %.8q", string(c)))
	}
	return digitsTable[i]
}

// MinorPerMajor is how many minor units make one major unit of c: 1 for IDR
// and PKR, 100 for the others.
func (c Currency) MinorPerMajor() int64 {
	u := int64(1)
	for range c.Digits() {
		u *= 10
	}
	return u
}

// AmountMinorMax bounds a single amount (a charge, a refund, a top-up, a
// limit). 10^15 minor units is far above any wallet payment (IDR 10^15 is tens
// of billions of dollars) and below 2^53, so the amount survives exactly in
// consumers that read JSON numbers as float64 (JavaScript dashboards, jq).
// It also leaves int64 headroom for sums: 9,223 amounts at this maximum fit in
// an int64, and at the per-charge limits of DefaultLimits (at most 2*10^7
// minor units) more than 4*10^11 charges do, so a merchant's day or a
// market's festival never overflows. Add still checks, because headroom is an
// argument, not a proof.
const AmountMinorMax int64 = 1_000_000_000_000_000

// amountTextBytesMax bounds the text Parse reads. The longest valid text is
// "10000000000000000" (IDR at the maximum, 16 digits) or
// "10000000000000.00" (17 bytes); anything much longer is refused before
// a loop runs over it.
const amountTextBytesMax = 20

// Amount is a non-negative number of minor units of one currency.
// Build it with New or Parse, which enforce 0 <= Minor <= AmountMinorMax; the
// result of Add may exceed AmountMinorMax (it is a sum), never int64.
type Amount struct {
	Minor    int64
	Currency Currency
}

// New returns minor units of c, refusing unknown currencies, negative
// amounts and amounts above AmountMinorMax.
func New(minor int64, c Currency) (Amount, error) {
	if c.index() < 0 {
		return Amount{}, fault.Permanentf(ReasonUnknownCurrency, "currency %.8q is not one of %v", string(c), currencies)
	}
	if minor < 0 {
		return Amount{}, fault.Permanentf(ReasonInvalidAmount, "amount %d is negative", minor)
	}
	if minor > AmountMinorMax {
		return Amount{}, fault.Permanentf(ReasonInvalidAmount, "amount %d is above the maximum %d", minor, AmountMinorMax)
	}
	return Amount{Minor: minor, Currency: c}, nil
}

// Parse reads a plain decimal in major units: "125000" or "12.50". The
// grammar is strict because amounts come from operators and config:
// ASCII digits only (no sign, no exponent, no spaces, no full-width digits),
// no leading zeros ("0.50" is fine, "00.50" is not), and when there is a
// point it has one to c.Digits() digits after it ("1." and ".5" are refused,
// and IDR takes no point at all). Fewer decimals than Digits() are padded:
// "12.5" PHP is 1250.
func Parse(s string, c Currency) (Amount, error) {
	if c.index() < 0 {
		return Amount{}, fault.Permanentf(ReasonUnknownCurrency, "currency %.8q is not one of %v", string(c), currencies)
	}
	if len(s) == 0 {
		return Amount{}, fault.Permanent(ReasonInvalidAmount, errors.New("amount is empty"))
	}
	if len(s) > amountTextBytesMax {
		return Amount{}, fault.Permanentf(ReasonInvalidAmount, "amount is %d bytes, at most %d", len(s), amountTextBytesMax)
	}
	digits := c.Digits()

	whole, frac, hasPoint := s, "", false
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			whole, frac, hasPoint = s[:i], s[i+1:], true
			break
		}
	}
	if hasPoint && digits == 0 {
		return Amount{}, fault.Permanentf(ReasonInvalidAmount, "amount %q: %s has no minor unit", s, c)
	}
	if hasPoint && (len(frac) == 0 || len(frac) > digits) {
		return Amount{}, fault.Permanentf(ReasonInvalidAmount, "amount %q: want 1 to %d digits after the point", s, digits)
	}
	if len(whole) == 0 {
		return Amount{}, fault.Permanentf(ReasonInvalidAmount, "amount %q: no digits before the point", s)
	}
	if len(whole) > 1 && whole[0] == '0' {
		return Amount{}, fault.Permanentf(ReasonInvalidAmount, "amount %q: leading zero", s)
	}

	// Accumulate in minor units and compare with AmountMinorMax after every
	// digit: the running value never exceeds 10*AmountMinorMax+9, far inside
	// int64, so overflow cannot happen before it is caught.
	var minor int64
	for i := 0; i < len(whole); i++ {
		d := whole[i]
		if d < '0' || d > '9' {
			return Amount{}, fault.Permanentf(ReasonInvalidAmount, "amount %q: byte %d is not a digit", s, i)
		}
		minor = minor*10 + int64(d-'0')
		if minor > AmountMinorMax {
			return Amount{}, fault.Permanentf(ReasonInvalidAmount, "amount %q is above the maximum", s)
		}
	}
	for i := 0; i < digits; i++ {
		var d byte = '0'
		if i < len(frac) {
			d = frac[i]
		}
		if d < '0' || d > '9' {
			return Amount{}, fault.Permanentf(ReasonInvalidAmount, "amount %q: byte %d is not a digit", s, len(whole)+1+i)
		}
		minor = minor*10 + int64(d-'0')
		if minor > AmountMinorMax {
			return Amount{}, fault.Permanentf(ReasonInvalidAmount, "amount %q is above the maximum", s)
		}
	}
	return New(minor, c)
}

// String formats "PHP 12.50" or "IDR 125000": the code, a space, and the
// major units with exactly Digits() decimals. It never panics (fmt and logs
// call it on anything): a currency that is not one of the seven prints its
// minor units as they are.
func (a Amount) String() string {
	digits := 0
	if a.Currency.index() >= 0 {
		digits = a.Currency.Digits()
	}
	// The magnitude as uint64 so math.MinInt64 (only reachable through a
	// struct literal) formats instead of overflowing on negation.
	magnitude := uint64(a.Minor)
	sign := ""
	if a.Minor < 0 {
		magnitude = uint64(-(a.Minor + 1)) + 1
		sign = "-"
	}
	text := strconv.FormatUint(magnitude, 10)
	if digits > 0 {
		for len(text) <= digits {
			text = "0" + text
		}
		text = text[:len(text)-digits] + "." + text[len(text)-digits:]
	}
	return string(a.Currency) + " " + sign + text
}

// IsZero reports whether a is no money at all.
func (a Amount) IsZero() bool { return a.Minor == 0 }

// check asserts the invariant of an operand of Add and Sub. There is no upper
// bound here: sums may exceed AmountMinorMax, only int64 bounds them.
func (a Amount) check() error {
	if a.Currency.index() < 0 {
		return fault.Permanentf(ReasonUnknownCurrency, "currency %.8q is not one of %v", string(a.Currency), currencies)
	}
	if a.Minor < 0 {
		return fault.Permanentf(ReasonInvalidAmount, "amount %d is negative", a.Minor)
	}
	return nil
}

func sameCurrency(a, b Amount) error {
	if err := a.check(); err != nil {
		return err
	}
	if err := b.check(); err != nil {
		return err
	}
	if a.Currency != b.Currency {
		return fault.Permanentf(ReasonCurrencyMismatch, "%s and %s", a.Currency, b.Currency)
	}
	return nil
}

// Add returns a+b; different currencies and int64 overflow are errors.
func (a Amount) Add(b Amount) (Amount, error) {
	if err := sameCurrency(a, b); err != nil {
		return Amount{}, err
	}
	if a.Minor > math.MaxInt64-b.Minor {
		return Amount{}, fault.Permanentf(ReasonAmountOverflow, "%s + %s overflows int64", a, b)
	}
	return Amount{Minor: a.Minor + b.Minor, Currency: a.Currency}, nil
}

// Sub returns a-b; different currencies and a result below zero are errors
// (a wallet or a charge never goes negative).
func (a Amount) Sub(b Amount) (Amount, error) {
	if err := sameCurrency(a, b); err != nil {
		return Amount{}, err
	}
	if a.Minor < b.Minor {
		return Amount{}, fault.Permanentf(ReasonAmountBelowZero, "%s - %s is below zero", a, b)
	}
	return Amount{Minor: a.Minor - b.Minor, Currency: a.Currency}, nil
}
