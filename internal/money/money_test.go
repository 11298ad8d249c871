package money

import (
	"math"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/text/currency"

	"github.com/sebelas/sebelas/internal/fault"
)

// outcome is what a fallible call returned, in a form cmp.Diff can compare:
// the value on success, the fault reason on failure.
type outcome struct {
	Amount Amount
	Reason string
}

func outcomeOf(t *testing.T, a Amount, err error) outcome {
	t.Helper()
	if err == nil {
		return outcome{Amount: a}
	}
	if !fault.IsPermanent(err) {
		t.Errorf("error %v is %v, want permanent", err, fault.KindOf(err))
	}
	return outcome{Reason: fault.ReasonOf(err)}
}

func TestDigits(t *testing.T) {
	want := map[Currency]int{IDR: 0, PHP: 2, MYR: 2, THB: 2, BDT: 2, PKR: 0, INR: 2}
	got := map[Currency]int{}
	for _, c := range Currencies() {
		got[c] = c.Digits()
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Digits (-want +got):\n%s", diff)
	}
}

// TestDigitsFromCLDR pins what x/text itself says, so an x/text upgrade that
// changes IDR or PKR shows up here by name and not as rescaled amounts.
func TestDigitsFromCLDR(t *testing.T) {
	type kinds struct{ Standard, Cash, Accounting int }
	want := map[Currency]kinds{IDR: {0, 0, 0}, PKR: {0, 0, 0}, PHP: {2, 2, 2}, INR: {2, 2, 2}}
	got := map[Currency]kinds{}
	for c := range want {
		unit := currency.MustParseISO(string(c))
		standard, _ := currency.Standard.Rounding(unit)
		cash, _ := currency.Cash.Rounding(unit)
		accounting, _ := currency.Accounting.Rounding(unit)
		got[c] = kinds{standard, cash, accounting}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("x/text rounding (-want +got):\n%s", diff)
	}
}

func TestDigitsUnknownPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Digits of an unknown currency did not panic")
		}
	}()
	Currency("USD").Digits()
}

func TestCurrencies(t *testing.T) {
	want := []Currency{IDR, PHP, MYR, THB, BDT, PKR, INR}
	got := Currencies()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Currencies (-want +got):\n%s", diff)
	}
	got[0] = "XXX" // a fresh slice: callers cannot change the package's list
	if diff := cmp.Diff(want, Currencies()); diff != "" {
		t.Errorf("Currencies after mutation (-want +got):\n%s", diff)
	}
}

func TestParseCurrency(t *testing.T) {
	type result struct {
		Currency Currency
		Reason   string
	}
	tests := []struct {
		in   string
		want result
	}{
		{"IDR", result{Currency: IDR}},
		{"PHP", result{Currency: PHP}},
		{"MYR", result{Currency: MYR}},
		{"THB", result{Currency: THB}},
		{"BDT", result{Currency: BDT}},
		{"PKR", result{Currency: PKR}},
		{"INR", result{Currency: INR}},
		{"", result{Reason: "unknown_currency"}},
		{"idr", result{Reason: "unknown_currency"}},
		{"Idr", result{Reason: "unknown_currency"}},
		{"USD", result{Reason: "unknown_currency"}},
		{" IDR", result{Reason: "unknown_currency"}},
		{"IDR ", result{Reason: "unknown_currency"}},
		{"IDR\x00", result{Reason: "unknown_currency"}},
		{"ＩＤＲ", result{Reason: "unknown_currency"}},
		{"360", result{Reason: "unknown_currency"}}, // ISO numeric code of IDR
	}
	for _, tt := range tests {
		c, err := ParseCurrency(tt.in)
		got := result{Currency: c}
		if err != nil {
			if !fault.IsPermanent(err) {
				t.Errorf("ParseCurrency(%q) error %v is not permanent", tt.in, err)
			}
			got = result{Reason: fault.ReasonOf(err)}
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("ParseCurrency(%q) (-want +got):\n%s", tt.in, diff)
		}
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		name  string
		minor int64
		c     Currency
		want  outcome
	}{
		{"zero", 0, PHP, outcome{Amount: Amount{0, PHP}}},
		{"one", 1, IDR, outcome{Amount: Amount{1, IDR}}},
		{"at max", AmountMinorMax, INR, outcome{Amount: Amount{AmountMinorMax, INR}}},
		{"above max", AmountMinorMax + 1, INR, outcome{Reason: "invalid_amount"}},
		{"max int64", math.MaxInt64, INR, outcome{Reason: "invalid_amount"}},
		{"negative", -1, PHP, outcome{Reason: "invalid_amount"}},
		{"min int64", math.MinInt64, PHP, outcome{Reason: "invalid_amount"}},
		{"unknown currency", 1, "USD", outcome{Reason: "unknown_currency"}},
		{"empty currency", 1, "", outcome{Reason: "unknown_currency"}},
	}
	for _, tt := range tests {
		a, err := New(tt.minor, tt.c)
		if diff := cmp.Diff(tt.want, outcomeOf(t, a, err)); diff != "" {
			t.Errorf("%s: New(%d, %q) (-want +got):\n%s", tt.name, tt.minor, tt.c, diff)
		}
	}
}

