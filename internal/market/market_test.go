package market

import (
	"go/parser"
	"go/token"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sebelas/sebelas/internal/fault"
	"github.com/sebelas/sebelas/internal/money"
)

func mustParse(t *testing.T, s string) time.Time {
	t.Helper()
	at, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return at
}

// TestLocalDateMidnight walks each zone across its 11.11 midnight: one
// second before is still the 10th, the midnight instant is the 11th. The UTC
// instants are written out by hand from the offsets in DESIGN.md, so the test
// does not share the code's arithmetic.
func TestLocalDateMidnight(t *testing.T) {
	tests := []struct {
		code   string
		before string // UTC, one second before local midnight
		at     string // UTC, local midnight
	}{
		{"ID", "2026-11-10T16:59:59Z", "2026-11-10T17:00:00Z"}, // +7
		{"PH", "2026-11-10T15:59:59Z", "2026-11-10T16:00:00Z"}, // +8
		{"MY", "2026-11-10T15:59:59Z", "2026-11-10T16:00:00Z"}, // +8
		{"TH", "2026-11-10T16:59:59Z", "2026-11-10T17:00:00Z"}, // +7
		{"BD", "2026-11-10T17:59:59Z", "2026-11-10T18:00:00Z"}, // +6
		{"PK", "2026-11-10T18:59:59Z", "2026-11-10T19:00:00Z"}, // +5
		{"IN", "2026-11-10T18:29:59Z", "2026-11-10T18:30:00Z"}, // +5:30
	}
	type dates struct{ Before, At string }
	for _, tt := range tests {
		m, err := ByCode(tt.code)
		if err != nil {
			t.Fatal(err)
		}
		want := dates{Before: "2026-11-10", At: "2026-11-11"}
		got := dates{Before: m.LocalDate(mustParse(t, tt.before)), At: m.LocalDate(mustParse(t, tt.at))}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s LocalDate around midnight (-want +got):\n%s", tt.code, diff)
		}
	}
}

// TestLocalDateOneInstant checks one instant against every zone at once, and
// that the input's own zone does not matter (only the instant does).
func TestLocalDateOneInstant(t *testing.T) {
	// 18:15Z on the 10th: past midnight east of UTC+5:45, not yet west of it.
	instants := []time.Time{
		mustParse(t, "2026-11-10T18:15:00Z"),
		mustParse(t, "2026-11-10T13:15:00-05:00"),
		mustParse(t, "2026-11-11T03:15:00+09:00"),
	}
	want := map[string]string{
		"ID": "2026-11-11", "PH": "2026-11-11", "MY": "2026-11-11", "TH": "2026-11-11",
		"BD": "2026-11-11", "PK": "2026-11-10", "IN": "2026-11-10",
	}
	for _, at := range instants {
		got := map[string]string{}
		for _, m := range All() {
			got[m.Code] = m.LocalDate(at)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("LocalDate(%s) (-want +got):\n%s", at.Format(time.RFC3339), diff)
		}
	}
}

func TestLocalDateYearEnd(t *testing.T) {
	m, err := ByCode("IN")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ in, want string }{
		{"2026-12-31T18:29:59Z", "2026-12-31"},
		{"2026-12-31T18:30:00Z", "2027-01-01"},
		{"2028-02-28T18:30:00Z", "2028-02-29"}, // leap day
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, m.LocalDate(mustParse(t, tt.in))); diff != "" {
			t.Errorf("IN LocalDate(%s) (-want +got):\n%s", tt.in, diff)
		}
	}
}

func TestLocalDateZeroMarketPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("LocalDate on a zero Market did not panic")
		}
	}()
	Market{}.LocalDate(time.Now())
}

func TestAll(t *testing.T) {
	type row struct {
		Code     string
		Currency money.Currency
		Zone     string
		Location string
	}
	want := []row{
		{"ID", money.IDR, "Asia/Jakarta", "Asia/Jakarta"},
		{"PH", money.PHP, "Asia/Manila", "Asia/Manila"},
		{"MY", money.MYR, "Asia/Kuala_Lumpur", "Asia/Kuala_Lumpur"},
		{"TH", money.THB, "Asia/Bangkok", "Asia/Bangkok"},
		{"BD", money.BDT, "Asia/Dhaka", "Asia/Dhaka"},
		{"PK", money.PKR, "Asia/Karachi", "Asia/Karachi"},
		{"IN", money.INR, "Asia/Kolkata", "Asia/Kolkata"},
	}
	var got []row
	for _, m := range All() {
		got = append(got, row{m.Code, m.Currency, m.Zone, m.Location.String()})
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("All (-want +got):\n%s", diff)
	}
	All()[0].Code = "XX" // a fresh slice: callers cannot change the package's table
	if All()[0].Code != "ID" {
		t.Error("All shares its backing array")
	}
}

func TestByCode(t *testing.T) {
	type result struct {
		Zone   string
		Reason string
	}
	tests := []struct {
		in   string
		want result
	}{
		{"ID", result{Zone: "Asia/Jakarta"}},
		{"IN", result{Zone: "Asia/Kolkata"}},
		{"PK", result{Zone: "Asia/Karachi"}},
		{"id", result{Reason: "unknown_market"}},
		{"IDN", result{Reason: "unknown_market"}},
		{"SG", result{Reason: "unknown_market"}},
		{"", result{Reason: "unknown_market"}},
		{" ID", result{Reason: "unknown_market"}},
	}
	for _, tt := range tests {
		m, err := ByCode(tt.in)
		got := result{Zone: m.Zone}
		if err != nil {
			if !fault.IsPermanent(err) {
				t.Errorf("ByCode(%q) error %v is not permanent", tt.in, err)
			}
			got = result{Reason: fault.ReasonOf(err)}
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("ByCode(%q) (-want +got):\n%s", tt.in, diff)
		}
	}
}

func TestByCurrency(t *testing.T) {
	for _, c := range money.Currencies() {
		m, err := ByCurrency(c)
		if err != nil {
			t.Fatalf("ByCurrency(%s): %v", c, err)
		}
		if m.Currency != c {
			t.Errorf("ByCurrency(%s) = market %s with %s", c, m.Code, m.Currency)
		}
		byCode, err := ByCode(m.Code)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(m.Zone, byCode.Zone); diff != "" {
			t.Errorf("ByCurrency and ByCode disagree on %s (-want +got):\n%s", c, diff)
		}
	}
	for _, c := range []money.Currency{"USD", "idr", ""} {
		_, err := ByCurrency(c)
		if diff := cmp.Diff("unknown_currency", fault.ReasonOf(err)); diff != "" || !fault.IsPermanent(err) {
			t.Errorf("ByCurrency(%q) = %v (-want +got):\n%s", c, err, diff)
		}
	}
}

// TestEmbedsZoneDatabase guards the blank import of time/tzdata, which looks
// unused and is what lets a binary without /usr/share/zoneinfo start.
func TestEmbedsZoneDatabase(t *testing.T) {
	file, err := parser.ParseFile(token.NewFileSet(), "market.go", nil, parser.ImportsOnly)
	if err != nil {
		t.Fatal(err)
	}
	for _, spec := range file.Imports {
		if path, _ := strconv.Unquote(spec.Path.Value); path == "time/tzdata" {
			return
		}
	}
	t.Error("market.go does not import time/tzdata")
}
