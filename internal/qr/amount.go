package qr

import (
	"strconv"
	"strings"

	"github.com/sebelas/sebelas/internal/fault"
	"github.com/sebelas/sebelas/internal/money"
)

// amountBytesMax is EMVCo's limit on tags 54 and 56.
const amountBytesMax = 13

// parseAmount reads an EMVCo amount ("10000", "99.34") into minor units of
// cur with money.Parse's strict grammar. A currency without a minor unit
// (IDR, PKR) also takes an all-zero fraction ("10000.00"), which some
// acquirers write.
func parseAmount(v string, cur money.Currency) (int64, error) {
	if len(v) > amountBytesMax {
		return 0, malformed("amount longer than %d", amountBytesMax)
	}
	if whole, frac, ok := strings.Cut(v, "."); ok && cur.Digits() == 0 && frac != "" && strings.Trim(frac, "0") == "" {
		v = whole
	}
	a, err := money.Parse(v, cur)
	if err != nil {
		return 0, err
	}
	return a.Minor, nil
}

// formatAmount writes minor units of cur as EMVCo does: "10000" or "99.34".
func formatAmount(minor int64, cur money.Currency) string {
	per := cur.MinorPerMajor()
	if per == 1 {
		return strconv.FormatInt(minor, 10)
	}
	frac := strconv.FormatInt(minor%per, 10)
	for len(frac) < cur.Digits() {
		frac = "0" + frac
	}
	return strconv.FormatInt(minor/per, 10) + "." + frac
}

// parsePercent reads tag 57 ("3", "2.5", "00.01".."99.99") into basis
// points (hundredths of a percent), 1..9999.
func parsePercent(v string) (int64, bool) {
	if len(v) == 0 || len(v) > 5 {
		return 0, false
	}
	whole, frac, _ := strings.Cut(v, ".")
	if whole == "" || len(whole) > 2 || len(frac) > 2 || !digitsOK(1, 2)(whole) || (frac != "" && !digitsOK(1, 2)(frac)) {
		return 0, false
	}
	for len(frac) < 2 {
		frac += "0"
	}
	w, _ := strconv.ParseInt(whole, 10, 64)
	f, _ := strconv.ParseInt(frac, 10, 64)
	bp := w*100 + f
	return bp, bp >= 1 && bp <= 9999
}

func formatPercent(bp int64) string {
	return strconv.FormatInt(bp/100, 10) + "." + strconv.FormatInt(bp/10%10, 10) + strconv.FormatInt(bp%10, 10)
}

// Payment is what paying a code takes from the payer: the merchant's
// amount and the tip or convenience fee on top, all to the merchant.
type Payment struct {
	BaseMinor  int64
	TipMinor   int64 // the payer's tip, or the code's convenience fee
	TotalMinor int64
}

// Pay works out a payment of c. enteredMinor is what the payer typed: it
// must be positive for a code without an amount, and 0 or the code's own
// amount for one with. tipMinor is the payer's tip, allowed only when the
// code prompts for one and at most the amount itself (a fat-finger bound);
// a fixed or percentage fee is the code's, never the payer's, and is
// rounded down.
func (c Code) Pay(enteredMinor, tipMinor int64) (Payment, error) {
	base := c.AmountMinor
	switch {
	case base > 0 && enteredMinor != 0 && enteredMinor != base:
		return Payment{}, fault.Permanentf(ReasonAmountMismatch, "the code asks for %d, the payer entered %d", base, enteredMinor)
	case base == 0 && (enteredMinor <= 0 || enteredMinor > money.AmountMinorMax):
		return Payment{}, fault.Permanentf(ReasonAmountMismatch, "a code without an amount needs a positive amount")
	case base == 0:
		base = enteredMinor
	}
	if tipMinor < 0 || (tipMinor > 0 && c.Tip.Kind != TipPrompt) {
		return Payment{}, fault.Permanentf(ReasonInvalidTip, "this code does not take a tip")
	}
	fee := tipMinor
	switch c.Tip.Kind {
	case TipPrompt:
		if tipMinor > base {
			return Payment{}, fault.Permanentf(ReasonInvalidTip, "a tip of %d is more than the amount %d", tipMinor, base)
		}
	case TipFixed:
		fee = c.Tip.FixedMinor
	case TipPercent:
		// In two parts so that base·bp cannot overflow: base ≤ 10^15.
		fee = base/10_000*c.Tip.BasisPts + base%10_000*c.Tip.BasisPts/10_000
	}
	total := base + fee
	if total > money.AmountMinorMax {
		return Payment{}, fault.Permanentf(ReasonInvalidAmount, "amount and fee exceed the maximum")
	}
	return Payment{BaseMinor: base, TipMinor: fee, TotalMinor: total}, nil
}
