package redact

import (
	"strings"
	"testing"
)

func TestWallet(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "****"},
		{"w1", "****"},
		{"w-a", "****"},
		{"w-an", "w****n"},
		{"w-ana", "w****a"},
		{"w-demo-id-1", "w-****-1"},
		{"3f2a8c1d-5b7e-4f00-9a6b-0c1d2e3f9c1d", "3f2a****9c1d"},
		{strings.Repeat("x", 64), "xxxx****xxxx"},
		{"w-\x1b[31mred\n", "w-****d?"},
	}
	for _, tt := range tests {
		if got := Wallet(tt.in); got != tt.want {
			t.Errorf("Wallet(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestWalletHidesMostOfIt: at most half of any id is shown.
func TestWalletHidesMostOfIt(t *testing.T) {
	for n := 0; n <= 64; n++ {
		id := strings.Repeat("a", n)
		shown := len(strings.ReplaceAll(Wallet(id), "*", ""))
		if shown*2 > n {
			t.Errorf("len %d: %d characters shown", n, shown)
		}
	}
}

func TestMSISDN(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "****"},
		{"12345", "****"},
		{"123456", "****"},
		{"1234567", "1****7"},
		{"+62 812-3456-7890", "+628****90"},
		{"081234567890", "081****90"},
		{"(+63) 917 123 4567", "639****67"},
		{"+92 300 1234567", "+923****67"},
	}
	for _, tt := range tests {
		if got := MSISDN(tt.in); got != tt.want {
			t.Errorf("MSISDN(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// FuzzRedact: never panics, never shows more than half of the input's
// digits (MSISDN) or characters (Wallet), never a control character.
func FuzzRedact(f *testing.F) {
	for _, s := range []string{"", "w-ana", "+62 812-3456-7890", "\x00\xff", strings.Repeat("9", 40)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		w, m := Wallet(s), MSISDN(s)
		for _, out := range []string{w, m} {
			for i := 0; i < len(out); i++ {
				if out[i] < 0x20 || out[i] > 0x7e {
					t.Fatalf("masked %q to %q with a control byte", s, out)
				}
			}
		}
		if shown := len(strings.ReplaceAll(w, "*", "")); shown*2 > len(s) {
			t.Fatalf("Wallet(%q) = %q shows too much", s, w)
		}
		digits := 0
		for i := 0; i < len(s); i++ {
			if s[i] >= '0' && s[i] <= '9' {
				digits++
			}
		}
		shownDigits := 0
		for i := 0; i < len(m); i++ {
			if m[i] >= '0' && m[i] <= '9' {
				shownDigits++
			}
		}
		if digits > 0 && shownDigits*2 >= digits {
			t.Fatalf("MSISDN(%q) = %q shows %d of %d digits", s, m, shownDigits, digits)
		}
	})
}
