package fraud

import (
	"bytes"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"cel.dev/cel-go/common/types"
	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"

	"github.com/sebelas/sebelas/events"
	"github.com/sebelas/sebelas/internal/market"
)

func mustRules(t testing.TB, doc string) *Ruleset {
	t.Helper()
	rs, err := ParseRules([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func testDefaultRules(t testing.TB) *Ruleset {
	t.Helper()
	rs, err := DefaultRules()
	if err != nil {
		t.Fatalf("the default rules do not compile: %v", err)
	}
	return rs
}

// TestDefaultRulesAreTheConfigMap keeps the embedded default rules and the
// ConfigMap shipped in infra/knative the same document.
func TestDefaultRulesAreTheConfigMap(t *testing.T) {
	raw, err := os.ReadFile("../../infra/knative/fraud-rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cm struct {
		APIVersion string            `yaml:"apiVersion"`
		Kind       string            `yaml:"kind"`
		Data       map[string]string `yaml:"data"`
	}
	if err := yaml.Unmarshal(raw, &cm); err != nil {
		t.Fatal(err)
	}
	if cm.Kind != "ConfigMap" || cm.APIVersion != "v1" {
		t.Fatalf("fraud-rules.yaml is %s %s, want v1 ConfigMap", cm.APIVersion, cm.Kind)
	}
	if diff := cmp.Diff(string(DefaultRulesYAML()), cm.Data[RulesKey]); diff != "" {
		t.Errorf("infra/knative/fraud-rules.yaml data[%s] against internal/fraud/default_rules.yaml (-want +got):\n%s", RulesKey, diff)
	}
	rs, err := ParseRules(raw)
	if err != nil {
		t.Fatalf("the ConfigMap file does not load as rules: %v", err)
	}
	if rs.Hash != testDefaultRules(t).Hash {
		t.Error("the ConfigMap's rules hash differently from the default rules")
	}
}

const minimalRules = `
version: "t-1"
markets:
  default: {review_score: 400, deny_score: 700, large: 100}
rules:
  - name: large
    reason: large_amount
    score: 500
    when: amount >= t.large
`

// TestParseRulesRejects: every broken rule set is refused, and the error
// says what and where.
func TestParseRulesRejects(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []string // substrings of the error
	}{
		{"not YAML", "rules: [", []string{"YAML"}},
		{"unknown field", strings.Replace(minimalRules, "score: 500", "scroe: 500", 1), []string{"YAML", "scroe"}},
		{"CEL syntax error", strings.Replace(minimalRules, "amount >= t.large", "amount >>= t.large", 1), []string{`rule "large"`, "Syntax error"}},
		{"unknown variable", strings.Replace(minimalRules, "amount >= t.large", "amuont >= t.large", 1), []string{`rule "large"`, "amuont"}},
		{"not a bool", strings.Replace(minimalRules, "amount >= t.large", "amount + 1", 1), []string{`rule "large"`, "want bool"}},
		{"empty when", strings.Replace(minimalRules, "amount >= t.large", `""`, 1), []string{"when is empty"}},
		{"threshold missing", strings.Replace(minimalRules, "t.large", "t.huge", 1), []string{"t.huge is not set for market ID"}},
		{"threshold missing by index", strings.Replace(minimalRules, "t.large", `t["huge"]`, 1), []string{"t.huge is not set"}},
		{"threshold missing in one market", minimalRules + "  - name: ph\n    reason: ph\n    score: 1\n    markets: [PH]\n    when: amount >= t.ph_only\n",
			[]string{"t.ph_only is not set for market PH"}},
		{"review score missing", strings.Replace(minimalRules, "review_score: 400, ", "", 1), []string{"review_score and deny_score are required"}},
		{"review above deny", strings.Replace(minimalRules, "review_score: 400", "review_score: 800", 1), []string{"review_score (800) <= deny_score (700)"}},
		{"unknown market", minimalRules + "  - name: x\n    reason: x\n    score: 1\n    markets: [SG]\n    when: true\n", []string{`market "SG"`}},
		{"unknown market thresholds", strings.Replace(minimalRules, "  default:", "  SG: {large: 1}\n  default:", 1), []string{"markets.SG"}},
		{"unknown kind", minimalRules + "  - name: x\n    reason: x\n    score: 1\n    kinds: [refund]\n    when: true\n", []string{`kind "refund"`}},
		{"duplicate rule", minimalRules + "  - name: large\n    reason: x\n    score: 1\n    when: true\n", []string{`rule "large": defined twice`}},
		{"bad reason", strings.Replace(minimalRules, "reason: large_amount", "reason: Large-Amount", 1), []string{"reason"}},
		{"score out of range", strings.Replace(minimalRules, "score: 500", "score: 5000", 1), []string{"score 5000"}},
		{"undefined list", strings.Replace(minimalRules, "amount >= t.large", "wallet in lists.nope", 1), []string{"lists.nope is not defined"}},
		{"no rules", "version: x\nmarkets:\n  default: {review_score: 1, deny_score: 2}\nrules: []\n", []string{"rules: none"}},
		{"bad version", strings.Replace(minimalRules, `"t-1"`, `"rules v1"`, 1), []string{"version"}},
		{"ConfigMap without the key", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: fraud-rules}\ndata:\n  other.yaml: x\n", []string{`no data key "rules.yaml"`}},
		{"too large", strings.Repeat("#", rulesBytesMax+1), []string{"at most"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs, err := ParseRules([]byte(tt.doc))
			var re *RuleError
			if !errors.As(err, &re) {
				t.Fatalf("ParseRules = %v, %v; want a *RuleError", rs, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

func TestParseRulesAcceptsConfigMap(t *testing.T) {
	var cm bytes.Buffer
	cm.WriteString("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: fraud-rules\ndata:\n  rules.yaml: |\n")
	for _, line := range strings.Split(strings.TrimPrefix(minimalRules, "\n"), "\n") {
		cm.WriteString("    " + line + "\n")
	}
	rs, err := ParseRules(cm.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if rs.Version != "t-1" || rs.Rules() != 1 {
		t.Errorf("version %q, %d rules", rs.Version, rs.Rules())
	}
}

// neutral is an established wallet's ordinary payment in PH: no default
// rule but established_wallet fires on it.
func neutral() Features {
	return Features{
		Kind: KindCharge, Market: "PH", Currency: "PHP", Wallet: "w-1", Device: "dev-a", DeviceCountry: "PH", Payee: "m-1",
		Amount: 50000, Count1m: 1, Count1h: 1, Count1d: 2, Sum1m: 50000, Sum1h: 50000, Sum1d: 90000,
		HistoryCount: 12, HistoryAvg: 45000, AmountRatio: 50000.0 / 45000, WalletAgeS: 20 * 86400, SecondsSinceLast: 7200,
		NewDeviceAgeS: -1, Devices: 1, Balance: -1, HourLocal: 14,
	}
}

// TestDefaultRules: each default rule fires on the payment it is written
// for, and not on the neutral one.
func TestDefaultRules(t *testing.T) {
	rs := testDefaultRules(t)
	const (
		medium = 850000  // PH medium_amount
		large  = 1700000 // PH large_amount
	)
	tests := []struct {
		rule, reason string
		edit         func(f *Features)
	}{
		{"blocked_wallet", "blocked_wallet", nil}, // needs a list entry: TestBlocklists
		{"blocked_device", "blocked_device", nil},
		{"drain_from_recent_device", "balance_drain", func(f *Features) {
			f.Amount, f.BalanceKnown, f.Balance, f.BalanceShare, f.NewDeviceAgeS = 600000, true, 650000, 0.92, 120
		}},
		{"drain_to_new_payee", "balance_drain", func(f *Features) {
			f.Amount, f.BalanceKnown, f.Balance, f.BalanceShare, f.NewPayee = 600000, true, 650000, 0.92, true
		}},
		{"takeover_burst", "takeover_burst", func(f *Features) { f.NewDeviceAgeS, f.Count1h, f.Sum1h = 300, 2, medium }},
		{"large_from_recent_device", "new_device_large_amount", func(f *Features) { f.NewDevice, f.NewDeviceAgeS, f.Amount = true, 0, large }},
		{"recent_device_new_payee", "new_device_new_payee", func(f *Features) { f.NewDeviceAgeS, f.NewPayee, f.Amount = 60, true, medium }},
		{"young_wallet_large_spend", "young_wallet_spend", func(f *Features) { f.NewWallet, f.WalletAgeS, f.HistoryCount, f.Amount = true, 0, 0, medium }},
		{"young_wallet_all_in", "young_wallet_spend", func(f *Features) {
			f.WalletAgeS, f.Amount, f.BalanceKnown, f.Balance, f.BalanceShare = 3600, medium, true, medium, 1
		}},
		{"young_wallet_rapid_spend", "young_wallet_spend", func(f *Features) { f.WalletAgeS, f.Count1h, f.Sum1h = 1800, 2, large }},
		{"coupon_farm_device", "shared_device_new_wallets", func(f *Features) { f.NewWallet, f.DeviceWallets = true, 3 }},
		{"coupon_farm_device_many", "shared_device_new_wallets", func(f *Features) { f.NewWallet, f.DeviceWallets = true, 6 }},
		{"topup_recent_device_new_number", "topup_takeover", func(f *Features) { f.Kind, f.NewDeviceAgeS, f.NewPayee = KindTopup, 0, true }},
		{"topup_recent_device_burst", "topup_takeover", func(f *Features) { f.Kind, f.NewDeviceAgeS, f.Count1h = KindTopup, 900, 2 }},
		{"topup_burst", "topup_velocity", func(f *Features) { f.Kind, f.Count1h = KindTopup, 4 }},
		{"burst_1m", "velocity_1m", func(f *Features) { f.Count1m, f.Count1h = 5, 5 }},
		{"busy_1h", "velocity_1h", func(f *Features) { f.Count1h = 20 }},
		{"amount_spike", "amount_spike", func(f *Features) { f.Amount, f.AmountRatio = 400000, 8.9 }},
		{"device_abroad", "device_country_mismatch", func(f *Features) { f.DeviceCountry, f.CountryMismatch = "SG", true }},
		{"country_changed_recent_device", "device_country_changed", func(f *Features) { f.CountryChanged, f.NewDeviceAgeS = true, 30 }},
		{"established_wallet", "established_wallet", func(f *Features) {}},
	}
	base := neutral()
	neutralReasons := rs.Score(&base).Reasons
	if diff := cmp.Diff([]string{"established_wallet"}, neutralReasons); diff != "" {
		t.Fatalf("neutral payment reasons (-want +got):\n%s", diff)
	}
	covered := map[string]bool{}
	for _, tt := range tests {
		covered[tt.rule] = true
		if tt.edit == nil {
			continue
		}
		t.Run(tt.rule, func(t *testing.T) {
			f := neutral()
			tt.edit(&f)
			if v := rs.Score(&f); !slices.Contains(v.Reasons, tt.reason) {
				t.Errorf("reason %s missing: %+v", tt.reason, v)
			}
			if got := fired(t, rs, &f); !slices.Contains(got, tt.rule) {
				t.Errorf("%s did not fire; fired: %v", tt.rule, got)
			}
			if got := fired(t, rs, &base); slices.Contains(got, tt.rule) && tt.rule != "established_wallet" {
				t.Errorf("%s fires on the neutral payment", tt.rule)
			}
		})
	}
	for _, spec := range allSpecs(rs) {
		if !covered[spec] {
			t.Errorf("default rule %s has no case here", spec)
		}
	}
}

// fired lists the rules of rs that fire on f.
func fired(t testing.TB, rs *Ruleset, f *Features) []string {
	t.Helper()
	k := 0
	if f.Kind == KindTopup {
		k = 1
	}
	i := rs.codes[f.Market]
	act := &activation{f: f, thresholds: rs.tVals[i], lists: rs.lists}
	var names []string
	for _, r := range rs.byMarket[i][k] {
		out := r.program.Eval(act)
		if types.IsError(out) {
			t.Fatalf("%s: %v", r.spec.Name, out)
		}
		if out == types.True {
			names = append(names, r.spec.Name)
		}
	}
	return names
}

func allSpecs(rs *Ruleset) []string {
	seen := map[string]bool{}
	var names []string
	for _, byKind := range rs.byMarket {
		for _, rules := range byKind {
			for _, r := range rules {
				if !seen[r.spec.Name] {
					seen[r.spec.Name] = true
					names = append(names, r.spec.Name)
				}
			}
		}
	}
	return names
}

// TestDefaultRuleDecisions: the patterns the default rules are written for
// end where they should.
func TestDefaultRuleDecisions(t *testing.T) {
	rs := testDefaultRules(t)
	tests := []struct {
		name string
		edit func(f *Features)
		want string
	}{
		{"ordinary payment", func(f *Features) {}, events.DecisionAllow},
		{"festival spree of an established wallet", func(f *Features) { f.Count1m, f.Count1h, f.Amount, f.AmountRatio = 3, 3, 120000, 2.7 }, events.DecisionAllow},
		{"takeover drain from a new phone abroad", func(f *Features) {
			f.NewDevice, f.NewDeviceAgeS, f.NewPayee, f.DeviceCountry, f.CountryMismatch = true, 0, true, "AE", true
			f.Amount, f.BalanceKnown, f.Balance, f.BalanceShare = 2000000, true, 2100000, 0.95
		}, events.DecisionDeny},
		{"stolen card: new wallet spends it all", func(f *Features) {
			f.NewWallet, f.WalletAgeS, f.HistoryCount, f.HistoryAvg, f.AmountRatio = true, 0, 0, 0, 0
			f.Amount, f.BalanceKnown, f.Balance, f.BalanceShare = 900000, true, 950000, 0.95
		}, events.DecisionDeny},
		{"coupon farm: 7th wallet on a device", func(f *Features) {
			f.NewWallet, f.WalletAgeS, f.HistoryCount, f.DeviceWallets = true, 0, 0, 7
		}, events.DecisionDeny},
		{"SIM swap: third top-up to a new number from a new phone", func(f *Features) {
			f.Kind, f.NewDeviceAgeS, f.NewPayee, f.Count1h = KindTopup, 600, true, 3
		}, events.DecisionDeny},
		{"new phone, ordinary purchase", func(f *Features) { f.NewDevice, f.NewDeviceAgeS = true, 0 }, events.DecisionAllow},
		{"traveller, ordinary purchase", func(f *Features) { f.DeviceCountry, f.CountryMismatch = "JP", true }, events.DecisionAllow},
		{"family phone: second new wallet", func(f *Features) { f.NewWallet, f.WalletAgeS, f.HistoryCount, f.DeviceWallets = true, 0, 0, 2 }, events.DecisionAllow},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := neutral()
			tt.edit(&f)
			if v := rs.Score(&f); v.Decision != tt.want {
				t.Errorf("decision %s (score %d, %v), want %s", v.Decision, v.Score, v.Reasons, tt.want)
			}
		})
	}
}

// TestPerMarketThresholds: the same payment in two markets meets each
// market's own amounts.
func TestPerMarketThresholds(t *testing.T) {
	rs := mustRules(t, `
version: m-1
markets:
  default: {review_score: 400, deny_score: 700, large: 1000000}
  ID: {large: 5000000}
  PK: {deny_score: 500}
rules:
  - {name: large, reason: large_amount, score: 600, when: amount >= t.large}
`)
	for _, tt := range []struct {
		market string
		amount int64
		want   string
	}{
		{"PH", 1000000, events.DecisionReview},
		{"PH", 999999, events.DecisionAllow},
		{"ID", 1000000, events.DecisionAllow},
		{"ID", 5000000, events.DecisionReview},
		{"PK", 1000000, events.DecisionDeny},
	} {
		f := Features{Kind: KindCharge, Market: tt.market, Amount: tt.amount}
		if v := rs.Score(&f); v.Decision != tt.want {
			t.Errorf("%s %d: %s, want %s", tt.market, tt.amount, v.Decision, tt.want)
		}
	}
}

func TestScoreArithmetic(t *testing.T) {
	rs := mustRules(t, `
version: s-1
markets:
  default: {review_score: 400, deny_score: 700}
lists:
  vip: [w-vip]
rules:
  - {name: a, reason: a, score: 300, when: amount > 0}
  - {name: b, reason: b, score: 300, when: amount > 100}
  - {name: c, reason: a, score: 300, when: amount > 200}
  - {name: trusted, reason: trusted, score: -1000, when: wallet in lists.vip}
  - {name: topup_only, reason: t, score: 900, kinds: [topup], when: "true"}
  - {name: id_only, reason: i, score: 900, markets: [ID], when: "true"}
  - {name: broken, reason: x, score: 900, when: "amount / (count_1m - count_1m) > 0"}
`)
	tests := []struct {
		name string
		f    Features
		want events.Screening
	}{
		{"one rule", Features{Kind: KindCharge, Market: "PH", Amount: 1},
			events.Screening{Score: 300, Decision: events.DecisionAllow, Reasons: []string{"a", ReasonRuleError}}},
		{"scores add, a reason is listed once", Features{Kind: KindCharge, Market: "PH", Amount: 300},
			events.Screening{Score: 900, Decision: events.DecisionDeny, Reasons: []string{"a", "b", ReasonRuleError}}},
		{"clamped at 1000", Features{Kind: KindTopup, Market: "PH", Amount: 300},
			events.Screening{Score: 1000, Decision: events.DecisionDeny, Reasons: []string{"a", "b", "t", ReasonRuleError}}},
		{"clamped at 0", Features{Kind: KindCharge, Market: "PH", Amount: 1, Wallet: "w-vip"},
			events.Screening{Score: 0, Decision: events.DecisionAllow, Reasons: []string{"a", "trusted", ReasonRuleError}}},
		{"market rule", Features{Kind: KindCharge, Market: "ID", Amount: 1},
			events.Screening{Score: 1000, Decision: events.DecisionDeny, Reasons: []string{"a", "i", ReasonRuleError}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := rs.Score(&tt.f)
			tt.want.RulesVersion = "s-1"
			if diff := cmp.Diff(tt.want, v.Screening); diff != "" {
				t.Errorf("Score (-want +got):\n%s", diff)
			}
			// A rule that fails is reported, and counts as not fired.
			if len(v.Errors) != 1 || !strings.HasPrefix(v.Errors[0], "broken:") {
				t.Errorf("errors %v, want the broken rule", v.Errors)
			}
		})
	}
}

func TestBlocklists(t *testing.T) {
	doc := strings.Replace(string(DefaultRulesYAML()), "blocked_wallets: []", "blocked_wallets: [w-mule]", 1)
	doc = strings.Replace(doc, "blocked_devices: []", "blocked_devices: [dev-emulator-farm]", 1)
	rs := mustRules(t, doc)
	for _, tt := range []struct {
		edit   func(f *Features)
		reason string
	}{
		{func(f *Features) { f.Wallet = "w-mule" }, "blocked_wallet"},
		{func(f *Features) { f.Device = "dev-emulator-farm" }, "blocked_device"},
	} {
		f := neutral()
		tt.edit(&f)
		if v := rs.Score(&f); v.Decision != events.DecisionDeny || !slices.Contains(v.Reasons, tt.reason) {
			t.Errorf("%s: %+v", tt.reason, v)
		}
	}
}

// TestEmergencyBlocklists: the operator's environment lists add to the
// rules' lists.
func TestEmergencyBlocklists(t *testing.T) {
	extra, err := ListsFromEnv(func(k string) string {
		return map[string]string{EnvBlockedWallets: "w-env, w-env-2", EnvBlockedDevices: "dev-env"}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	rs, err := ParseRulesWithLists(DefaultRulesYAML(), extra)
	if err != nil {
		t.Fatal(err)
	}
	for _, edit := range []func(f *Features){
		func(f *Features) { f.Wallet = "w-env-2" },
		func(f *Features) { f.Device = "dev-env" },
	} {
		f := neutral()
		edit(&f)
		if v := rs.Score(&f); v.Decision != events.DecisionDeny {
			t.Errorf("%+v not denied: %+v", f, v)
		}
	}
	if f := neutral(); rs.Score(&f).Decision != events.DecisionAllow {
		t.Error("an unlisted wallet is not allowed")
	}
}

func TestNewFeatures(t *testing.T) {
	ph, _ := market.ByCode("PH")
	at := time.Date(2026, 11, 10, 16, 30, 0, 0, time.UTC) // 00:30 on 11.11 in Manila
	p := Payment{Kind: KindCharge, Wallet: "w-1", DeviceID: "d", DeviceCountry: "SG", Payee: "m", Amount: 300, Currency: "PHP", At: at}
	o := Observed{Count1m: 1, HistoryCount: 4, HistorySum: 400, BalanceKnown: true, Balance: 200, NewDeviceAgeSeconds: -1}
	f := NewFeatures(p, o, ph)
	want := Features{Kind: KindCharge, Type: TypePayment, Market: "PH", Currency: "PHP", Wallet: "w-1", Device: "d", DeviceCountry: "SG", Payee: "m",
		Amount: 300, Count1m: 1, HistoryCount: 4, HistoryAvg: 100, AmountRatio: 3, CountryMismatch: true,
		BalanceKnown: true, Balance: 200, BalanceShare: 1.5, HourLocal: 0, NewDeviceAgeS: -1, PayeeAgeS: -1, MarketSurge: 1, ModelScore: -1}
	if diff := cmp.Diff(want, f); diff != "" {
		t.Errorf("NewFeatures (-want +got):\n%s", diff)
	}
	o.Balance = 0
	if f := NewFeatures(p, o, ph); f.BalanceShare != balanceShareMax {
		t.Errorf("share of an empty balance = %v, want %v", f.BalanceShare, balanceShareMax)
	}
	o.BalanceKnown = false
	if f := NewFeatures(p, o, ph); f.Balance != -1 || f.BalanceShare != 0 {
		t.Errorf("unknown balance: balance %d share %v", f.Balance, f.BalanceShare)
	}
}

// BenchmarkScoreDefaultRules is the rules' cost per payment, DynamoDB
// excluded (target: well under 100 µs).
func BenchmarkScoreDefaultRules(b *testing.B) {
	rs := testDefaultRules(b)
	f := neutral()
	f.NewDeviceAgeS, f.NewPayee = 120, true
	b.ReportAllocs()
	for b.Loop() {
		rs.Score(&f)
	}
}

// TestFeaturesDocumented: every variable a rule can use is in the risk
// team's table in docs/fraud.md.
func TestFeaturesDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/fraud.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range featureVars {
		if !strings.Contains(string(doc), "| `"+v.name+"` | "+v.typ.String()+" |") {
			t.Errorf("feature %s (%s) is not in docs/fraud.md's table", v.name, v.typ)
		}
	}
}
