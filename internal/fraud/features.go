package fraud

import (
	"math"
	"time"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/interpreter"

	"github.com/sebelas/sebelas/internal/market"
)

// Payment kinds, as rules see them in `kind`.
const (
	KindCharge = "charge"
	KindTopup  = "topup"
)

// Transaction types, as rules see them in `txn_type`. A charge from a
// marketplace is a payment and a phone top-up a topup; the others come from
// labelled history in the PaySim layout (and the evaluation's generators),
// where money also moves between wallets.
const (
	TypePayment  = "payment"
	TypeTopup    = "topup"
	TypeTransfer = "transfer" // wallet to wallet
	TypeCashOut  = "cash_out" // wallet to an agent, for cash
	TypeDebit    = "debit"    // a bill or direct debit
	TypeCashIn   = "cash_in"  // money in: not screened, recorded as history
)

// Payment is what fraud screens, common to charges and top-ups.
type Payment struct {
	Kind string // KindCharge or KindTopup
	// Type is one of the Type constants; "" means the kind's own
	// (TypePayment for a charge, TypeTopup for a top-up).
	Type string
	// EventKey identifies the payment (PaymentKey: kind and business id):
	// a redelivery, or a resend with a fresh CloudEvent id, is not counted
	// twice.
	EventKey string
	Wallet   string
	// Payee is the merchant of a charge or the phone number (digits only) of
	// a top-up: "new payee" is the first payment of this wallet to it.
	Payee         string
	DeviceID      string
	DeviceCountry string
	Amount        int64 // minor units; 0 for a top-up named only by product
	Currency      string
	// At is fraud's own clock when it screens, never the caller's
	// requested_at: a caller must not be able to move a payment out of its
	// velocity window.
	At time.Time
}

// Observed is what the feature store knows about the paying wallet, taken in
// the same step that records this payment.
type Observed struct {
	// Windows: this wallet's payments in the currency, this one included.
	Count1m, Count1h, Count1d int64
	Sum1m, Sum1h, Sum1d       int64
	// HistoryCount and HistorySum cover the store's retention (walletTTL
	// after the last payment), this payment excluded.
	HistoryCount, HistorySum int64
	// SecondsSinceLast is -1 for the wallet's first payment.
	SecondsSinceLast int64
	// WalletAgeSeconds is the time since the first payment the store
	// remembers; 0 for a new wallet.
	WalletAgeSeconds int64
	NewWallet        bool
	NewDevice        bool
	// NewDeviceAgeSeconds is how long this payment's device has been the
	// wallet's newest (0 on its first payment), -1 when it is not.
	NewDeviceAgeSeconds int64
	Devices             int64 // distinct devices of the wallet, this one included
	NewPayee            bool
	CountryChanged      bool // device country differs from the wallet's previous one
	// DeviceWallets counts the new wallets seen on this payment's device in
	// the last day (coupon farms), this one included. It is only looked up
	// for a wallet's payments in its first hour; 0 otherwise.
	DeviceWallets int64
	// Balance is the payer's spendable balance before this payment; only
	// read when the rules ask for it (see Store).
	Balance      int64
	BalanceKnown bool
	// Redelivery is set when this very event was counted before.
	Redelivery bool
	// Payee flows (flows.go): distinct payees in the last hour and day,
	// this one included, and those of the hour paid a probe-sized amount.
	Payees1h, Payees1d, ProbePayees1h int64
	// Money received in the last hour: distinct payers and sum, and the
	// seconds since the last arrival (-1: none remembered).
	InPayers1h, In1h, SecondsSinceIn int64
	// Receiver is the receiving wallet's side of a transfer.
	Receiver Receiver
}

// Features are the values rules are written over: one CEL variable each, by
// the snake_case name in featureVars.
type Features struct {
	Kind, Type, Market, Currency, Wallet, Device, DeviceCountry, Payee string
	Amount                                                             int64
	Count1m, Count1h, Count1d                                          int64
	Sum1m, Sum1h, Sum1d                                                int64
	HistoryCount                                                       int64
	HistoryAvg                                                         float64
	AmountRatio                                                        float64
	NewWallet                                                          bool
	WalletAgeS                                                         int64
	SecondsSinceLast                                                   int64
	NewDevice, DeviceMissing                                           bool
	NewDeviceAgeS                                                      int64
	Devices                                                            int64
	CountryMismatch, CountryChanged                                    bool
	NewPayee                                                           bool
	DeviceWallets                                                      int64
	BalanceKnown                                                       bool
	Balance                                                            int64
	BalanceShare                                                       float64
	HourLocal                                                          int64
	Redelivery                                                         bool
	// Flows (flows.go) and the market's surge (surge.go).
	Payees1h, Payees1d, ProbePayees1h int64
	InPayers1h, In1h, SecondsSinceIn  int64
	InOutShare                        float64
	PayeeKnown                        bool
	PayeePayers1d, PayeeIn1d          int64
	PayeeAgeS, PayeePayments          int64
	Drain1d                           float64
	MarketSurge                       float64
	// ModelScore is the learned model's fraud probability (model.go), -1
	// when no model is loaded.
	ModelScore float64
}

