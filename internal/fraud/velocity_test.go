package fraud

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// t0 is just before the festival midnight in Manila, at the start of a
// 2-hour bucket (so that offsets below land in known buckets).
var t0 = time.Date(2026, 11, 10, 14, 0, 0, 0, time.UTC)

// step is one payment of a scripted sequence.
type step struct {
	at          time.Duration // after t0
	wallet      string        // default "w-1"
	event       string        // default: a fresh key per step
	device      string        // default "dev-a"; "-" for none
	payee       string        // default "m-1"
	country     string        // default "PH"
	amount      int64         // default 10000
	kind        string        // default charge
	typ         string        // default the kind's
	wantBalance bool
}

func (s step) payment(i int) Payment {
	p := Payment{Kind: KindCharge, EventKey: fmt.Sprintf("/test|%d", i), Wallet: "w-1", Payee: "m-1",
		DeviceID: "dev-a", DeviceCountry: "PH", Amount: 10000, Currency: "PHP", At: t0.Add(s.at)}
	if s.wallet != "" {
		p.Wallet = s.wallet
	}
	if s.event != "" {
		p.EventKey = s.event
	}
	switch s.device {
	case "":
	case "-":
		p.DeviceID = ""
	default:
		p.DeviceID = s.device
	}
	if s.payee != "" {
		p.Payee = s.payee
	}
	if s.country != "" {
		p.DeviceCountry = s.country
	}
	if s.amount != 0 {
		p.Amount = s.amount
	}
	if s.kind != "" {
		p.Kind = s.kind
	}
	p.Type = s.typ
	return p
}

// velocityOnly compares the velocity fields of Observed; the flows have
// their own table (flowCases).
var velocityOnly = cmpopts.IgnoreFields(Observed{}, "Payees1h", "Payees1d", "ProbePayees1h", "InPayers1h", "In1h", "SecondsSinceIn", "Receiver")

// flows is the flow part of Observed.
type flows struct {
	Payees1h, Payees1d, ProbePayees1h int64
	InPayers1h, In1h, SecondsSinceIn  int64
	Receiver                          Receiver
}

func flowsOf(o Observed) flows {
	return flows{o.Payees1h, o.Payees1d, o.ProbePayees1h, o.InPayers1h, o.In1h, o.SecondsSinceIn, o.Receiver}
}

// flowCases are the table of the flow features (flows.go), run on both
// stores like featureCases.
var flowCases = []struct {
	name  string
	steps []step
	want  flows
}{
	{"first payment: one payee, a probe-sized amount", []step{{}},
		flows{Payees1h: 1, Payees1d: 1, ProbePayees1h: 1, SecondsSinceIn: -1}},
	// The names are chosen so that they fall in different slots (payees
	// sharing a slot count once: see flows.go).
	{"card testing: five merchants in minutes", []step{{payee: "m-1", amount: 100}, {at: time.Minute, payee: "m-3", amount: 150},
		{at: 2 * time.Minute, payee: "m-6", amount: 90}, {at: 3 * time.Minute, payee: "m-7", amount: 120}, {at: 4 * time.Minute, payee: "m-8", amount: 900000}},
		flows{Payees1h: 5, Payees1d: 5, ProbePayees1h: 4, SecondsSinceIn: -1}},
	{"the same merchant again is one payee", []step{{}, {at: time.Minute}, {at: 2 * time.Minute, amount: 500000}},
		flows{Payees1h: 1, Payees1d: 1, ProbePayees1h: 0, SecondsSinceIn: -1}},
	{"payees older than an hour count for the day only", []step{{payee: "m-1"}, {at: 2 * time.Hour, payee: "m-3", amount: 500000}},
		flows{Payees1h: 1, Payees1d: 2, ProbePayees1h: 0, SecondsSinceIn: -1}},
	{"mule fan-in: the third payer to one wallet", []step{{wallet: "w-a", payee: "w-mule", typ: TypeTransfer},
		{at: time.Minute, wallet: "w-b", payee: "w-mule", typ: TypeTransfer, amount: 20000},
		{at: 2 * time.Minute, wallet: "w-d", payee: "w-mule", typ: TypeTransfer, amount: 30000}},
		flows{Payees1h: 1, Payees1d: 1, SecondsSinceIn: -1, Receiver: Receiver{Known: true, Payers1d: 3, In1d: 60000, AgeS: 120}}},
	{"in then out: the mule's cash-out sees what came in", []step{{wallet: "w-a", payee: "w-mule", typ: TypeTransfer},
		{at: time.Minute, wallet: "w-b", payee: "w-mule", typ: TypeTransfer, amount: 20000},
		{at: 5 * time.Minute, wallet: "w-mule", payee: "agent", typ: TypeCashOut, amount: 30000}},
		flows{Payees1h: 1, Payees1d: 1, InPayers1h: 2, In1h: 30000, SecondsSinceIn: 240}},
	{"a receiver that pays too is not new", []step{{wallet: "w-b", payee: "m-1"},
		{at: 2 * time.Hour, wallet: "w-a", payee: "w-b", typ: TypeTransfer}},
		flows{Payees1h: 1, Payees1d: 1, ProbePayees1h: 1, SecondsSinceIn: -1, Receiver: Receiver{Known: true, Payers1d: 1, In1d: 10000, AgeS: 7200, Payments: 1}}},
	{"a charge to a merchant writes no receiver", []step{{wallet: "w-a", payee: "w-b"}, {at: time.Minute, wallet: "w-b", payee: "m-1"}},
		flows{Payees1h: 1, Payees1d: 1, ProbePayees1h: 1, SecondsSinceIn: -1}},
}