func TestParse(t *testing.T) {
	const bad = "invalid_amount"
	tests := []struct {
		in   string
		c    Currency
		want outcome
	}{
		{"12.50", PHP, outcome{Amount: Amount{1250, PHP}}},
		{"12.5", PHP, outcome{Amount: Amount{1250, PHP}}},
		{"12", PHP, outcome{Amount: Amount{1200, PHP}}},
		{"0", PHP, outcome{Amount: Amount{0, PHP}}},
		{"0.00", PHP, outcome{Amount: Amount{0, PHP}}},
		{"0.05", MYR, outcome{Amount: Amount{5, MYR}}},
		{"125000", IDR, outcome{Amount: Amount{125000, IDR}}},
		{"500000", PKR, outcome{Amount: Amount{500000, PKR}}},
		{"199999.99", INR, outcome{Amount: Amount{19999999, INR}}},
		{"10000000000000.00", THB, outcome{Amount: Amount{AmountMinorMax, THB}}}, // exactly the maximum
		{"1000000000000000", IDR, outcome{Amount: Amount{AmountMinorMax, IDR}}},
		{"10000000000000.01", THB, outcome{Reason: bad}},
		{"1000000000000001", IDR, outcome{Reason: bad}},
		{"9223372036854775807", IDR, outcome{Reason: bad}}, // max int64
		{"9223372036854775808", IDR, outcome{Reason: bad}}, // max int64 + 1
		{"92233720368547758.07", BDT, outcome{Reason: bad}},
		{"99999999999999999999", IDR, outcome{Reason: bad}},  // 20 bytes
		{"999999999999999999999", IDR, outcome{Reason: bad}}, // 21 bytes
		{"", PHP, outcome{Reason: bad}},
		{"1.", PHP, outcome{Reason: bad}},
		{".5", PHP, outcome{Reason: bad}},
		{".", PHP, outcome{Reason: bad}},
		{"1e3", PHP, outcome{Reason: bad}},
		{"1E3", IDR, outcome{Reason: bad}},
		{"-1", PHP, outcome{Reason: bad}},
		{"+1", PHP, outcome{Reason: bad}},
		{"-0", PHP, outcome{Reason: bad}},
		{" 1", PHP, outcome{Reason: bad}},
		{"1 ", PHP, outcome{Reason: bad}},
		{"1\n", PHP, outcome{Reason: bad}},
		{"１", PHP, outcome{Reason: bad}},     // full-width digit one
		{"١٢", PHP, outcome{Reason: bad}},    // Arabic-Indic digits
		{"১২", BDT, outcome{Reason: bad}},    // Bengali digits
		{"12.5０", PHP, outcome{Reason: bad}}, // full-width zero after the point
		{"1,000", PHP, outcome{Reason: bad}},
		{"1_000", PHP, outcome{Reason: bad}},
		{"1'000", INR, outcome{Reason: bad}},
		{"0x10", PHP, outcome{Reason: bad}},
		{"NaN", PHP, outcome{Reason: bad}},
		{"Inf", PHP, outcome{Reason: bad}},
		{"01", PHP, outcome{Reason: bad}},
		{"00.50", PHP, outcome{Reason: bad}},
		{"00", IDR, outcome{Reason: bad}},
		{"12.505", PHP, outcome{Reason: bad}}, // more decimals than PHP has
		{"12.500", PHP, outcome{Reason: bad}}, // even when they are zeros
		{"1.2.3", PHP, outcome{Reason: bad}},
		{"1..2", PHP, outcome{Reason: bad}},
		{"125000.0", IDR, outcome{Reason: bad}}, // IDR has no minor unit
		{"1.5", PKR, outcome{Reason: bad}},
		{"12.50", "USD", outcome{Reason: "unknown_currency"}},
		{"12.50", "php", outcome{Reason: "unknown_currency"}},
	}
	for _, tt := range tests {
		a, err := Parse(tt.in, tt.c)
		if diff := cmp.Diff(tt.want, outcomeOf(t, a, err)); diff != "" {
			t.Errorf("Parse(%q, %q) (-want +got):\n%s", tt.in, tt.c, diff)
		}
	}
}