// TypeOrKind is p's transaction type, the kind's own when none is set.
func (p Payment) TypeOrKind() string {
	switch {
	case p.Type != "":
		return p.Type
	case p.Kind == KindTopup:
		return TypeTopup
	default:
		return TypePayment
	}
}

// balanceShareMax caps amount/balance: a payment far above the balance will
// be declined by the ledger anyway, and rules compare shares below 1.
const balanceShareMax = 10.0

// NewFeatures derives the features of p from what the store observed, in
// market m (the currency's).
func NewFeatures(p Payment, o Observed, m market.Market) Features {
	f := Features{
		Kind: p.Kind, Type: p.TypeOrKind(), Market: m.Code, Currency: p.Currency, Wallet: p.Wallet, Device: p.DeviceID,
		DeviceCountry: p.DeviceCountry, Payee: p.Payee, Amount: p.Amount,
		Count1m: o.Count1m, Count1h: o.Count1h, Count1d: o.Count1d,
		Sum1m: o.Sum1m, Sum1h: o.Sum1h, Sum1d: o.Sum1d,
		HistoryCount: o.HistoryCount, NewWallet: o.NewWallet, WalletAgeS: o.WalletAgeSeconds,
		SecondsSinceLast: o.SecondsSinceLast, NewDevice: o.NewDevice, DeviceMissing: p.DeviceID == "",
		NewDeviceAgeS: o.NewDeviceAgeSeconds,
		Devices:       o.Devices, CountryChanged: o.CountryChanged, NewPayee: o.NewPayee,
		DeviceWallets: o.DeviceWallets, BalanceKnown: o.BalanceKnown, Balance: -1,
		HourLocal: int64(p.At.In(m.Location).Hour()), Redelivery: o.Redelivery,
	}
	if o.HistoryCount > 0 {
		f.HistoryAvg = float64(o.HistorySum) / float64(o.HistoryCount)
		if f.HistoryAvg > 0 {
			f.AmountRatio = float64(p.Amount) / f.HistoryAvg
		}
	}
	f.CountryMismatch = p.DeviceCountry != "" && p.DeviceCountry != m.Code
	f.Payees1h, f.Payees1d, f.ProbePayees1h = o.Payees1h, o.Payees1d, o.ProbePayees1h
	f.InPayers1h, f.In1h, f.SecondsSinceIn = o.InPayers1h, o.In1h, o.SecondsSinceIn
	if o.In1h > 0 {
		f.InOutShare = math.Min(float64(p.Amount)/float64(o.In1h), balanceShareMax)
	}
	f.PayeeAgeS = -1
	if r := o.Receiver; r.Known {
		f.PayeeKnown, f.PayeePayers1d, f.PayeeIn1d, f.PayeeAgeS, f.PayeePayments = true, r.Payers1d, r.In1d, r.AgeS, r.Payments
	}
	f.MarketSurge, f.ModelScore = 1, -1
	if o.BalanceKnown {
		f.Balance = o.Balance
		f.BalanceShare = balanceShareMax
		if o.Balance > 0 {
			f.BalanceShare = math.Min(float64(p.Amount)/float64(o.Balance), balanceShareMax)
		}
		// The balance at the start of the day's window: now, plus what
		// went out in the window before this payment.
		if start := o.Balance + o.Sum1d - p.Amount; start > 0 {
			f.Drain1d = math.Min(float64(o.Sum1d)/float64(start), balanceShareMax)
		}
	}
	return f
}

// featureVar is one CEL variable over Features.
type featureVar struct {
	name string
	typ  *types.Type
	get  func(*Features) ref.Val
	doc  string
}

