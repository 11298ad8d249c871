// Package msisdn checks the phone number a top-up is for. Parse takes what
// the user typed, in national or international format, normalises it to
// E.164 with github.com/nyaruka/phonenumbers (Google's libphonenumber
// metadata), checks that it is a mobile number of the market whose currency
// pays for it, and names the mobile operator from the number's range.
//
// A full phone number is personal data: errors never quote it, and logs and
// events carry Number.Masked (or MaskRaw of input that did not parse). Only
// the operator call and the top-up record use Number.E164.
package msisdn

import (
	"strings"

	"github.com/nyaruka/phonenumbers"

	"github.com/sebelas/sebelas/internal/fault"
	"github.com/sebelas/sebelas/internal/market"
)

// Reasons of the permanent errors of Parse (fault.ReasonOf).
const (
	// ReasonInvalid: not a phone number at all, or not a valid one.
	ReasonInvalid = "invalid_msisdn"
	// ReasonWrongMarket: a valid number of another country than the market
	// whose currency pays.
	ReasonWrongMarket = "msisdn_wrong_market"
	// ReasonNotMobile: a valid number of the market that is not a mobile
	// number (a landline, a toll-free or premium number).
	ReasonNotMobile = "msisdn_not_mobile"
	// ReasonUnknownOperator: a mobile number whose range belongs to no
	// operator top-ups are sold for.
	ReasonUnknownOperator = "unknown_operator"
)

// rawBytesMax bounds the input, as the event schema's msisdn does: the
// longest E.164 number is 15 digits, and 32 leaves room for a plus sign,
// parentheses, spaces and dashes.
const rawBytesMax = 32

// carrierLanguage is the language of the carrier names the operator table
// matches.
const carrierLanguage = "en"

// Number is a valid mobile number of one of the markets.
type Number struct {
	// E164 is the normalised number, "+6281234567890".
	E164 string
	// Market is the ISO 3166 code of the number's country.
	Market string
	// Operator is the operator the number's range belongs to.
	Operator Operator
	// countryCodeDigits is the length of the country calling code in E164,
	// which Masked keeps visible.
	countryCodeDigits int
}

// Parse validates raw as a mobile number of marketCode (an upper-case ISO
// 3166 code of one of the seven markets) and detects its operator. raw may
// be international ("+62 812-3456-7890", "6281234567890") or national
// ("0812 3456 7890"); only digits, one leading '+' and the separators space,
// '-', '(' and ')' are accepted, as the event schema says. Every failure is a
// fault.Permanent with one of the Reason* constants and a message that does
// not quote the number.
func Parse(raw, marketCode string) (Number, error) {
	m, err := market.ByCode(marketCode)
	if err != nil {
		return Number{}, err
	}
	if err := checkSyntax(raw); err != nil {
		return Number{}, err
	}
	num, err := phonenumbers.Parse(raw, m.Code)
	if err != nil || num.GetExtension() != "" || !phonenumbers.IsValidNumber(num) {
		return Number{}, fault.Permanentf(ReasonInvalid, "not a valid phone number (%d characters)", len(raw))
	}
	if region := phonenumbers.GetRegionCodeForNumber(num); region != m.Code {
		// The region is a country code, safe to name; it helps support.
		return Number{}, fault.Permanentf(ReasonWrongMarket, "a number of %.2q, not of %s (%s)", region, m.Code, m.Currency)
	}
	switch phonenumbers.GetNumberType(num) {
	case phonenumbers.MOBILE, phonenumbers.FIXED_LINE_OR_MOBILE:
	default:
		return Number{}, fault.Permanentf(ReasonNotMobile, "not a mobile number of %s", m.Code)
	}
	e164 := phonenumbers.Format(num, phonenumbers.E164)
	nsn := phonenumbers.GetNationalSignificantNumber(num)
	op, ok := byPrefix(m.Code, nsn)
	if !ok {
		carrier, err := phonenumbers.GetCarrierForNumber(num, carrierLanguage)
		if err != nil {
			// The carrier data is embedded in the library: failing to
			// read it is a broken build, not a bad number.
			panic("msisdn: carrier data: " + err.Error())
		}
		if op, ok = byCarrier(m.Code, carrier); !ok {
			return Number{}, fault.Permanentf(ReasonUnknownOperator, "the number's range belongs to no operator top-ups are sold for in %s", m.Code)
		}
	}
	return Number{E164: e164, Market: m.Code, Operator: op, countryCodeDigits: len(e164) - 1 - len(nsn)}, nil
}