func TestString(t *testing.T) {
	tests := []struct {
		in   Amount
		want string
	}{
		{Amount{1250, PHP}, "PHP 12.50"},
		{Amount{125000, IDR}, "IDR 125000"},
		{Amount{0, PHP}, "PHP 0.00"},
		{Amount{5, MYR}, "MYR 0.05"},
		{Amount{50, THB}, "THB 0.50"},
		{Amount{100, BDT}, "BDT 1.00"},
		{Amount{0, PKR}, "PKR 0"},
		{Amount{AmountMinorMax, INR}, "INR 10000000000000.00"},
		{Amount{AmountMinorMax, IDR}, "IDR 1000000000000000"},
		// Only reachable through struct literals or sums; String must not panic.
		{Amount{math.MaxInt64, PHP}, "PHP 92233720368547758.07"},
		{Amount{math.MinInt64, PHP}, "PHP -92233720368547758.08"},
		{Amount{-5, PHP}, "PHP -0.05"},
		{Amount{12, "USD"}, "USD 12"},
		{Amount{}, " 0"},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, tt.in.String()); diff != "" {
			t.Errorf("%#v.String() (-want +got):\n%s", tt.in, diff)
		}
	}
}

func TestIsZero(t *testing.T) {
	tests := []struct {
		in   Amount
		want bool
	}{
		{Amount{0, PHP}, true},
		{Amount{0, IDR}, true},
		{Amount{1, PHP}, false},
		{Amount{AmountMinorMax, PHP}, false},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, tt.in.IsZero()); diff != "" {
			t.Errorf("%v.IsZero() (-want +got):\n%s", tt.in, diff)
		}
	}
}

func TestAddSub(t *testing.T) {
	tests := []struct {
		name    string
		a, b    Amount
		wantAdd outcome
		wantSub outcome
	}{
		{
			name: "plain", a: Amount{1250, PHP}, b: Amount{250, PHP},
			wantAdd: outcome{Amount: Amount{1500, PHP}},
			wantSub: outcome{Amount: Amount{1000, PHP}},
		},
		{
			name: "to zero", a: Amount{125000, IDR}, b: Amount{125000, IDR},
			wantAdd: outcome{Amount: Amount{250000, IDR}},
			wantSub: outcome{Amount: Amount{0, IDR}},
		},
		{
			name: "below zero", a: Amount{1, INR}, b: Amount{2, INR},
			wantAdd: outcome{Amount: Amount{3, INR}},
			wantSub: outcome{Reason: "amount_below_zero"},
		},
		{
			name: "currency mismatch", a: Amount{1, PHP}, b: Amount{1, MYR},
			wantAdd: outcome{Reason: "currency_mismatch"},
			wantSub: outcome{Reason: "currency_mismatch"},
		},
		{
			name: "sum past the single-amount max is fine", a: Amount{AmountMinorMax, IDR}, b: Amount{AmountMinorMax, IDR},
			wantAdd: outcome{Amount: Amount{2 * AmountMinorMax, IDR}},
			wantSub: outcome{Amount: Amount{0, IDR}},
		},
		{
			name: "exactly max int64", a: Amount{math.MaxInt64 - 1, PKR}, b: Amount{1, PKR},
			wantAdd: outcome{Amount: Amount{math.MaxInt64, PKR}},
			wantSub: outcome{Amount: Amount{math.MaxInt64 - 2, PKR}},
		},
		{
			name: "overflow", a: Amount{math.MaxInt64, PKR}, b: Amount{1, PKR},
			wantAdd: outcome{Reason: "amount_overflow"},
			wantSub: outcome{Amount: Amount{math.MaxInt64 - 1, PKR}},
		},
		{
			name: "negative operand", a: Amount{-1, PHP}, b: Amount{1, PHP},
			wantAdd: outcome{Reason: "invalid_amount"},
			wantSub: outcome{Reason: "invalid_amount"},
		},
		{
			name: "unknown currency", a: Amount{1, "USD"}, b: Amount{1, "USD"},
			wantAdd: outcome{Reason: "unknown_currency"},
			wantSub: outcome{Reason: "unknown_currency"},
		},
	}
	for _, tt := range tests {
		sum, err := tt.a.Add(tt.b)
		if diff := cmp.Diff(tt.wantAdd, outcomeOf(t, sum, err)); diff != "" {
			t.Errorf("%s: %v.Add(%v) (-want +got):\n%s", tt.name, tt.a, tt.b, diff)
		}
		difference, err := tt.a.Sub(tt.b)
		if diff := cmp.Diff(tt.wantSub, outcomeOf(t, difference, err)); diff != "" {
			t.Errorf("%s: %v.Sub(%v) (-want +got):\n%s", tt.name, tt.a, tt.b, diff)
		}
	}
}

