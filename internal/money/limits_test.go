package money

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sebelas/sebelas/internal/fault"
)

func TestDefaultLimits(t *testing.T) {
	want := Limits{
		IDR: 20_000_000,
		PHP: 10_000_000,
		MYR: 500_000,
		THB: 10_000_000,
		BDT: 5_000_000,
		PKR: 500_000,
		INR: 20_000_000,
	}
	got := DefaultLimits()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("DefaultLimits (-want +got):\n%s", diff)
	}
	for _, c := range Currencies() {
		if got[c] < 1 || got[c] > AmountMinorMax {
			t.Errorf("default limit %s = %d, want 1..%d", c, got[c], AmountMinorMax)
		}
	}
	got[IDR] = 1 // each call is a fresh map
	if DefaultLimits()[IDR] != want[IDR] {
		t.Error("DefaultLimits shares its map between calls")
	}
}

func TestParseLimits(t *testing.T) {
	type result struct {
		Limits Limits
		Reason string
	}
	with := func(overrides Limits) result {
		l := DefaultLimits()
		for c, v := range overrides {
			l[c] = v
		}
		return result{Limits: l}
	}
	const bad = "amount_limit"
	tests := []struct {
		in   string
		want result
	}{
		{"", with(nil)},
		{"IDR=20000000,PHP=10000000", with(nil)},
		{"IDR=1", with(Limits{IDR: 1})},
		{"PHP=5000000,INR=100", with(Limits{PHP: 5_000_000, INR: 100})},
		{"IDR=1,PHP=2,MYR=3,THB=4,BDT=5,PKR=6,INR=7", result{Limits: Limits{IDR: 1, PHP: 2, MYR: 3, THB: 4, BDT: 5, PKR: 6, INR: 7}}},
		{"IDR=1000000000000000", with(Limits{IDR: AmountMinorMax})},
		{"IDR=1000000000000001", result{Reason: bad}},
		{"IDR=9223372036854775807", result{Reason: bad}},
		{"IDR=99999999999999999999999", result{Reason: bad}},
		{"IDR=0", result{Reason: bad}},
		{"IDR=-1", result{Reason: bad}},
		{"IDR=+1", result{Reason: bad}},
		{"IDR=01", result{Reason: bad}},
		{"IDR=1.5", result{Reason: bad}},
		{"IDR=1e6", result{Reason: bad}},
		{"IDR=１", result{Reason: bad}},
		{"IDR=", result{Reason: bad}},
		{"IDR", result{Reason: bad}},
		{"=5", result{Reason: "unknown_currency"}},
		{"USD=5", result{Reason: "unknown_currency"}},
		{"idr=5", result{Reason: "unknown_currency"}},
		{" IDR=5", result{Reason: "unknown_currency"}},
		{"IDR=5 ", result{Reason: bad}},
		{"IDR = 5", result{Reason: "unknown_currency"}},
		{"IDR=5,", result{Reason: bad}},
		{",IDR=5", result{Reason: bad}},
		{"IDR=5,,PHP=5", result{Reason: bad}},
		{"IDR=5;PHP=5", result{Reason: bad}},
		{"IDR=5,IDR=6", result{Reason: bad}},
		{"IDR=5=6", result{Reason: bad}},
		{strings.Repeat("IDR=5,", 60) + "IDR=5", result{Reason: bad}}, // over limitsTextBytesMax
	}
	for _, tt := range tests {
		l, err := ParseLimits(tt.in)
		got := result{Limits: l}
		if err != nil {
			if !fault.IsPermanent(err) {
				t.Errorf("ParseLimits(%q) error %v is not permanent", tt.in, err)
			}
			got = result{Reason: fault.ReasonOf(err)}
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("ParseLimits(%q) (-want +got):\n%s", tt.in, diff)
		}
	}
}

func TestLimitsCheck(t *testing.T) {
	defaults := DefaultLimits()
	tests := []struct {
		name   string
		limits Limits
		in     Amount
		want   string // fault reason, "" when allowed
	}{
		{"zero", defaults, Amount{0, PHP}, ""},
		{"small", defaults, Amount{1250, PHP}, ""},
		{"IDR exactly at the limit", defaults, Amount{20_000_000, IDR}, ""},
		{"IDR one above", defaults, Amount{20_000_001, IDR}, "amount_limit"},
		{"PHP exactly at the limit", defaults, Amount{10_000_000, PHP}, ""},
		{"PHP one above", defaults, Amount{10_000_001, PHP}, "amount_limit"},
		{"MYR exactly at the limit", defaults, Amount{500_000, MYR}, ""},
		{"MYR one above", defaults, Amount{500_001, MYR}, "amount_limit"},
		{"THB exactly at the limit", defaults, Amount{10_000_000, THB}, ""},
		{"THB one above", defaults, Amount{10_000_001, THB}, "amount_limit"},
		{"BDT exactly at the limit", defaults, Amount{5_000_000, BDT}, ""},
		{"BDT one above", defaults, Amount{5_000_001, BDT}, "amount_limit"},
		{"PKR exactly at the limit", defaults, Amount{500_000, PKR}, ""},
		{"PKR one above", defaults, Amount{500_001, PKR}, "amount_limit"},
		{"INR exactly at the limit", defaults, Amount{20_000_000, INR}, ""},
		{"INR one above", defaults, Amount{20_000_001, INR}, "amount_limit"},
		{"at the amount max", defaults, Amount{AmountMinorMax, INR}, "amount_limit"},
		{"override", Limits{PHP: 100}, Amount{101, PHP}, "amount_limit"},
		{"currency without a limit fails closed", Limits{PHP: 100}, Amount{1, IDR}, "amount_limit"},
		{"nil limits fail closed", nil, Amount{1, IDR}, "amount_limit"},
		{"unknown currency", defaults, Amount{1, "USD"}, "amount_limit"},
	}
	for _, tt := range tests {
		err := tt.limits.Check(tt.in)
		got := ""
		if err != nil {
			if !fault.IsPermanent(err) {
				t.Errorf("%s: error %v is not permanent", tt.name, err)
			}
			got = fault.ReasonOf(err)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s: Check(%v) (-want +got):\n%s", tt.name, tt.in, diff)
		}
	}
}