// warmNumber is a valid number of a served operator, parsed by Warm.
const warmNumber = "+6281234567890"

// Warm loads the carrier data now instead of at the first Parse: about
// 60 ms and a few MB, which a function scaling from zero should pay before
// it reports ready rather than on its first top-up.
func Warm() {
	if _, err := Parse(warmNumber, "ID"); err != nil {
		panic("msisdn: warm-up number refused: " + err.Error()) // a broken table or library
	}
}

// checkSyntax applies the event schema's msisdn rule, ^[+(]?[0-9][0-9() -]*$
// within rawBytesMax bytes, so that Parse refuses the same inputs whichever
// way it is reached; libphonenumber alone would read letters as a keypad.
func checkSyntax(raw string) error {
	if len(raw) == 0 || len(raw) > rawBytesMax {
		return fault.Permanentf(ReasonInvalid, "a phone number has 1 to %d characters, got %d", rawBytesMax, len(raw))
	}
	rest := raw
	if rest[0] == '+' || rest[0] == '(' {
		rest = rest[1:]
	}
	if rest == "" || rest[0] < '0' || rest[0] > '9' {
		return fault.Permanentf(ReasonInvalid, "a phone number starts with a digit, '+' or '('")
	}
	for i := 0; i < len(rest); i++ {
		switch c := rest[i]; {
		case c >= '0' && c <= '9', c == ' ', c == '-', c == '(', c == ')':
		default:
			return fault.Permanentf(ReasonInvalid, "a phone number holds only digits, spaces, '-', '(' and ')' after its first character")
		}
	}
	return nil
}

// Masking keeps the country code, the first digits of the national number
// (they name the operator, which support needs) and the last digits (which
// the user recognises); at least maskedDigitsMin digits are always hidden.
const (
	maskedDigitsMin = 3
	headDigitsMax   = 3
	tailDigitsLong  = 4 // national numbers of longTailDigitsMin digits or more
	tailDigitsShort = 2
	// longTailDigitsMin: national numbers this long or longer keep
	// tailDigitsLong digits at the end, shorter ones tailDigitsShort; the
	// head shrinks first so that maskedDigitsMin digits stay hidden.
	longTailDigitsMin = 9
	rawVisibleDigits  = 2
)

// Masked is the number with its middle digits replaced by '*', such as
// "+62812***4567": safe for logs and events.
func (n Number) Masked() string {
	if n.E164 == "" || n.countryCodeDigits <= 0 {
		panic("msisdn: Masked on a Number that did not come from Parse")
	}
	cc := n.E164[1 : 1+n.countryCodeDigits]
	nsn := n.E164[1+n.countryCodeDigits:]
	return "+" + cc + maskDigits(nsn)
}

// maskDigits keeps a head and a tail of digits and stars the rest, hiding at
// least maskedDigitsMin digits (all of them for a very short input).
func maskDigits(digits string) string {
	n := len(digits)
	tail := tailDigitsShort
	if n >= longTailDigitsMin {
		tail = tailDigitsLong
	}
	head := min(headDigitsMax, n-tail-maskedDigitsMin)
	if head < 0 {
		head = 0
	}
	if n-head-tail < maskedDigitsMin {
		tail = max(0, n-head-maskedDigitsMin)
	}
	return digits[:head] + strings.Repeat("*", n-head-tail) + digits[n-tail:]
}

// MaskRaw masks input that may not be a phone number at all, for a log
// line about a number Parse refused: it keeps a leading '+' and the last
// rawVisibleDigits digits, stars every other digit and drops everything
// else. The result always matches the events' msisdnMasked pattern.
func MaskRaw(raw string) string {
	if len(raw) > rawBytesMax {
		raw = raw[:rawBytesMax]
	}
	var digits []byte
	for i := 0; i < len(raw); i++ {
		if c := raw[i]; c >= '0' && c <= '9' {
			digits = append(digits, c)
		}
	}
	var b strings.Builder
	if strings.HasPrefix(raw, "+") {
		b.WriteByte('+')
	}
	visible := 0
	if len(digits) > rawVisibleDigits+maskedDigitsMin {
		visible = rawVisibleDigits
	}
	b.WriteString(strings.Repeat("*", max(1, len(digits)-visible)))
	b.Write(digits[len(digits)-visible:])
	return b.String()
}