// FuzzParse checks Parse on text from outside: it never panics, every error
// is permanent, every accepted amount is in range and formats back (String)
// into text that parses to the same amount, and canonical text (all of the
// currency's decimals) is reproduced byte for byte. The other direction runs
// on the same input: every in-range minor-unit count survives New, String and
// Parse unchanged.
func FuzzParse(f *testing.F) {
	seeds := []struct {
		text  string
		minor int64
		c     uint8
	}{
		{"12.50", 1250, 1},
		{"125000", 125000, 0},
		{"0", 0, 5},
		{"1.", -1, 2},
		{".5", AmountMinorMax, 3},
		{"1e3", math.MaxInt64, 4},
		{"-1", math.MinInt64, 6},
		{"１", 5, 1},
		{"10000000000000.00", AmountMinorMax + 1, 6},
	}
	for _, s := range seeds {
		f.Add(s.text, s.minor, s.c)
	}
	f.Fuzz(func(t *testing.T, text string, minor int64, index uint8) {
		c := currencies[int(index)%len(currencies)]
		prefix := string(c) + " "

		a, err := Parse(text, c)
		if err != nil {
			if !fault.IsPermanent(err) {
				t.Fatalf("Parse(%q, %s) error %v is not permanent", text, c, err)
			}
		} else {
			if a.Currency != c || a.Minor < 0 || a.Minor > AmountMinorMax {
				t.Fatalf("Parse(%q, %s) = %#v: out of range", text, c, a)
			}
			formatted := a.String()
			if !strings.HasPrefix(formatted, prefix) {
				t.Fatalf("%#v.String() = %q: no %q prefix", a, formatted, prefix)
			}
			again, err := Parse(strings.TrimPrefix(formatted, prefix), c)
			if err != nil {
				t.Fatalf("Parse(%q) of String() of Parse(%q): %v", formatted, text, err)
			}
			if diff := cmp.Diff(a, again); diff != "" {
				t.Fatalf("round trip of %q (-want +got):\n%s", text, diff)
			}
			_, fraction, hasPoint := strings.Cut(text, ".")
			if canonical := (c.Digits() == 0 && !hasPoint) || len(fraction) == c.Digits(); canonical && prefix+text != formatted {
				t.Fatalf("canonical %q formatted as %q", text, formatted)
			}
		}

		b, err := New(minor, c)
		if (err == nil) != (minor >= 0 && minor <= AmountMinorMax) {
			t.Fatalf("New(%d, %s) error = %v", minor, c, err)
		}
		if err != nil {
			return
		}
		again, err := Parse(strings.TrimPrefix(b.String(), prefix), c)
		if err != nil {
			t.Fatalf("Parse of %q: %v", b.String(), err)
		}
		if diff := cmp.Diff(b, again); diff != "" {
			t.Fatalf("round trip of %d (-want +got):\n%s", minor, diff)
		}
	})
}

func TestMinorPerMajor(t *testing.T) {
	want := map[Currency]int64{IDR: 1, PKR: 1, PHP: 100, MYR: 100, THB: 100, BDT: 100, INR: 100}
	for _, c := range Currencies() {
		if got := c.MinorPerMajor(); got != want[c] {
			t.Errorf("%s.MinorPerMajor() = %d, want %d", c, got, want[c])
		}
	}
}
