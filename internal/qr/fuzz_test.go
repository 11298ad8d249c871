package qr

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sebelas/sebelas/internal/fault"
)

// FuzzParse feeds arbitrary payloads to Parse: it must never panic, refuse
// everything with a permanent error that has a message for the app, and
// whatever it accepts must be a consistent code (its market's currency, a
// valid sebelas merchant id, a dynamic code with amount and reference, a
// payment that Pay can work out).
func FuzzParse(f *testing.F) {
	now := time.Date(2026, 11, 11, 10, 0, 0, 0, time.UTC)
	seeds := []Spec{
		{Market: "ID", MerchantRef: "ID1020021181745", MCC: "5812", Name: "WARUNG", City: "JAKARTA", Tip: Tip{Kind: TipPrompt}},
		{Market: "PH", Acquirer: "BNORPHMMXXX", MerchantRef: "M1", MCC: "5411", Name: "S", City: "M", Tip: Tip{Kind: TipFixed, FixedMinor: 500}},
		{Market: "MY", Acquirer: "890053", MerchantRef: "M1", MCC: "5814", Name: "N", City: "KL", Dynamic: true, AmountMinor: 1250,
			Reference: "R1", ExpiresAt: now.Add(time.Hour), Tip: Tip{Kind: TipPercent, BasisPts: 150}},
		{Market: "TH", MerchantRef: "010556612345601", MCC: "5499", Name: "K", City: "BKK", AmountMinor: 15000},
		{Market: "BD", Acquirer: "BRAC", MerchantRef: "M1", MCC: "5411", Name: "B", City: "DHAKA"},
		{Market: "PK", Acquirer: "SCBL", MerchantRef: "PK36SCBL0000001123456702", MCC: "5411", Name: "P", City: "KHI"},
		{Market: "IN", MerchantRef: "shop@okaxis", MCC: "5411", Name: "I", City: "PUNE", Postal: "411001"},
	}
	for _, s := range seeds {
		p, err := Make(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(p)
		f.Add(p[:len(p)/2])
		f.Add(strings.Replace(p, "5303", "5304", 1))
	}
	f.Add("")
	f.Add("000201")
	f.Add("00020163041D3A")
	idPattern := regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$`)
	f.Fuzz(func(t *testing.T, payload string) {
		c, err := Parse(payload, now)
		if err != nil {
			if !fault.IsPermanent(err) {
				t.Fatalf("refusal %v is not permanent", err)
			}
			if _, ok := messages[fault.ReasonOf(err)]; !ok {
				t.Fatalf("reason %q has no message", fault.ReasonOf(err))
			}
			return
		}
		if c.Currency != c.Market.Currency || c.Scheme.Market != c.Market.Code {
			t.Fatalf("accepted a code whose currency %s or scheme %s is not of market %s", c.Currency, c.Scheme.Name, c.Market.Code)
		}
		if !idPattern.MatchString(c.MerchantID()) {
			t.Fatalf("merchant id %q is not a sebelas id", c.MerchantID())
		}
		if c.Dynamic && (c.AmountMinor == 0 || c.Reference == "") {
			t.Fatal("accepted a dynamic code without amount or reference")
		}
		if _, err := c.Pay(1000, 0); err != nil && !fault.IsPermanent(err) {
			t.Fatalf("Pay: %v", err)
		}
	})
}
