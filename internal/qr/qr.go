// Package qr reads and writes EMVCo Merchant-Presented Mode QR payloads
// (EMV QRCPS MPM 1.1), the format behind QRIS, QR Ph, DuitNow QR, Thai QR
// Payment / PromptPay, Bangla QR, Raast and Bharat QR: tag-length-value data
// objects, the CRC-16/CCITT-FALSE checksum, the required tags, each
// market's merchant account template (scheme.go), the currency and country
// of the market, static and dynamic codes, tips and convenience fees.
//
// Everything a payload can get wrong is a fault.Permanent error whose
// reason (Reason*) the app maps to a message (Message): payloads come from
// cameras and strangers' stickers, so the parser is strict, bounded and
// fuzzed.
package qr

import (
	"strconv"
	"strings"
	"time"

	"github.com/sebelas/sebelas/internal/fault"
	"github.com/sebelas/sebelas/internal/market"
	"github.com/sebelas/sebelas/internal/money"
)

// Refusal reasons: stable, snake_case, shown by the app through Message.
const (
	ReasonMalformed          = "qr_malformed"
	ReasonChecksum           = "qr_checksum"
	ReasonMissingTag         = "qr_missing_tag"
	ReasonUnsupportedCountry = "qr_unsupported_country"
	ReasonCurrencyMismatch   = "qr_currency_mismatch"
	ReasonNoMerchantAccount  = "qr_no_merchant_account"
	ReasonInvalidAmount      = "qr_invalid_amount"
	ReasonInvalidTip         = "qr_invalid_tip"
	ReasonDynamicIncomplete  = "qr_dynamic_incomplete"
	ReasonExpired            = "qr_expired"
	ReasonAmountMismatch     = "qr_amount_mismatch"
)

// messages are what the app shows for each reason.
var messages = map[string]string{
	ReasonMalformed:          "This is not a payment QR code.",
	ReasonChecksum:           "This QR code is damaged or was altered. Ask the merchant for a new one.",
	ReasonMissingTag:         "This QR code is incomplete. Ask the merchant for a new one.",
	ReasonUnsupportedCountry: "This QR code is from a country the wallet does not serve.",
	ReasonCurrencyMismatch:   "This QR code asks for a currency that is not its country's.",
	ReasonNoMerchantAccount:  "This QR code does not name a merchant the wallet can pay.",
	ReasonInvalidAmount:      "The amount in this QR code is not valid.",
	ReasonInvalidTip:         "The tip or fee in this QR code is not valid.",
	ReasonDynamicIncomplete:  "This one-time QR code has no amount or reference. Ask the merchant for a new one.",
	ReasonExpired:            "This QR code has expired. Ask the merchant for a new one.",
	ReasonAmountMismatch:     "The amount does not match what this QR code allows.",
}

// Message is the text the app shows for a refusal's reason.
func Message(reason string) string {
	if m, ok := messages[reason]; ok {
		return m
	}
	return "This QR code cannot be paid."
}

// Tag ids of EMVCo MPM 1.1 that this package reads.
const (
	tagFormat     = "00"
	tagInitiation = "01"
	tagMCC        = "52"
	tagCurrency   = "53"
	tagAmount     = "54"
	tagTip        = "55"
	tagFeeFixed   = "56"
	tagFeePercent = "57"
	tagCountry    = "58"
	tagName       = "59"
	tagCity       = "60"
	tagPostal     = "61"
	tagAdditional = "62"
	// Sub-ids of the additional data template (62).
	subBill      = "01"
	subReference = "05"
	subTerminal  = "07"
	// tagSebelas is the unreserved template (80..99) in which codes that
	// sebelas makes carry their expiry: 00 GUID, 01 Unix seconds.
	tagSebelas   = "80"
	sebelasGUID  = "DEV.SEBELAS"
	subExpiresAt = "01"
)

// Point of initiation (tag 01).
const (
	initiationStatic  = "11"
	initiationDynamic = "12"
)

// TipKind is what tag 55 allows.
type TipKind int

const (
	TipNone    TipKind = iota // no tag 55
	TipPrompt                 // "01": the payer may add a tip
	TipFixed                  // "02": a fixed convenience fee (tag 56)
	TipPercent                // "03": a percentage convenience fee (tag 57)
)

// Tip is the code's tip or convenience fee rule.
type Tip struct {
	Kind       TipKind
	FixedMinor int64 // TipFixed: the fee in minor units
	BasisPts   int64 // TipPercent: hundredths of a percent, 1..9999
}

