package qr

import (
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/sebelas/sebelas/internal/fault"
	"github.com/sebelas/sebelas/internal/market"
	"github.com/sebelas/sebelas/internal/money"
)

var now = time.Date(2026, 11, 11, 10, 0, 0, 0, time.UTC)

// tlv writes one data object by hand, independently of encodeFields.
func tlv(id, value string) string { return fmt.Sprintf("%s%02d%s", id, len(value), value) }

// crcBitwise is CRC-16/CCITT-FALSE computed bit by bit from its definition,
// to check the library's table-driven one.
func crcBitwise(s string) string {
	crc := uint16(0xFFFF)
	for i := 0; i < len(s); i++ {
		crc ^= uint16(s[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return fmt.Sprintf("%04X", crc)
}

// seal appends the checksum object to a hand-built payload.
func seal(body string) string {
	body += "6304"
	return body + crcBitwise(body)
}

func TestChecksum(t *testing.T) {
	// "123456789" is the catalogue check value of CRC-16/CCITT-FALSE.
	if diff := cmp.Diff("29B1", checksum("123456789")); diff != "" {
		t.Errorf("check value (-want +got):\n%s", diff)
	}
	for _, s := range []string{"", "000201", "00020101021153033605802ID6304"} {
		if diff := cmp.Diff(crcBitwise(s), checksum(s)); diff != "" {
			t.Errorf("checksum(%q) against the bitwise definition (-want +got):\n%s", s, diff)
		}
	}
}

func mustMarket(t *testing.T, code string) market.Market {
	t.Helper()
	m, err := market.ByCode(code)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func mustScheme(t *testing.T, code string) Scheme {
	t.Helper()
	s, ok := SchemeOf(code)
	if !ok {
		t.Fatal("no scheme for", code)
	}
	return s
}

var cmpCode = cmp.Options{
	cmpopts.IgnoreUnexported(Scheme{}, Template{}),
	cmpopts.IgnoreFields(Scheme{}, "Templates"),
	cmpopts.IgnoreFields(market.Market{}, "Location"),
}

// TestPublishedLayouts builds payloads by hand to each scheme's published
// layout (tag by tag, with the bitwise CRC), parses them, and checks that
// Make writes the very same string from the parsed content.
func TestPublishedLayouts(t *testing.T) {
	exp := now.Add(15 * time.Minute)
	tests := []struct {
		name    string
		payload string
		spec    Spec
		want    Code
	}{{
		name: "QRIS static (51: ID.CO.QRIS.WWW, NMID, criteria)",
		payload: seal(tlv("00", "01") + tlv("01", "11") +
			tlv("51", tlv("00", "ID.CO.QRIS.WWW")+tlv("02", "ID1020021181745")+tlv("03", "UMI")) +
			tlv("52", "5812") + tlv("53", "360") + tlv("58", "ID") + tlv("59", "WARUNG BU SRI") + tlv("60", "JAKARTA") + tlv("61", "10110")),
		spec: Spec{Market: "ID", MerchantRef: "ID1020021181745", MCC: "5812", Name: "WARUNG BU SRI", City: "JAKARTA", Postal: "10110"},
		want: Code{MerchantRef: "ID1020021181745", MCC: "5812", Name: "WARUNG BU SRI", City: "JAKARTA", Postal: "10110"},
	}, {
		name: "QRIS dynamic with a tip prompt",
		payload: seal(tlv("00", "01") + tlv("01", "12") +
			tlv("51", tlv("00", "ID.CO.QRIS.WWW")+tlv("02", "ID1020021181745")+tlv("03", "UMI")) +
			tlv("52", "5812") + tlv("53", "360") + tlv("54", "25000") + tlv("55", "01") + tlv("58", "ID") + tlv("59", "WARUNG BU SRI") + tlv("60", "JAKARTA") +
			tlv("62", tlv("05", "INV-0001")+tlv("07", "KASIR1")) +
			tlv("80", tlv("00", "DEV.SEBELAS")+tlv("01", fmt.Sprint(exp.Unix())))),
		spec: Spec{Market: "ID", MerchantRef: "ID1020021181745", MCC: "5812", Name: "WARUNG BU SRI", City: "JAKARTA",
			Dynamic: true, AmountMinor: 25000, Tip: Tip{Kind: TipPrompt}, Reference: "INV-0001", Terminal: "KASIR1", ExpiresAt: exp},
		want: Code{Dynamic: true, MerchantRef: "ID1020021181745", MCC: "5812", Name: "WARUNG BU SRI", City: "JAKARTA",
			AmountMinor: 25000, Tip: Tip{Kind: TipPrompt}, Reference: "INV-0001", Terminal: "KASIR1", ExpiresAt: exp},
	}, {
		name: "QR Ph P2M (27: ph.ppmi.p2m, acquirer BIC, merchant id) with a fixed fee",
		payload: seal(tlv("00", "01") + tlv("01", "11") +
			tlv("27", tlv("00", "ph.ppmi.p2m")+tlv("01", "BNORPHMMXXX")+tlv("03", "MCH000123456")) +
			tlv("52", "5411") + tlv("53", "608") + tlv("55", "02") + tlv("56", "5.00") + tlv("58", "PH") + tlv("59", "SARI SARI STORE") + tlv("60", "MANILA")),
		spec: Spec{Market: "PH", Acquirer: "BNORPHMMXXX", MerchantRef: "MCH000123456", MCC: "5411", Name: "SARI SARI STORE", City: "MANILA",
			Tip: Tip{Kind: TipFixed, FixedMinor: 500}},
		want: Code{Acquirer: "BNORPHMMXXX", MerchantRef: "MCH000123456", MCC: "5411", Name: "SARI SARI STORE", City: "MANILA",
			Tip: Tip{Kind: TipFixed, FixedMinor: 500}},
	}, {
		name: "DuitNow QR (26: A0000006150001, acquirer, merchant) dynamic with a percentage fee",
		payload: seal(tlv("00", "01") + tlv("01", "12") +
			tlv("26", tlv("00", "A0000006150001")+tlv("01", "890053")+tlv("02", "M00012345")) +
			tlv("52", "5814") + tlv("53", "458") + tlv("54", "12.50") + tlv("55", "03") + tlv("57", "1.50") + tlv("58", "MY") + tlv("59", "NASI LEMAK ALI") + tlv("60", "KUALA LUMPUR") +
			tlv("62", tlv("05", "ORD77")) +
			tlv("80", tlv("00", "DEV.SEBELAS")+tlv("01", fmt.Sprint(exp.Unix())))),
		spec: Spec{Market: "MY", Acquirer: "890053", MerchantRef: "M00012345", MCC: "5814", Name: "NASI LEMAK ALI", City: "KUALA LUMPUR",
			Dynamic: true, AmountMinor: 1250, Tip: Tip{Kind: TipPercent, BasisPts: 150}, Reference: "ORD77", ExpiresAt: exp},
		want: Code{Dynamic: true, Acquirer: "890053", MerchantRef: "M00012345", MCC: "5814", Name: "NASI LEMAK ALI", City: "KUALA LUMPUR",
			AmountMinor: 1250, Tip: Tip{Kind: TipPercent, BasisPts: 150}, Reference: "ORD77", ExpiresAt: exp},
	}, {
		name: "PromptPay bill payment (30: A000000677010112, biller id)",
		payload: seal(tlv("00", "01") + tlv("01", "11") +
			tlv("30", tlv("00", "A000000677010112")+tlv("01", "010556612345601")) +
			tlv("52", "5499") + tlv("53", "764") + tlv("54", "150.00") + tlv("58", "TH") + tlv("59", "KHAO MAN GAI") + tlv("60", "BANGKOK")),
		spec: Spec{Market: "TH", MerchantRef: "010556612345601", MCC: "5499", Name: "KHAO MAN GAI", City: "BANGKOK", AmountMinor: 15000},
		want: Code{MerchantRef: "010556612345601", MCC: "5499", Name: "KHAO MAN GAI", City: "BANGKOK", AmountMinor: 15000},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.payload, now)
			if err != nil {
				t.Fatalf("Parse(%s): %v", tt.payload, err)
			}
			country := tt.spec.Market
			want := tt.want
			want.Scheme, want.Market, want.Currency = mustScheme(t, country), mustMarket(t, country), mustMarket(t, country).Currency
			if diff := cmp.Diff(want, got, cmpCode); diff != "" {
				t.Errorf("Parse (-want +got):\n%s", diff)
			}
			made, err := Make(tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.payload, made); diff != "" {
				t.Errorf("Make against the hand-built payload (-want +got):\n%s", diff)
			}
		})
	}
}

// TestPromptPayCreditTransfer parses the PromptPay credit-transfer form
// (29, a mobile number as 0066 and nine digits) that Thai banking apps show
// for person-to-person and small-merchant payments.
func TestPromptPayCreditTransfer(t *testing.T) {
	p := seal(tlv("00", "01") + tlv("01", "11") + tlv("29", tlv("00", "A000000677010111")+tlv("01", "0066812345678")) +
		tlv("52", "0000") + tlv("53", "764") + tlv("58", "TH") + tlv("59", "SOMCHAI") + tlv("60", "BANGKOK"))
	c, err := Parse(p, now)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff("promptpay:0066812345678", c.MerchantID()); diff != "" {
		t.Errorf("merchant (-want +got):\n%s", diff)
	}
}

// TestRoundTripEverySchemeis Make then Parse for each of the seven markets,
// static and dynamic.
func TestRoundTripEveryScheme(t *testing.T) {
	refs := map[string]struct{ ref, acquirer string }{
		"ID": {"ID1020021181745", ""}, "PH": {"MCH0001", "BNORPHMMXXX"}, "MY": {"M0001", "890053"},
		"TH": {"010556612345601", ""}, "BD": {"M0001", "BRAC"}, "PK": {"PK36SCBL0000001123456702", "SCBLPK"}, "IN": {"shop.ravi@okaxis", ""},
	}
	idPattern := regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$`)
	for _, s := range Schemes() {
		for _, dynamic := range []bool{false, true} {
			spec := Spec{Market: s.Market, MerchantRef: refs[s.Market].ref, Acquirer: refs[s.Market].acquirer, MCC: "5411",
				Name: "TOKO " + s.Market, City: "CITY", Dynamic: dynamic}
			if dynamic {
				spec.AmountMinor, spec.Reference, spec.ExpiresAt = 123400, "R-"+s.Market, now.Add(time.Minute)
			}
			p, err := Make(spec)
			if err != nil {
				t.Fatalf("%s dynamic=%v: %v", s.Name, dynamic, err)
			}
			c, err := Parse(p, now)
			if err != nil {
				t.Fatalf("%s dynamic=%v: Parse(%s): %v", s.Name, dynamic, p, err)
			}
			type facts struct {
				Scheme, Currency, MerchantRef, Reference string
				Dynamic, IDValid                         bool
				Amount                                   int64
			}
			want := facts{s.Name, string(s.Currency), spec.MerchantRef, spec.Reference, dynamic, true, spec.AmountMinor}
			got := facts{c.Scheme.Name, string(c.Currency), c.MerchantRef, c.Reference, c.Dynamic, idPattern.MatchString(c.MerchantID()), c.AmountMinor}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s dynamic=%v round trip (-want +got):\n%s", s.Name, dynamic, diff)
			}
		}
	}
}

func TestRefusals(t *testing.T) {
	account := tlv("51", tlv("00", "ID.CO.QRIS.WWW")+tlv("02", "ID1020021181745"))
	tail := tlv("58", "ID") + tlv("59", "WARUNG") + tlv("60", "JAKARTA")
	good := tlv("00", "01") + tlv("01", "11") + account + tlv("52", "5812") + tlv("53", "360") + tail
	sealed := seal(good)
	flipped := sealed[:len(sealed)-1] + map[bool]string{true: "0", false: "1"}[sealed[len(sealed)-1] != '0']
	tests := []struct {
		name, payload, reason string
	}{
		{"valid", sealed, ""},
		{"wrong checksum", flipped, ReasonChecksum},
		{"altered amount, old checksum", good[:len(good)-len(tail)] + tlv("54", "1") + tail + sealed[len(good):], ReasonChecksum},
		{"Indonesian code asking for pesos", seal(tlv("00", "01") + account + tlv("52", "5812") + tlv("53", "608") + tail), ReasonCurrencyMismatch},
		{"Indonesian code in US dollars", seal(tlv("00", "01") + account + tlv("52", "5812") + tlv("53", "840") + tail), ReasonCurrencyMismatch},
		{"country not served", seal(tlv("00", "01") + account + tlv("52", "5812") + tlv("53", "360") + tlv("58", "SG") + tlv("59", "X") + tlv("60", "Y")), ReasonUnsupportedCountry},
		{"no checksum", good, ReasonMissingTag},
		{"no merchant name", seal(tlv("00", "01") + account + tlv("52", "5812") + tlv("53", "360") + tlv("58", "ID") + tlv("60", "JAKARTA")), ReasonMissingTag},
		{"another market's template only", seal(tlv("00", "01") + tlv("26", tlv("00", "A0000006150001")+tlv("02", "M1")) + tlv("52", "5812") + tlv("53", "360") + tail), ReasonNoMerchantAccount},
		{"NMID of the wrong form", seal(tlv("00", "01") + tlv("51", tlv("00", "ID.CO.QRIS.WWW")+tlv("02", "XX12")) + tlv("52", "5812") + tlv("53", "360") + tail), ReasonNoMerchantAccount},
		{"dynamic without reference", seal(tlv("00", "01") + tlv("01", "12") + account + tlv("52", "5812") + tlv("53", "360") + tlv("54", "5000") + tail), ReasonDynamicIncomplete},
		{"dynamic without amount", seal(tlv("00", "01") + tlv("01", "12") + account + tlv("52", "5812") + tlv("53", "360") + tail + tlv("62", tlv("05", "R1"))), ReasonDynamicIncomplete},
		{"expired", seal(good + tlv("62", tlv("05", "R1")) + tlv("80", tlv("00", "DEV.SEBELAS")+tlv("01", fmt.Sprint(now.Unix())))), ReasonExpired},
		{"IDR amount with cents", seal(tlv("00", "01") + account + tlv("52", "5812") + tlv("53", "360") + tlv("54", "100.50") + tail), ReasonInvalidAmount},
		{"zero amount", seal(tlv("00", "01") + account + tlv("52", "5812") + tlv("53", "360") + tlv("54", "0") + tail), ReasonInvalidAmount},
		{"fee without indicator", seal(tlv("00", "01") + account + tlv("52", "5812") + tlv("53", "360") + tlv("56", "500") + tail), ReasonInvalidTip},
		{"percentage of 100", seal(tlv("00", "01") + account + tlv("52", "5812") + tlv("53", "360") + tlv("55", "03") + tlv("57", "100.00") + tail), ReasonInvalidTip},
		{"format indicator missing", seal(account + tlv("52", "5812") + tlv("53", "360") + tail), ReasonMalformed},
		{"duplicate tag", seal(tlv("00", "01") + account + account + tlv("52", "5812") + tlv("53", "360") + tail), ReasonMalformed},
		{"truncated", sealed[:20], ReasonMalformed},
		{"length past the end", "000201" + "5999ab", ReasonMalformed},
		{"control character", seal(tlv("00", "01") + account + tlv("52", "5812") + tlv("53", "360") + tlv("58", "ID") + tlv("59", "A\nB") + tlv("60", "J")), ReasonMalformed},
		{"empty", "", ReasonMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.payload, now)
			got := fault.ReasonOf(err)
			if err == nil {
				got = ""
			} else if !fault.IsPermanent(err) {
				t.Errorf("error %v is not permanent", err)
			}
			if diff := cmp.Diff(tt.reason, got); diff != "" {
				t.Errorf("reason (-want +got):\n%s\nerror: %v", diff, err)
			}
			if err != nil && Message(got) == Message("something else") {
				t.Errorf("reason %s has no message for the app", got)
			}
		})
	}
}

func TestPay(t *testing.T) {
	base := Code{Currency: money.IDR}
	with := func(c Code, f func(*Code)) Code { f(&c); return c }
	tests := []struct {
		name         string
		code         Code
		entered, tip int64
		want         Payment
		reason       string
	}{
		{"static, payer types", base, 15000, 0, Payment{15000, 0, 15000}, ""},
		{"static without amount", base, 0, 0, Payment{}, ReasonAmountMismatch},
		{"code amount, payer types none", with(base, func(c *Code) { c.AmountMinor = 5000 }), 0, 0, Payment{5000, 0, 5000}, ""},
		{"code amount, payer types it", with(base, func(c *Code) { c.AmountMinor = 5000 }), 5000, 0, Payment{5000, 0, 5000}, ""},
		{"code amount, payer types less", with(base, func(c *Code) { c.AmountMinor = 5000 }), 4000, 0, Payment{}, ReasonAmountMismatch},
		{"tip prompt", with(base, func(c *Code) { c.Tip = Tip{Kind: TipPrompt} }), 10000, 2000, Payment{10000, 2000, 12000}, ""},
		{"tip above the amount", with(base, func(c *Code) { c.Tip = Tip{Kind: TipPrompt} }), 10000, 10001, Payment{}, ReasonInvalidTip},
		{"tip not allowed", base, 10000, 1, Payment{}, ReasonInvalidTip},
		{"fixed fee", with(base, func(c *Code) { c.Tip = Tip{Kind: TipFixed, FixedMinor: 1500} }), 10000, 0, Payment{10000, 1500, 11500}, ""},
		{"percentage fee rounds down", with(base, func(c *Code) { c.Tip = Tip{Kind: TipPercent, BasisPts: 150} }), 9999, 0, Payment{9999, 149, 10148}, ""},
		{"percentage at the maximum amount", with(base, func(c *Code) { c.Tip = Tip{Kind: TipPercent, BasisPts: 9999} }), money.AmountMinorMax, 0, Payment{}, ReasonInvalidAmount},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.code.Pay(tt.entered, tt.tip)
			if diff := cmp.Diff(tt.reason, fault.ReasonOf(err)); err != nil && diff != "" || err == nil && tt.reason != "" {
				t.Fatalf("reason (-want +got):\n%s (err %v)", diff, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("payment (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMakeRefuses(t *testing.T) {
	ok := Spec{Market: "ID", MerchantRef: "ID1020021181745", MCC: "5812", Name: "W", City: "J"}
	with := func(f func(*Spec)) Spec { s := ok; f(&s); return s }
	tests := []struct {
		name   string
		spec   Spec
		reason string
	}{
		{"unknown market", with(func(s *Spec) { s.Market = "SG" }), ReasonUnsupportedCountry},
		{"dynamic without expiry", with(func(s *Spec) { s.Dynamic, s.AmountMinor, s.Reference = true, 100, "R" }), ReasonDynamicIncomplete},
		{"name too long", with(func(s *Spec) { s.Name = "ABCDEFGHIJKLMNOPQRSTUVWXYZ" }), ReasonMalformed},
		{"reference with a space", with(func(s *Spec) { s.Reference = "A B" }), ReasonMalformed},
		{"QR Ph without acquirer", Spec{Market: "PH", MerchantRef: "M1", MCC: "5411", Name: "S", City: "M"}, ReasonNoMerchantAccount},
		{"amount too long for tag 54", with(func(s *Spec) { s.AmountMinor = 99_999_999_999_999 }), ReasonInvalidAmount},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Make(tt.spec)
			if diff := cmp.Diff(tt.reason, fault.ReasonOf(err)); diff != "" {
				t.Errorf("reason (-want +got):\n%s (err %v)", diff, err)
			}
		})
	}
}
