package qr

import (
	"strconv"
	"time"

	"github.com/sebelas/sebelas/internal/fault"
	"github.com/sebelas/sebelas/internal/money"
)

// Spec is what a merchant's code says.
type Spec struct {
	Market      string // ISO 3166 alpha-2: "ID"
	MerchantRef string // the merchant's identifier in the market's scheme
	Acquirer    string // for the templates that name one (QR Ph, DuitNow, ...)
	MCC         string // ISO 18245 merchant category code, four digits
	Name, City  string
	Postal      string
	// AmountMinor is the amount in minor units; 0 lets the payer type it
	// (static codes only).
	AmountMinor int64
	Tip         Tip
	// Dynamic codes are for one payment: they need an amount, a reference
	// and an expiry.
	Dynamic   bool
	Reference string
	Terminal  string
	ExpiresAt time.Time
}

// Make writes the payload of s in its market's scheme layout and returns it
// after reading it back with Parse, so whatever Make writes Parse accepts.
func Make(s Spec) (string, error) {
	scheme, ok := SchemeOf(s.Market)
	if !ok {
		return "", fault.Permanentf(ReasonUnsupportedCountry, "market %.2q is not one of the wallet's markets", s.Market)
	}
	if err := s.check(scheme); err != nil {
		return "", err
	}
	t := scheme.Templates[0]
	account := []Field{{ID: "00", Value: t.GUID}}
	if t.AcquirerSub != "" {
		account = append(account, Field{ID: t.AcquirerSub, Value: s.Acquirer})
	}
	account = append(account, Field{ID: t.MerchantSub, Value: s.MerchantRef})
	account = append(account, t.extra...)
	initiation := initiationStatic
	if s.Dynamic {
		initiation = initiationDynamic
	}
	fields := []Field{
		{ID: tagFormat, Value: "01"},
		{ID: tagInitiation, Value: initiation},
		{ID: t.ID, Value: encodeFields(account)},
		{ID: tagMCC, Value: s.MCC},
		{ID: tagCurrency, Value: scheme.Numeric},
	}
	if s.AmountMinor > 0 {
		fields = append(fields, Field{ID: tagAmount, Value: formatAmount(s.AmountMinor, scheme.Currency)})
	}
	fields = append(fields, tipFields(s.Tip, scheme.Currency)...)
	fields = append(fields, Field{ID: tagCountry, Value: scheme.Market}, Field{ID: tagName, Value: s.Name}, Field{ID: tagCity, Value: s.City})
	if s.Postal != "" {
		fields = append(fields, Field{ID: tagPostal, Value: s.Postal})
	}
	var additional []Field
	if s.Reference != "" {
		additional = append(additional, Field{ID: subReference, Value: s.Reference})
	}
	if s.Terminal != "" {
		additional = append(additional, Field{ID: subTerminal, Value: s.Terminal})
	}
	if len(additional) > 0 {
		fields = append(fields, Field{ID: tagAdditional, Value: encodeFields(additional)})
	}
	if !s.ExpiresAt.IsZero() {
		fields = append(fields, Field{ID: tagSebelas, Value: encodeFields([]Field{
			{ID: "00", Value: sebelasGUID}, {ID: subExpiresAt, Value: strconv.FormatInt(s.ExpiresAt.Unix(), 10)}})})
	}
	payload := encodeFields(fields) + crcHeader
	payload += checksum(payload)
	if _, err := Parse(payload, time.Time{}); err != nil {
		return "", err
	}
	return payload, nil
}

func tipFields(t Tip, cur money.Currency) []Field {
	switch t.Kind {
	case TipPrompt:
		return []Field{{ID: tagTip, Value: "01"}}
	case TipFixed:
		return []Field{{ID: tagTip, Value: "02"}, {ID: tagFeeFixed, Value: formatAmount(t.FixedMinor, cur)}}
	case TipPercent:
		return []Field{{ID: tagTip, Value: "03"}, {ID: tagFeePercent, Value: formatPercent(t.BasisPts)}}
	}
	return nil
}

// check refuses a spec Make cannot write faithfully.
func (s Spec) check(scheme Scheme) error {
	t := scheme.Templates[0]
	switch {
	case !t.merchantOK(s.MerchantRef):
		return fault.Permanentf(ReasonNoMerchantAccount, "%s merchant id %.32q does not have the scheme's form", scheme.Name, s.MerchantRef)
	case t.AcquirerSub != "" && !alnumOK(25)(s.Acquirer):
		return fault.Permanentf(ReasonNoMerchantAccount, "%s codes name the acquirer (1..25 letters or digits)", scheme.Name)
	case !digitsOK(4, 4)(s.MCC):
		return malformed("merchant category code %q is not four digits", s.MCC)
	case s.Name == "" || len(s.Name) > 25 || !printable(s.Name):
		return malformed("merchant name must be 1..25 printable ASCII characters")
	case s.City == "" || len(s.City) > 15 || !printable(s.City):
		return malformed("merchant city must be 1..15 printable ASCII characters")
	case len(s.Postal) > 10 || !printable(s.Postal):
		return malformed("postal code must be at most 10 printable ASCII characters")
	case s.AmountMinor < 0 || s.AmountMinor > money.AmountMinorMax || len(formatAmount(s.AmountMinor, scheme.Currency)) > amountBytesMax:
		return fault.Permanentf(ReasonInvalidAmount, "amount %d does not fit tag 54", s.AmountMinor)
	case s.Reference != "" && !alnumOK(25)(s.Reference), s.Terminal != "" && !alnumOK(25)(s.Terminal):
		return malformed("reference and terminal are 1..25 letters, digits, '.', '-' or '_'")
	case s.Dynamic && (s.AmountMinor == 0 || s.Reference == "" || s.ExpiresAt.IsZero()):
		return fault.Permanentf(ReasonDynamicIncomplete, "a dynamic code needs an amount, a reference and an expiry")
	case s.Tip.Kind == TipFixed && (s.Tip.FixedMinor <= 0 || len(formatAmount(s.Tip.FixedMinor, scheme.Currency)) > amountBytesMax):
		return fault.Permanentf(ReasonInvalidTip, "a fixed fee must be positive and fit tag 56")
	case s.Tip.Kind == TipPercent && (s.Tip.BasisPts < 1 || s.Tip.BasisPts > 9999):
		return fault.Permanentf(ReasonInvalidTip, "a fee percentage is 0.01..99.99")
	case s.Tip.Kind < TipNone || s.Tip.Kind > TipPercent:
		return fault.Permanentf(ReasonInvalidTip, "unknown tip kind")
	}
	return nil
}