// Code is a parsed and validated merchant-presented payload.
type Code struct {
	Dynamic  bool
	Scheme   Scheme
	Market   market.Market
	Currency money.Currency
	// MerchantRef is the merchant's identifier in the scheme (QRIS NMID,
	// PromptPay biller id, ...); Acquirer the acquirer's, when the
	// template has one.
	MerchantRef, Acquirer string
	MCC                   string
	// AmountMinor is tag 54 in minor units; 0 when the code has none (the
	// payer types it).
	AmountMinor int64
	Tip         Tip
	Name, City  string
	Postal      string
	// Reference (62/05, or the bill number 62/01 when there is no
	// reference label) names a dynamic code's one payment; Terminal is
	// 62/07.
	Reference, Terminal string
	// ExpiresAt is zero when the code carries no expiry.
	ExpiresAt time.Time
}

// MerchantID is the sebelas merchant behind the code.
func (c Code) MerchantID() string { return c.Scheme.MerchantID(c.MerchantRef) }

func malformed(format string, args ...any) error {
	return fault.Permanentf(ReasonMalformed, format, args...)
}

// Parse reads payload, checks its checksum and every rule of this package,
// and returns the code. now decides whether a dynamic code has expired.
func Parse(payload string, now time.Time) (Code, error) {
	fields, err := checkEnvelope(payload)
	if err != nil {
		return Code{}, err
	}
	var c Code
	if v, ok := lookup(fields, tagInitiation); ok {
		if v != initiationStatic && v != initiationDynamic {
			return Code{}, malformed("point of initiation %q is not 11 or 12", v)
		}
		c.Dynamic = v == initiationDynamic
	}
	for _, id := range []string{tagMCC, tagCurrency, tagCountry, tagName, tagCity} {
		if _, ok := lookup(fields, id); !ok {
			return Code{}, fault.Permanentf(ReasonMissingTag, "required tag %s is missing", id)
		}
	}
	if err := c.readMarket(fields); err != nil {
		return Code{}, err
	}
	if err := c.readMerchant(fields); err != nil {
		return Code{}, err
	}
	if err := c.readAmounts(fields); err != nil {
		return Code{}, err
	}
	if err := c.readAdditional(fields); err != nil {
		return Code{}, err
	}
	if c.Dynamic && (c.AmountMinor == 0 || c.Reference == "") {
		return Code{}, fault.Permanentf(ReasonDynamicIncomplete, "a dynamic code needs an amount (54) and a reference (62/05 or 62/01)")
	}
	if !c.ExpiresAt.IsZero() && !now.Before(c.ExpiresAt) {
		return Code{}, fault.Permanentf(ReasonExpired, "the code expired at %s", c.ExpiresAt.UTC().Format(time.RFC3339))
	}
	return c, nil
}

// checkEnvelope bounds the payload, decodes its top level, and checks the
// format indicator (first, "01") and the checksum (last, over everything
// before its value).
func checkEnvelope(payload string) ([]Field, error) {
	if len(payload) > payloadBytesMax {
		return nil, malformed("payload is %d bytes, at most %d", len(payload), payloadBytesMax)
	}
	fields, err := decodeFields(payload)
	if err != nil {
		return nil, err
	}
	if len(fields) == 0 || fields[0].ID != tagFormat || fields[0].Value != "01" {
		return nil, malformed("a payload starts with the format indicator 000201")
	}
	last := fields[len(fields)-1]
	if last.ID != crcTag || len(last.Value) != 4 {
		return nil, fault.Permanentf(ReasonMissingTag, "the checksum (6304....) must be the last data object")
	}
	want := checksum(payload[:len(payload)-4])
	if !strings.EqualFold(last.Value, want) {
		return nil, fault.Permanentf(ReasonChecksum, "checksum %s, the payload's is %s", last.Value, want)
	}
	return fields[:len(fields)-1], nil
}

// readMarket reads country and currency and checks that they agree.
func (c *Code) readMarket(fields []Field) error {
	country, _ := lookup(fields, tagCountry)
	m, err := market.ByCode(country)
	if err != nil {
		return fault.Permanentf(ReasonUnsupportedCountry, "country %.2q is not one of the wallet's markets", country)
	}
	s, ok := SchemeOf(m.Code)
	if !ok {
		panic("qr: a market without a scheme: " + m.Code)
	}
	numeric, _ := lookup(fields, tagCurrency)
	cur, ok := currencyOfNumeric(numeric)
	if !ok {
		return fault.Permanentf(ReasonCurrencyMismatch, "currency %.3q is not %s's (%s)", numeric, m.Code, s.Numeric)
	}
	if cur != m.Currency {
		return fault.Permanentf(ReasonCurrencyMismatch, "a %s code in %s: %s pays in %s", m.Code, cur, m.Code, m.Currency)
	}
	mcc, _ := lookup(fields, tagMCC)
	if !digitsOK(4, 4)(mcc) {
		return malformed("merchant category code %q is not four digits", mcc)
	}
	c.Market, c.Scheme, c.Currency, c.MCC = m, s, cur, mcc
	c.Name, _ = lookup(fields, tagName)
	c.City, _ = lookup(fields, tagCity)
	c.Postal, _ = lookup(fields, tagPostal)
	if len(c.Name) > 25 || len(c.City) > 15 || len(c.Postal) > 10 {
		return malformed("merchant name, city or postal code is longer than EMVCo allows (25, 15, 10)")
	}
	return nil
}