func TestFlowsMemory(t *testing.T) {
	for _, tt := range flowCases {
		t.Run(tt.name, func(t *testing.T) {
			got := run(t, newTestMemoryStore(), tt.steps)
			if diff := cmp.Diff(tt.want, flowsOf(got)); diff != "" {
				t.Errorf("flows (-want +got):\n%s", diff)
			}
		})
	}
}

// run plays steps on store and returns what the last one observed.
func run(t testing.TB, store Store, steps []step) Observed {
	t.Helper()
	var o Observed
	for i, s := range steps {
		var err error
		if o, err = store.Observe(context.Background(), s.payment(i), s.wantBalance); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	return o
}

// first is what a wallet's first payment observes.
var first = Observed{Count1m: 1, Count1h: 1, Count1d: 1, Sum1m: 10000, Sum1h: 10000, Sum1d: 10000,
	SecondsSinceLast: -1, NewWallet: true, Devices: 1, NewDeviceAgeSeconds: -1, NewPayee: true, DeviceWallets: 1}

// featureCases are the table of the velocity features: each is a script
// and what its last payment observes. They run on the in-memory store here
// and on DynamoDB Local in store_dynamo_test.go.
var featureCases = []struct {
	name  string
	steps []step
	want  Observed
}{
	{"first payment of a wallet", []step{{}}, first},
	{"two in the same minute", []step{{}, {at: 20 * time.Second, amount: 5000}},
		Observed{Count1m: 2, Count1h: 2, Count1d: 2, Sum1m: 15000, Sum1h: 15000, Sum1d: 15000, HistoryCount: 1, HistorySum: 10000,
			SecondsSinceLast: 20, WalletAgeSeconds: 20, Devices: 1, NewDeviceAgeSeconds: -1, DeviceWallets: 1}},
	{"minute window expires after 60 s", []step{{}, {at: 70 * time.Second}},
		Observed{Count1m: 1, Count1h: 2, Count1d: 2, Sum1m: 10000, Sum1h: 20000, Sum1d: 20000, HistoryCount: 1, HistorySum: 10000,
			SecondsSinceLast: 70, WalletAgeSeconds: 70, Devices: 1, NewDeviceAgeSeconds: -1, DeviceWallets: 1}},
	{"hour window expires after 60 min", []step{{}, {at: 61 * time.Minute}},
		Observed{Count1m: 1, Count1h: 1, Count1d: 2, Sum1m: 10000, Sum1h: 10000, Sum1d: 20000, HistoryCount: 1, HistorySum: 10000,
			SecondsSinceLast: 3660, WalletAgeSeconds: 3660, Devices: 1, NewDeviceAgeSeconds: -1}},
	{"day window expires after 24 h, history stays", []step{{}, {at: 25 * time.Hour}},
		Observed{Count1m: 1, Count1h: 1, Count1d: 1, Sum1m: 10000, Sum1h: 10000, Sum1d: 10000, HistoryCount: 1, HistorySum: 10000,
			SecondsSinceLast: 90000, WalletAgeSeconds: 90000, Devices: 1, NewDeviceAgeSeconds: -1}},
	{"minute ring slot reused after exactly 61 buckets", []step{{}, {at: 610 * time.Second}},
		Observed{Count1m: 1, Count1h: 2, Count1d: 2, Sum1m: 10000, Sum1h: 20000, Sum1d: 20000, HistoryCount: 1, HistorySum: 10000,
			SecondsSinceLast: 610, WalletAgeSeconds: 610, Devices: 1, NewDeviceAgeSeconds: -1, DeviceWallets: 1}},
	{"slot reuse, then the next in the same bucket counts both", []step{{}, {at: 610 * time.Second}, {at: 615 * time.Second}},
		Observed{Count1m: 2, Count1h: 3, Count1d: 3, Sum1m: 20000, Sum1h: 30000, Sum1d: 30000, HistoryCount: 2, HistorySum: 20000,
			SecondsSinceLast: 5, WalletAgeSeconds: 615, Devices: 1, NewDeviceAgeSeconds: -1, DeviceWallets: 1}},
	{"day ring slot reused after exactly 31 buckets (62 h)", []step{{}, {at: 62 * time.Hour}},
		Observed{Count1m: 1, Count1h: 1, Count1d: 1, Sum1m: 10000, Sum1h: 10000, Sum1d: 10000, HistoryCount: 1, HistorySum: 10000,
			SecondsSinceLast: 223200, WalletAgeSeconds: 223200, Devices: 1, NewDeviceAgeSeconds: -1}},
	{"a burst straddling the window edge", []step{{}, {at: 50 * time.Second}, {at: 55 * time.Second}, {at: 61 * time.Second}},
		Observed{Count1m: 3, Count1h: 4, Count1d: 4, Sum1m: 30000, Sum1h: 40000, Sum1d: 40000, HistoryCount: 3, HistorySum: 30000,
			SecondsSinceLast: 6, WalletAgeSeconds: 61, Devices: 1, NewDeviceAgeSeconds: -1, DeviceWallets: 1}},
	{"redelivery of the same event is not counted again", []step{{event: "/m|e-1"}, {at: 2 * time.Second, event: "/m|e-1"}},
		Observed{Count1m: 1, Count1h: 1, Count1d: 1, Sum1m: 10000, Sum1h: 10000, Sum1d: 10000,
			SecondsSinceLast: -1, NewWallet: true, Devices: 1, NewDeviceAgeSeconds: -1, Redelivery: true}},
	{"redelivery after other payments is still recognised", []step{{event: "/m|e-1"}, {at: time.Second}, {at: 2 * time.Second, event: "/m|e-1"}},
		Observed{Count1m: 2, Count1h: 2, Count1d: 2, Sum1m: 20000, Sum1h: 20000, Sum1d: 20000, HistoryCount: 1, HistorySum: 10000,
			SecondsSinceLast: 1, WalletAgeSeconds: 2, Devices: 1, NewDeviceAgeSeconds: -1, Redelivery: true}},
	{"new device on an established wallet", []step{{}, {at: time.Hour, device: "dev-b"}},
		Observed{Count1m: 1, Count1h: 1, Count1d: 2, Sum1m: 10000, Sum1h: 10000, Sum1d: 20000, HistoryCount: 1, HistorySum: 10000,
			SecondsSinceLast: 3600, WalletAgeSeconds: 3600, NewDevice: true, NewDeviceAgeSeconds: 0, Devices: 2}},
	{"the new device's next payments: not new, but young", []step{{}, {at: time.Hour, device: "dev-b"}, {at: time.Hour + 10*time.Minute, device: "dev-b"}},
		Observed{Count1m: 1, Count1h: 2, Count1d: 3, Sum1m: 10000, Sum1h: 20000, Sum1d: 30000, HistoryCount: 2, HistorySum: 20000,
			SecondsSinceLast: 600, WalletAgeSeconds: 4200, NewDeviceAgeSeconds: 600, Devices: 2}},
	{"back on the old device", []step{{}, {at: time.Hour, device: "dev-b"}, {at: 2 * time.Hour}},
		Observed{Count1m: 1, Count1h: 1, Count1d: 3, Sum1m: 10000, Sum1h: 10000, Sum1d: 30000, HistoryCount: 2, HistorySum: 20000,
			SecondsSinceLast: 3600, WalletAgeSeconds: 7200, NewDeviceAgeSeconds: -1, Devices: 2}},
	{"no device: neither new nor counted", []step{{}, {at: time.Minute, device: "-"}},
		Observed{Count1m: 1, Count1h: 2, Count1d: 2, Sum1m: 10000, Sum1h: 20000, Sum1d: 20000, HistoryCount: 1, HistorySum: 10000,
			SecondsSinceLast: 60, WalletAgeSeconds: 60, NewDeviceAgeSeconds: -1, Devices: 1}},
	{"known payee", []step{{}, {at: 2 * time.Hour}},
		Observed{Count1m: 1, Count1h: 1, Count1d: 2, Sum1m: 10000, Sum1h: 10000, Sum1d: 20000, HistoryCount: 1, HistorySum: 10000,
			SecondsSinceLast: 7200, WalletAgeSeconds: 7200, Devices: 1, NewDeviceAgeSeconds: -1}},
	{"new payee", []step{{}, {at: 2 * time.Hour, payee: "m-2"}},
		Observed{Count1m: 1, Count1h: 1, Count1d: 2, Sum1m: 10000, Sum1h: 10000, Sum1d: 20000, HistoryCount: 1, HistorySum: 10000,
			SecondsSinceLast: 7200, WalletAgeSeconds: 7200, Devices: 1, NewDeviceAgeSeconds: -1, NewPayee: true}},
	{"a top-up number is a payee of its own kind", []step{{payee: "639171234567"}, {at: 2 * time.Hour, kind: KindTopup, payee: "639171234567"}},
		Observed{Count1m: 1, Count1h: 1, Count1d: 2, Sum1m: 10000, Sum1h: 10000, Sum1d: 20000, HistoryCount: 1, HistorySum: 10000,
			SecondsSinceLast: 7200, WalletAgeSeconds: 7200, Devices: 1, NewDeviceAgeSeconds: -1, NewPayee: true}},
	{"device country changed", []step{{}, {at: 2 * time.Hour, country: "SG"}},
		Observed{Count1m: 1, Count1h: 1, Count1d: 2, Sum1m: 10000, Sum1h: 10000, Sum1d: 20000, HistoryCount: 1, HistorySum: 10000,
			SecondsSinceLast: 7200, WalletAgeSeconds: 7200, Devices: 1, NewDeviceAgeSeconds: -1, CountryChanged: true}},
	{"sums add the amounts", []step{{}, {at: time.Second, amount: 7}},
		Observed{Count1m: 2, Count1h: 2, Count1d: 2, Sum1m: 10007, Sum1h: 10007, Sum1d: 10007, HistoryCount: 1, HistorySum: 10000,
			SecondsSinceLast: 1, WalletAgeSeconds: 1, Devices: 1, NewDeviceAgeSeconds: -1, DeviceWallets: 1}},
	{"third new wallet on one device (coupon farm)", []step{{wallet: "w-a"}, {at: time.Minute, wallet: "w-b"}, {at: 2 * time.Minute, wallet: "w-c"}},
		Observed{Count1m: 1, Count1h: 1, Count1d: 1, Sum1m: 10000, Sum1h: 10000, Sum1d: 10000,
			SecondsSinceLast: -1, NewWallet: true, Devices: 1, NewDeviceAgeSeconds: -1, NewPayee: true, DeviceWallets: 3}},
	{"a farm wallet's second payment still sees the device", []step{{wallet: "w-a"}, {at: time.Minute, wallet: "w-b"}, {at: 2 * time.Minute, wallet: "w-a"}},
		Observed{Count1m: 1, Count1h: 2, Count1d: 2, Sum1m: 10000, Sum1h: 20000, Sum1d: 20000, HistoryCount: 1, HistorySum: 10000,
			SecondsSinceLast: 120, WalletAgeSeconds: 120, Devices: 1, NewDeviceAgeSeconds: -1, DeviceWallets: 2}},
	{"device window restarts after a quiet day", []step{{wallet: "w-a"}, {at: time.Minute, wallet: "w-b"}, {at: 26 * time.Hour, wallet: "w-c"}},
		Observed{Count1m: 1, Count1h: 1, Count1d: 1, Sum1m: 10000, Sum1h: 10000, Sum1d: 10000,
			SecondsSinceLast: -1, NewWallet: true, Devices: 1, NewDeviceAgeSeconds: -1, NewPayee: true, DeviceWallets: 1}},
	{"balance read when asked", []step{{wantBalance: true}},
		Observed{Count1m: 1, Count1h: 1, Count1d: 1, Sum1m: 10000, Sum1h: 10000, Sum1d: 10000,
			SecondsSinceLast: -1, NewWallet: true, Devices: 1, NewDeviceAgeSeconds: -1, NewPayee: true, DeviceWallets: 1,
			Balance: 25000, BalanceKnown: true}},
}

// testBalance is the balance of w-1 in PHP in both stores' tests.
const testBalance = 25000

func newTestMemoryStore() *MemoryStore {
	m := NewMemoryStore()
	m.Balance = func(wallet, currency string) (int64, bool) {
		if wallet == "w-1" && currency == "PHP" {
			return testBalance, true
		}
		return 0, false
	}
	return m
}

func TestFeaturesMemory(t *testing.T) {
	for _, tt := range featureCases {
		t.Run(tt.name, func(t *testing.T) {
			got := run(t, newTestMemoryStore(), tt.steps)
			if diff := cmp.Diff(tt.want, got, velocityOnly); diff != "" {
				t.Errorf("Observed (-want +got):\n%s", diff)
			}
		})
	}
}

// TestPayeeSetBound fills the payee set: beyond payeesMax a new payee is
// not remembered and stays new (never the other way round).
func TestPayeeSetBound(t *testing.T) {
	var steps []step
	for i := range payeesMax + 1 {
		steps = append(steps, step{at: time.Duration(i) * time.Minute, payee: fmt.Sprintf("m-%d", i)})
	}
	m := newTestMemoryStore()
	if o := run(t, m, steps); !o.NewPayee {
		t.Fatal("payee beyond the bound is not new")
	}
	again := append(steps, step{at: time.Duration(payeesMax+2) * time.Minute, payee: fmt.Sprintf("m-%d", payeesMax)})
	if o := run(t, newTestMemoryStore(), again); !o.NewPayee {
		t.Error("payee beyond the bound was remembered")
	}
	known := append(steps, step{at: time.Duration(payeesMax+2) * time.Minute, payee: "m-0"})
	if o := run(t, newTestMemoryStore(), known); o.NewPayee {
		t.Error("a remembered payee is new once the set is full")
	}
	if st := m.wallets[walletPK("w-1", "PHP")]; len(st.payees) != payeesMax {
		t.Errorf("payee set holds %d, want %d", len(st.payees), payeesMax)
	}
}

// TestItemStaysBounded pays for a simulated month at irregular times and
// checks that the counters item never holds more slots than the windows.
func TestItemStaysBounded(t *testing.T) {
	m := newTestMemoryStore()
	at := time.Duration(0)
	for i := range 2000 {
		at += time.Duration(1+(i*7919)%20000) * time.Second
		if _, err := m.Observe(context.Background(), step{at: at}.payment(i), false); err != nil {
			t.Fatal(err)
		}
		st := m.wallets[walletPK("w-1", "PHP")]
		for r, rg := range rings {
			n := 0
			for s := range int(rg.slots) {
				if st.present[r][s] {
					n++
				}
			}
			if int64(n) > rg.live {
				t.Fatalf("payment %d: ring %s holds %d slots, window is %d", i, rg.prefix, n, rg.live)
			}
		}
	}
}

func TestUnpack(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want slot
	}{
		{"1", slot{count: 1}},
		{packed(0), slot{count: 1}},
		{packed(249900), slot{count: 1, sum: 249900}},
		{"1000000000000000000000002", slot{count: 2, sum: 1_000_000_000_000_000}},
	} {
		got, err := unpack(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("unpack(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}
