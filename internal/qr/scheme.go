package qr

import (
	"strings"

	"github.com/sebelas/sebelas/internal/money"
)

// Scheme is one market's national QR scheme: which merchant account
// information template names the merchant, and how.
//
// Layouts follow each scheme's published specification as far as it is
// public (see docs/pay-at-shop.md). Where the specification is not public
// the layout is approximated and Approximated says so: the template id,
// its globally unique identifier (sub-id 00) and the merchant sub-id are
// then this package's best reading of the scheme and must be checked
// against the scheme's documents before going live in that market.
type Scheme struct {
	Name     string // "QRIS"
	Market   string // ISO 3166 alpha-2: "ID"
	Currency money.Currency
	// Numeric is the ISO 4217 numeric code tag 53 carries: "360".
	Numeric string
	// Templates are the accepted merchant account templates, the first one
	// the one Make writes.
	Templates []Template
	// Approximated is true where the layout is not the published one.
	Approximated bool
	// prefix starts the sebelas merchant id of a merchant of this scheme.
	prefix string
}

// Template is one merchant account information template (ids 26..51):
// sub-id 00 is its globally unique identifier (a reverse domain name or an
// application identifier), MerchantSub the sub-id holding the merchant's
// identifier in the scheme, AcquirerSub (optional) the acquirer's.
type Template struct {
	ID          string // "51"
	GUID        string // "ID.CO.QRIS.WWW", compared without case
	MerchantSub string
	AcquirerSub string
	// merchantOK checks the shape of the merchant identifier.
	merchantOK func(string) bool
	// extra are the constant sub-fields Make writes after the merchant's
	// (merchant criteria and the like).
	extra []Field
}

// schemes are the seven markets' schemes, in market order.
var schemes = []Scheme{
	{
		// QRIS (Bank Indonesia, ASPI): the national merchant repository
		// template 51 carries GUID ID.CO.QRIS.WWW, the NMID in 02 ("ID"
		// and 10 to 13 digits) and the merchant criteria in 03
		// (UMI, UKE, UME, UBE, URE).
		Name: "QRIS", Market: "ID", Currency: money.IDR, Numeric: "360", prefix: "qris",
		Templates: []Template{{ID: "51", GUID: "ID.CO.QRIS.WWW", MerchantSub: "02",
			merchantOK: nmidOK, extra: []Field{{ID: "03", Value: "UMI"}}}},
	},
	{
		// QR Ph P2M (BSP, PPMI): template 27 (QR Ph's merchant slot) with
		// GUID ph.ppmi.p2m, the acquirer's BIC in 01 and the merchant id in
		// 03. The GUID is published; the sub-ids are read from public
		// sample codes, hence approximated.
		Name: "QRPH", Market: "PH", Currency: money.PHP, Numeric: "608", prefix: "qrph", Approximated: true,
		Templates: []Template{{ID: "27", GUID: "ph.ppmi.p2m", AcquirerSub: "01", MerchantSub: "03",
			merchantOK: alnumOK(25)}},
	},
	{
		// DuitNow QR (PayNet): template 26 with PayNet's application id
		// A0000006150001 in 00, the acquirer id in 01 and the merchant id
		// in 02. The application id is published; the sub-ids are read
		// from public sample codes, hence approximated.
		Name: "DUITNOW", Market: "MY", Currency: money.MYR, Numeric: "458", prefix: "duitnow", Approximated: true,
		Templates: []Template{{ID: "26", GUID: "A0000006150001", AcquirerSub: "01", MerchantSub: "02",
			merchantOK: alnumOK(25)}},
	},
	{
		// Thai QR Payment / PromptPay (Bank of Thailand, TBA): bill payment
		// template 30 with AID A000000677010112 and the biller id (tax id
		// and a two-digit suffix, 15 digits) in 01; credit transfer
		// template 29 with AID A000000677010111 and a PromptPay id in 01
		// (mobile 0066XXXXXXXXX), 02 (national or tax id, 13 digits) or 03
		// (e-wallet id, 15 digits) is accepted on parse, the mobile form.
		Name: "PROMPTPAY", Market: "TH", Currency: money.THB, Numeric: "764", prefix: "promptpay",
		Templates: []Template{
			{ID: "30", GUID: "A000000677010112", MerchantSub: "01", merchantOK: digitsOK(15, 15)},
			{ID: "29", GUID: "A000000677010111", MerchantSub: "01", merchantOK: digitsOK(13, 13)},
			{ID: "29", GUID: "A000000677010111", MerchantSub: "02", merchantOK: digitsOK(13, 13)},
			{ID: "29", GUID: "A000000677010111", MerchantSub: "03", merchantOK: digitsOK(15, 15)},
		},
	},
	{
		// Bangla QR (Bangladesh Bank): interoperable through card-scheme
		// templates and a domestic template whose identifiers are not
		// public; approximated as template 26 with GUID BD.GOV.BB.QR, the
		// acquirer in 01 and the merchant id in 02.
		Name: "BANGLAQR", Market: "BD", Currency: money.BDT, Numeric: "050", prefix: "banglaqr", Approximated: true,
		Templates: []Template{{ID: "26", GUID: "BD.GOV.BB.QR", AcquirerSub: "01", MerchantSub: "02",
			merchantOK: alnumOK(25)}},
	},
	{
		// Raast P2M QR (State Bank of Pakistan): approximated as template
		// 26 with GUID PK.GOV.SBP.RAAST, the acquirer in 01 and the
		// merchant's Raast id or IBAN in 02.
		Name: "RAAST", Market: "PK", Currency: money.PKR, Numeric: "586", prefix: "raast", Approximated: true,
		Templates: []Template{{ID: "26", GUID: "PK.GOV.SBP.RAAST", AcquirerSub: "01", MerchantSub: "02",
			merchantOK: alnumOK(34)}},
	},
	{
		// Bharat QR (NPCI) with UPI: template 26 with NPCI's RID
		// A000000524 in 00 and the merchant's UPI id (VPA) in 01. The
		// card-network templates (02..07) Bharat QR also carries are
		// accepted and ignored; the sub-id layout is approximated.
		Name: "BHARATQR", Market: "IN", Currency: money.INR, Numeric: "356", prefix: "bharatqr", Approximated: true,
		Templates: []Template{{ID: "26", GUID: "A000000524", MerchantSub: "01", merchantOK: vpaOK}},
	},
}