// readMerchant finds the scheme's merchant account template among ids
// 26..51 (other schemes' and card networks' templates may sit beside it).
func (c *Code) readMerchant(fields []Field) error {
	for _, t := range c.Scheme.Templates {
		v, ok := lookup(fields, t.ID)
		if !ok {
			continue
		}
		sub, err := decodeFields(v)
		if err != nil {
			return err
		}
		guid, _ := lookup(sub, "00")
		if !strings.EqualFold(guid, t.GUID) {
			continue
		}
		ref, ok := lookup(sub, t.MerchantSub)
		if !ok {
			continue
		}
		if !t.merchantOK(ref) {
			return fault.Permanentf(ReasonNoMerchantAccount, "%s merchant id %.32q does not have the scheme's form", c.Scheme.Name, ref)
		}
		c.MerchantRef = ref
		if t.AcquirerSub != "" {
			c.Acquirer, _ = lookup(sub, t.AcquirerSub)
		}
		return nil
	}
	return fault.Permanentf(ReasonNoMerchantAccount, "no %s merchant account template (%s)", c.Scheme.Name, c.Scheme.Templates[0].GUID)
}

// readAmounts reads the amount (54) and the tip rule (55, 56, 57).
func (c *Code) readAmounts(fields []Field) error {
	if v, ok := lookup(fields, tagAmount); ok {
		a, err := parseAmount(v, c.Currency)
		if err != nil || a == 0 {
			return fault.Permanentf(ReasonInvalidAmount, "amount %.13q is not a positive %s amount", v, c.Currency)
		}
		c.AmountMinor = a
	}
	tip, hasTip := lookup(fields, tagTip)
	fixed, hasFixed := lookup(fields, tagFeeFixed)
	percent, hasPercent := lookup(fields, tagFeePercent)
	switch {
	case !hasTip:
		if hasFixed || hasPercent {
			return fault.Permanentf(ReasonInvalidTip, "a convenience fee (56, 57) without the indicator 55")
		}
	case tip == "01" && !hasFixed && !hasPercent:
		c.Tip = Tip{Kind: TipPrompt}
	case tip == "02" && hasFixed && !hasPercent:
		a, err := parseAmount(fixed, c.Currency)
		if err != nil || a == 0 {
			return fault.Permanentf(ReasonInvalidTip, "fixed fee %.13q is not a positive %s amount", fixed, c.Currency)
		}
		c.Tip = Tip{Kind: TipFixed, FixedMinor: a}
	case tip == "03" && hasPercent && !hasFixed:
		bp, ok := parsePercent(percent)
		if !ok {
			return fault.Permanentf(ReasonInvalidTip, "fee percentage %.5q is not 00.01..99.99", percent)
		}
		c.Tip = Tip{Kind: TipPercent, BasisPts: bp}
	default:
		return fault.Permanentf(ReasonInvalidTip, "tip indicator %.2q does not match the fee fields", tip)
	}
	return nil
}

// readAdditional reads the reference and terminal (62) and the expiry of a
// code sebelas made (80).
func (c *Code) readAdditional(fields []Field) error {
	if v, ok := lookup(fields, tagAdditional); ok {
		sub, err := decodeFields(v)
		if err != nil {
			return err
		}
		c.Reference, _ = lookup(sub, subReference)
		if c.Reference == "" {
			c.Reference, _ = lookup(sub, subBill)
		}
		c.Terminal, _ = lookup(sub, subTerminal)
		if len(c.Reference) > 25 || len(c.Terminal) > 25 {
			return malformed("reference or terminal label longer than 25")
		}
	}
	v, ok := lookup(fields, tagSebelas)
	if !ok {
		return nil
	}
	sub, err := decodeFields(v)
	if err != nil {
		return err
	}
	if guid, _ := lookup(sub, "00"); guid != sebelasGUID {
		return nil // another party's unreserved template
	}
	if exp, ok := lookup(sub, subExpiresAt); ok {
		secs, err := strconv.ParseInt(exp, 10, 64)
		if err != nil || !digitsOK(10, 10)(exp) {
			return malformed("expiry %.12q is not Unix seconds", exp)
		}
		c.ExpiresAt = time.Unix(secs, 0).UTC()
	}
	return nil
}
