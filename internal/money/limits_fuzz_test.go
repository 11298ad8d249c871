package money

import "testing"

// FuzzParseLimits: SEBELAS_CHARGE_LIMITS is operator input read at start.
// Any string either fails or gives a cap for each of the seven currencies,
// each 1..AmountMinorMax; it never panics.
func FuzzParseLimits(f *testing.F) {
	for _, s := range []string{
		"", "IDR=20000000", "IDR=20000000,PHP=10000000", "IDR=0", "IDR=01", "idr=1", "IDR=1,IDR=2",
		"IDR=1000000000000000", "IDR=1000000000000001", "XXX=1", "IDR=", "=1", ",", "IDR=1,",
		"IDR=9223372036854775807", "IDR=-1", "IDR=1e3", "IDR=１",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseLimits(s)
		if err != nil {
			return
		}
		for _, c := range Currencies() {
			v, ok := l[c]
			if !ok || v < 1 || v > AmountMinorMax {
				t.Fatalf("ParseLimits(%q)[%s] = %d, %v", s, c, v, ok)
			}
		}
		if len(l) != len(Currencies()) {
			t.Fatalf("ParseLimits(%q) has %d currencies", s, len(l))
		}
	})
}
