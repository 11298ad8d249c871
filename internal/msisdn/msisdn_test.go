package msisdn_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sebelas/sebelas/internal/fault"
	"github.com/sebelas/sebelas/internal/msisdn"
)

// The events' msisdnMasked pattern (events/schemas/common.json).
var maskedPattern = regexp.MustCompile(`^[+(]?[0-9*][0-9*xX() -]*$`)

var e164Pattern = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)

func TestParseValidNumbersPerMarket(t *testing.T) {
	type want struct{ E164, Operator, Masked string }
	tests := []struct {
		raw, market string
		want        want
	}{
		// Indonesia: international, national with dashes, without the plus.
		{"+62 812-3456-7890", "ID", want{"+6281234567890", "telkomsel", "+62812****7890"}},
		{"0812-3456-7890", "ID", want{"+6281234567890", "telkomsel", "+62812****7890"}},
		{"6281234567890", "ID", want{"+6281234567890", "telkomsel", "+62812****7890"}},
		{"0856 1234 5678", "ID", want{"+6285612345678", "indosat", "+62856****5678"}},
		{"0817 1234 5678", "ID", want{"+6281712345678", "xl", "+62817****5678"}},
		{"0881 1234 5678", "ID", want{"+6288112345678", "smartfren", "+62881****5678"}},
		{"0895 1234 5678", "ID", want{"+6289512345678", "tri", "+62895****5678"}},
		// Philippines: (0917) is how numbers are printed on cards.
		{"+639170000456", "PH", want{"+639170000456", "globe", "+63917***0456"}},
		{"(0918) 123 4567", "PH", want{"+639181234567", "smart", "+63918***4567"}},
		{"0991 123 4567", "PH", want{"+639911234567", "dito", "+63991***4567"}},
		// Malaysia: 9- and 10-digit national numbers.
		{"+60 12-345 6789", "MY", want{"+60123456789", "maxis", "+6012***6789"}},
		{"019-234 5678", "MY", want{"+60192345678", "celcomdigi", "+6019***5678"}},
		{"018-234 5678", "MY", want{"+60182345678", "umobile", "+6018***5678"}},
		{"011-5123 4567", "MY", want{"+601151234567", "celcomdigi", "+60115***4567"}},
		// Thailand.
		{"081 234 5678", "TH", want{"+66812345678", "truemove", "+6681***5678"}},
		{"083 123 4567", "TH", want{"+66831234567", "dtac", "+6683***4567"}},
		{"+66 84 123 4567", "TH", want{"+66841234567", "truemove", "+6684***4567"}},
		{"+66 93 123 4567", "TH", want{"+66931234567", "ais", "+6693***4567"}},
		// Bangladesh.
		{"+8801700000123", "BD", want{"+8801700000123", "grameenphone", "+880170***0123"}},
		{"01812-345678", "BD", want{"+8801812345678", "robi", "+880181***5678"}},
		{"01912-345678", "BD", want{"+8801912345678", "banglalink", "+880191***5678"}},
		{"01512-345678", "BD", want{"+8801512345678", "teletalk", "+880151***5678"}},
		// Pakistan.
		{"0300 1234567", "PK", want{"+923001234567", "jazz", "+92300***4567"}},
		{"+92 345 1234567", "PK", want{"+923451234567", "telenor", "+92345***4567"}},
		{"0312-1234567", "PK", want{"+923121234567", "zong", "+92312***4567"}},
		{"0333 1234567", "PK", want{"+923331234567", "ufone", "+92333***4567"}},
		// India: 10 digits, with or without the trunk 0 or +91.
		{"+91 98765 43210", "IN", want{"+919876543210", "airtel", "+91987***3210"}},
		{"098765 43210", "IN", want{"+919876543210", "airtel", "+91987***3210"}},
		{"70000 12345", "IN", want{"+917000012345", "jio", "+91700***2345"}},
		{"+91 97271 23456", "IN", want{"+919727123456", "vi", "+91972***3456"}},
		{"+91 94123 45678", "IN", want{"+919412345678", "bsnl", "+91941***5678"}},
	}
	for _, tt := range tests {
		t.Run(tt.market+" "+tt.raw, func(t *testing.T) {
			n, err := msisdn.Parse(tt.raw, tt.market)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			got := want{n.E164, n.Operator.ID, n.Masked()}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if n.Market != tt.market || n.Operator.Market != tt.market || n.Operator.Name == "" {
				t.Errorf("market %q, operator %+v", n.Market, n.Operator)
			}
		})
	}
}