// SchemeOf returns the scheme of a market code.
func SchemeOf(marketCode string) (Scheme, bool) {
	for _, s := range schemes {
		if s.Market == marketCode {
			return s, true
		}
	}
	return Scheme{}, false
}

// Schemes returns the seven schemes in market order (a fresh slice).
func Schemes() []Scheme { return append([]Scheme(nil), schemes...) }

// currencyOfNumeric maps an ISO 4217 numeric code to one of the seven
// currencies.
func currencyOfNumeric(numeric string) (money.Currency, bool) {
	for _, s := range schemes {
		if s.Numeric == numeric {
			return s.Currency, true
		}
	}
	return "", false
}

// MerchantID is the sebelas merchant id of a merchant identified by ref in
// this scheme: "qris:ID1020021181745". The one character of a scheme
// identifier that a sebelas id may not hold, '@' of a UPI id, becomes ':'.
func (s Scheme) MerchantID(ref string) string {
	return s.prefix + ":" + strings.ReplaceAll(ref, "@", ":")
}

func nmidOK(v string) bool {
	return strings.HasPrefix(v, "ID") && digitsOK(10, 13)(v[2:])
}

func digitsOK(minLen, maxLen int) func(string) bool {
	return func(v string) bool {
		if len(v) < minLen || len(v) > maxLen {
			return false
		}
		for i := 0; i < len(v); i++ {
			if v[i] < '0' || v[i] > '9' {
				return false
			}
		}
		return true
	}
}

// alnumOK accepts 1..maxLen letters, digits, '.', '-' and '_': what a
// sebelas id may hold after the scheme prefix.
func alnumOK(maxLen int) func(string) bool {
	return func(v string) bool {
		if len(v) == 0 || len(v) > maxLen {
			return false
		}
		for i := 0; i < len(v); i++ {
			c := v[i]
			if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c == '.' || c == '-' || c == '_') {
				return false
			}
		}
		return true
	}
}

// vpaOK accepts a UPI id "name@handle" whose parts alnumOK accepts.
func vpaOK(v string) bool {
	name, handle, ok := strings.Cut(v, "@")
	return ok && len(v) <= 50 && alnumOK(40)(name) && alnumOK(20)(handle)
}