// featureVars are the variables rules may use, documented for the risk team
// (docs/fraud.md lists them from here).
var featureVars = []featureVar{
	{"kind", types.StringType, func(f *Features) ref.Val { return types.String(f.Kind) }, `"charge" or "topup"`},
	{"txn_type", types.StringType, func(f *Features) ref.Val { return types.String(f.Type) }, `payment, topup; in labelled history also transfer, cash_out, debit`},
	{"market", types.StringType, func(f *Features) ref.Val { return types.String(f.Market) }, "the currency's market: ID, PH, MY, TH, BD, PK, IN"},
	{"currency", types.StringType, func(f *Features) ref.Val { return types.String(f.Currency) }, "ISO 4217 code"},
	{"wallet", types.StringType, func(f *Features) ref.Val { return types.String(f.Wallet) }, "the payer's wallet id"},
	{"device", types.StringType, func(f *Features) ref.Val { return types.String(f.Device) }, `device id, "" when none was sent`},
	{"device_country", types.StringType, func(f *Features) ref.Val { return types.String(f.DeviceCountry) }, `ISO 3166 code of the device, "" when unknown`},
	{"payee", types.StringType, func(f *Features) ref.Val { return types.String(f.Payee) }, "merchant id (charge) or phone digits (top-up)"},
	{"amount", types.IntType, func(f *Features) ref.Val { return types.Int(f.Amount) }, "minor units (IDR and PKR have none)"},
	{"count_1m", types.IntType, func(f *Features) ref.Val { return types.Int(f.Count1m) }, "payments of the wallet in the currency in the last minute, this one included"},
	{"count_1h", types.IntType, func(f *Features) ref.Val { return types.Int(f.Count1h) }, "... in the last hour"},
	{"count_1d", types.IntType, func(f *Features) ref.Val { return types.Int(f.Count1d) }, "... in the last day"},
	{"sum_1m", types.IntType, func(f *Features) ref.Val { return types.Int(f.Sum1m) }, "amount paid in the last minute, this one included, minor units"},
	{"sum_1h", types.IntType, func(f *Features) ref.Val { return types.Int(f.Sum1h) }, "... in the last hour"},
	{"sum_1d", types.IntType, func(f *Features) ref.Val { return types.Int(f.Sum1d) }, "... in the last day"},
	{"history_count", types.IntType, func(f *Features) ref.Val { return types.Int(f.HistoryCount) }, "earlier payments remembered (30 days after the last one)"},
	{"history_avg", types.DoubleType, func(f *Features) ref.Val { return types.Double(f.HistoryAvg) }, "their average amount; 0 without history"},
	{"amount_ratio", types.DoubleType, func(f *Features) ref.Val { return types.Double(f.AmountRatio) }, "amount / history_avg; 0 without history"},
	{"new_wallet", types.BoolType, func(f *Features) ref.Val { return types.Bool(f.NewWallet) }, "the wallet's first payment"},
	{"wallet_age_s", types.IntType, func(f *Features) ref.Val { return types.Int(f.WalletAgeS) }, "seconds since the first payment remembered; 0 when new"},
	{"seconds_since_last", types.IntType, func(f *Features) ref.Val { return types.Int(f.SecondsSinceLast) }, "seconds since the previous payment; -1 when none"},
	{"new_device", types.BoolType, func(f *Features) ref.Val { return types.Bool(f.NewDevice) }, "a device this wallet, which used others, never paid from (a wallet's first device is not new)"},
	{"new_device_age_s", types.IntType, func(f *Features) ref.Val { return types.Int(f.NewDeviceAgeS) }, "seconds this device has been the wallet's newest (0 on its first payment); -1 when it is not"},
	{"device_missing", types.BoolType, func(f *Features) ref.Val { return types.Bool(f.DeviceMissing) }, "no device id was sent"},
	{"devices", types.IntType, func(f *Features) ref.Val { return types.Int(f.Devices) }, "distinct devices of the wallet, this one included"},
	{"country_mismatch", types.BoolType, func(f *Features) ref.Val { return types.Bool(f.CountryMismatch) }, "device country known and not the currency's market"},
	{"country_changed", types.BoolType, func(f *Features) ref.Val { return types.Bool(f.CountryChanged) }, "device country differs from the wallet's previous payment"},
	{"new_payee", types.BoolType, func(f *Features) ref.Val { return types.Bool(f.NewPayee) }, "first payment of this wallet to this merchant or phone number"},
	{"device_wallets", types.IntType, func(f *Features) ref.Val { return types.Int(f.DeviceWallets) }, "new wallets seen on this device in the last day, this one included (looked up in a wallet's first hour; else 0)"},
	{"balance_known", types.BoolType, func(f *Features) ref.Val { return types.Bool(f.BalanceKnown) }, "the balance was read (amount >= t.balance_check_min)"},
	{"balance", types.IntType, func(f *Features) ref.Val { return types.Int(f.Balance) }, "spendable balance before this payment; -1 when not read"},
	{"balance_share", types.DoubleType, func(f *Features) ref.Val { return types.Double(f.BalanceShare) }, "amount / balance (capped at 10); 0 when not read"},
	{"hour_local", types.IntType, func(f *Features) ref.Val { return types.Int(f.HourLocal) }, "hour of day in the market's time zone, 0..23"},
	{"payees_1h", types.IntType, func(f *Features) ref.Val { return types.Int(f.Payees1h) }, "distinct payees of the wallet in the last hour, this one included (saturates near 8)"},
	{"payees_1d", types.IntType, func(f *Features) ref.Val { return types.Int(f.Payees1d) }, "... in the last day"},
	{"probe_payees_1h", types.IntType, func(f *Features) ref.Val { return types.Int(f.ProbePayees1h) }, "of payees_1h, those paid a probe-sized amount (about USD 2 or less): card testing"},
	{"in_payers_1h", types.IntType, func(f *Features) ref.Val { return types.Int(f.InPayers1h) }, "distinct wallets (and cash-ins) that sent this wallet money in the last hour"},
	{"in_1h", types.IntType, func(f *Features) ref.Val { return types.Int(f.In1h) }, "money they sent, minor units"},
	{"seconds_since_in", types.IntType, func(f *Features) ref.Val { return types.Int(f.SecondsSinceIn) }, "seconds since money last arrived; -1 when none remembered"},
	{"in_out_share", types.DoubleType, func(f *Features) ref.Val { return types.Double(f.InOutShare) }, "amount / in_1h (capped at 10): money received and sent on; 0 without inflow"},
	{"payee_known", types.BoolType, func(f *Features) ref.Val { return types.Bool(f.PayeeKnown) }, "the receiving wallet's counters were read (transfers between wallets only)"},
	{"payee_payers_1d", types.IntType, func(f *Features) ref.Val { return types.Int(f.PayeePayers1d) }, "distinct wallets that sent the receiver money in the last day, this one included (mule fan-in; saturates near 8)"},
	{"payee_in_1d", types.IntType, func(f *Features) ref.Val { return types.Int(f.PayeeIn1d) }, "money they sent it, minor units"},
	{"payee_age_s", types.IntType, func(f *Features) ref.Val { return types.Int(f.PayeeAgeS) }, "seconds since the receiver first received or paid; 0 when never seen, -1 when not read"},
	{"payee_payments", types.IntType, func(f *Features) ref.Val { return types.Int(f.PayeePayments) }, "payments the receiver made itself (remembered)"},
	{"drain_1d", types.DoubleType, func(f *Features) ref.Val { return types.Double(f.Drain1d) }, "sum_1d / the balance at the start of the day's window (capped at 10): a slow drain; 0 when the balance was not read"},
	{"market_surge", types.DoubleType, func(f *Features) ref.Val { return types.Double(f.MarketSurge) }, "the market's payment rate over the last minutes / over the last days (1 until measured): the festival baseline"},
	{"model_score", types.DoubleType, func(f *Features) ref.Val { return types.Double(f.ModelScore) }, "the learned model's fraud probability, 0..1; -1 when no model is loaded"},
	{"redelivery", types.BoolType, func(f *Features) ref.Val { return types.Bool(f.Redelivery) }, "this very event was screened before (not counted again)"},
}

// featureIndex maps a variable name to its position in featureVars.
var featureIndex = func() map[string]int {
	m := make(map[string]int, len(featureVars))
	for i, v := range featureVars {
		if _, dup := m[v.name]; dup {
			panic("fraud: feature " + v.name + " declared twice")
		}
		m[v.name] = i
	}
	return m
}()

// Names of the two non-feature variables rules see.
const (
	varThresholds = "t"     // map(string, double): the market's thresholds
	varLists      = "lists" // map(string, map(string, bool)): named lists
)

// activation resolves CEL variables from one payment's features without
// building a map per event.
type activation struct {
	f          *Features
	thresholds ref.Val
	lists      ref.Val
}

func (a *activation) ResolveName(name string) (any, bool) {
	switch name {
	case varThresholds:
		return a.thresholds, true
	case varLists:
		return a.lists, true
	}
	i, ok := featureIndex[name]
	if !ok {
		return nil, false
	}
	return featureVars[i].get(a.f), true
}

func (a *activation) Parent() interpreter.Activation { return nil }