func TestParseRejectsPerMarket(t *testing.T) {
	tests := []struct {
		name, raw, market, reason string
	}{
		{"ID Jakarta landline", "021 5678 1234", "ID", msisdn.ReasonNotMobile},
		{"ID too short", "0812345", "ID", msisdn.ReasonInvalid},
		{"ID too long", "+62 812 3456 7890 1234", "ID", msisdn.ReasonInvalid},
		{"ID range of no operator sold", "0828 1234 5678", "ID", msisdn.ReasonUnknownOperator},
		{"ID a Philippine number paid in IDR", "+639170000456", "ID", msisdn.ReasonWrongMarket},
		{"PH Manila landline", "02 8123 4567", "PH", msisdn.ReasonNotMobile},
		{"PH a US number", "+1 415 555 2671", "PH", msisdn.ReasonWrongMarket},
		{"PH letters", "0917-CALL-ME", "PH", msisdn.ReasonInvalid},
		{"MY Kuala Lumpur landline", "03-2123 4567", "MY", msisdn.ReasonNotMobile},
		{"MY an Indonesian number paid in MYR", "+6281234567890", "MY", msisdn.ReasonWrongMarket},
		{"MY MVNO range not sold", "010-301 2345", "MY", msisdn.ReasonUnknownOperator},
		{"TH Bangkok landline", "02 123 4567", "TH", msisdn.ReasonNotMobile},
		{"TH range of no operator sold", "089 312 3456", "TH", msisdn.ReasonUnknownOperator},
		{"TH Thai number missing a digit", "081 234 567", "TH", msisdn.ReasonInvalid},
		{"BD Dhaka landline", "02-9123456", "BD", msisdn.ReasonNotMobile},
		{"BD defunct Citycell", "01112-345678", "BD", msisdn.ReasonUnknownOperator},
		{"BD a Bangladeshi number paid in INR", "+8801712345678", "IN", msisdn.ReasonWrongMarket},
		{"PK Islamabad area code only", "051 1234567", "PK", msisdn.ReasonInvalid},
		{"PK range of no operator sold", "0355 1234567", "PK", msisdn.ReasonUnknownOperator},
		{"IN Delhi landline", "011 2345 6789", "IN", msisdn.ReasonNotMobile},
		{"IN toll-free", "1800 123 4567", "IN", msisdn.ReasonNotMobile},
		{"IN defunct Aircel", "+91 72700 12345", "IN", msisdn.ReasonUnknownOperator},
		{"empty", "", "IN", msisdn.ReasonInvalid},
		{"two plus signs", "++91 98765 43210", "IN", msisdn.ReasonInvalid},
		{"plus in the middle", "98765+43210", "IN", msisdn.ReasonInvalid},
		{"extension", "+91 98765 43210 x12", "IN", msisdn.ReasonInvalid},
		{"over 32 characters", "+91 98765 43210" + strings.Repeat(" ", 20), "IN", msisdn.ReasonInvalid},
		{"fullwidth digits", "\uff10\uff18\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18\uff19\uff10", "ID", msisdn.ReasonInvalid},
		{"market not served", "+6581234567", "SG", "unknown_market"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := msisdn.Parse(tt.raw, tt.market)
			if err == nil {
				t.Fatalf("Parse = %+v, want %s", n, tt.reason)
			}
			if !fault.IsPermanent(err) || fault.ReasonOf(err) != tt.reason {
				t.Errorf("err = %v, want permanent %s", err, tt.reason)
			}
			// The error never quotes the number.
			if digits := onlyDigits(tt.raw); len(digits) >= 6 && strings.Contains(onlyDigits(err.Error()), digits[len(digits)-6:]) {
				t.Errorf("error %q quotes the number", err)
			}
		})
	}
}

