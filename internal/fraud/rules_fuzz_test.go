package fraud

import (
	"strings"
	"testing"

	"github.com/sebelas/sebelas/events"
	"github.com/sebelas/sebelas/internal/market"
)

// FuzzParseRules: the risk team's rules file (a ConfigMap, reloaded live)
// is input the function did not write. Any document either is refused with
// an error or compiles into a rule set whose every rule evaluates, on a
// charge and a top-up in every market, to a verdict within the schema's
// bounds: no panic, no hang, a score of 0..1000, a known decision, at most
// 32 reasons.
func FuzzParseRules(f *testing.F) {
	f.Add(DefaultRulesYAML())
	f.Add([]byte("version: \"1\"\nmarkets:\n  default: {review_score: 400, deny_score: 700}\nrules: []\n"))
	f.Add([]byte("version: \"1\"\nmarkets:\n  default: {review_score: 400, deny_score: 700}\nrules:\n  - {name: r, reason: r, score: 1000, when: 'amount > 0'}\n"))
	f.Add([]byte("version: \"1\"\nmarkets:\n  default: {review_score: 400, deny_score: 700}\nrules:\n  - {name: r, reason: r, score: 5, when: 'amount / 0 > 1'}\n"))
	f.Add([]byte("version: \"1\"\nrules:\n  - {name: r, reason: r, score: 5, when: '" + strings.Repeat("(", 100) + "true" + strings.Repeat(")", 100) + "'}\n"))
	f.Add([]byte("rules: [{name: x, when: 'lists.nope.size() > 0'}]"))
	f.Add([]byte("{{{"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, doc []byte) {
		rs, err := ParseRules(doc)
		if err != nil {
			return
		}
		for _, m := range market.All() {
			for _, kind := range []string{KindCharge, KindTopup} {
				v := rs.Score(&Features{Kind: kind, Market: m.Code, Currency: string(m.Currency), Wallet: "w-1",
					Device: "d-1", Payee: "628123", Amount: 1_000, Count1m: 3, Count1h: 9, WalletAgeS: 60, AmountRatio: 2.5})
				if v.Score < 0 || v.Score > scoreMax || len(v.Reasons) > reasonsPerEventMax {
					t.Fatalf("%s %s: score %d, %d reasons", m.Code, kind, v.Score, len(v.Reasons))
				}
				switch v.Decision {
				case events.DecisionAllow, events.DecisionReview, events.DecisionDeny:
				default:
					t.Fatalf("%s %s: decision %q", m.Code, kind, v.Decision)
				}
			}
		}
	})
}