func onlyDigits(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

func TestWarm(t *testing.T) {
	msisdn.Warm() // panics if the warm-up number stopped parsing
}

func TestOperatorsTable(t *testing.T) {
	for _, m := range []string{"ID", "PH", "MY", "TH", "BD", "PK", "IN"} {
		ops := msisdn.Operators(m)
		if len(ops) < 3 {
			t.Errorf("%s: %d operators, want at least 3", m, len(ops))
		}
		seen := map[string]bool{}
		for _, op := range ops {
			if !regexp.MustCompile(`^[a-z][a-z0-9]{1,31}$`).MatchString(op.ID) || seen[op.ID] {
				t.Errorf("%s: operator id %q malformed or repeated", m, op.ID)
			}
			seen[op.ID] = true
			if got, ok := msisdn.OperatorByID(m, op.ID); !ok || got.Name != op.Name {
				t.Errorf("OperatorByID(%s, %s) = %+v, %v", m, op.ID, got, ok)
			}
			// The events' label pattern.
			if !regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9 ._&'-]{0,63}$`).MatchString(op.Name) {
				t.Errorf("%s: name %q does not fit the events' label", op.ID, op.Name)
			}
		}
	}
	if ops := msisdn.Operators("SG"); len(ops) != 0 {
		t.Errorf("Operators(SG) = %v, want none", ops)
	}
}

func TestMaskRaw(t *testing.T) {
	tests := []struct{ raw, want string }{
		{"+62 812-3456-7890", "+***********90"},
		{"0812345", "*****45"},
		{"1234", "****"},
		{"", "*"},
		{"+", "+*"},
		{"abc", "*"},
	}
	for _, tt := range tests {
		if got := msisdn.MaskRaw(tt.raw); got != tt.want || !maskedPattern.MatchString(got) {
			t.Errorf("MaskRaw(%q) = %q, want %q matching the schema", tt.raw, got, tt.want)
		}
	}
}

// FuzzParse: no input panics; whatever parses is E.164 of the asked market,
// parses again to itself, and masks to something the schema accepts that
// hides at least three digits.
func FuzzParse(f *testing.F) {
	markets := []string{"ID", "PH", "MY", "TH", "BD", "PK", "IN"}
	for i, s := range []string{
		"+6281234567890", "0812-3456-7890", "(0918) 123 4567", "+60 12-345 6789", "081 234 5678",
		"+8801700000123", "0300 1234567", "+91 98765 43210", "021 5678 1234", "++62", "(", "0", "+0",
		"000000000000000000000000000000000", "0917-CALL-ME", "+1 415 555 2671",
	} {
		f.Add(s, uint8(i))
	}
	f.Fuzz(func(t *testing.T, raw string, m uint8) {
		market := markets[int(m)%len(markets)]
		masked := msisdn.MaskRaw(raw)
		if !maskedPattern.MatchString(masked) || len(masked) > 34 {
			t.Fatalf("MaskRaw(%q) = %q breaks the schema", raw, masked)
		}
		n, err := msisdn.Parse(raw, market)
		if err != nil {
			if !fault.IsPermanent(err) {
				t.Fatalf("Parse(%q): %v is not permanent", raw, err)
			}
			return
		}
		if !e164Pattern.MatchString(n.E164) || n.Market != market || n.Operator.Market != market {
			t.Fatalf("Parse(%q, %s) = %+v", raw, market, n)
		}
		again, err := msisdn.Parse(n.E164, market)
		if err != nil || again.E164 != n.E164 || again.Operator.ID != n.Operator.ID {
			t.Fatalf("Parse(%q) = %+v, %v; want it to parse to itself", n.E164, again, err)
		}
		mk := n.Masked()
		if !maskedPattern.MatchString(mk) || len(mk) != len(n.E164) || strings.Count(mk, "*") < 3 {
			t.Fatalf("Masked(%s) = %q", n.E164, mk)
		}
	})
}
