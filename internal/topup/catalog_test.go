package topup_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sebelas/sebelas/internal/fault"
	"github.com/sebelas/sebelas/internal/msisdn"
	"github.com/sebelas/sebelas/internal/topup"
)

func TestDefaultCatalog(t *testing.T) {
	c := topup.DefaultCatalog()
	// The golden samples' products exist, for their operators.
	for id, op := range map[string]string{"tsel-pulsa-50k": "telkomsel", "cd-reload-30": "celcomdigi", "gp-data-10gb-30d": "grameenphone"} {
		p, ok := c.Product(id)
		if !ok || p.Operator != op {
			t.Errorf("product %s = %+v, %v; want one of %s", id, p, ok, op)
		}
	}
	for _, m := range []string{"ID", "PH", "MY", "TH", "BD", "PK", "IN"} {
		if len(c.Products(m)) == 0 && m != "BD" && m != "PK" {
			t.Errorf("%s: no products", m)
		}
		sold := 0
		for _, op := range msisdn.Operators(m) {
			if _, err := c.Quote(m, op.ID, "", 0); fault.ReasonOf(err) != topup.ReasonOperatorNotOffered {
				sold++
			}
		}
		if sold == 0 {
			t.Errorf("%s: nothing on sale", m)
		}
	}
}

func TestQuote(t *testing.T) {
	c := topup.DefaultCatalog()
	tests := []struct {
		name                      string
		market, operator, product string
		amount                    int64
		want                      topup.Quote
		reason                    string
	}{
		{"product with its fee", "ID", "telkomsel", "tsel-pulsa-10k", 0, topup.Quote{ProductID: "tsel-pulsa-10k", Kind: "airtime", Face: 10_000, Fee: 1_500, Price: 11_500}, ""},
		{"product and its price", "ID", "telkomsel", "tsel-pulsa-10k", 11_500, topup.Quote{ProductID: "tsel-pulsa-10k", Kind: "airtime", Face: 10_000, Fee: 1_500, Price: 11_500}, ""},
		{"bundle with cashback", "ID", "telkomsel", "tsel-data-12gb-30d", 0, topup.Quote{ProductID: "tsel-data-12gb-30d", Kind: "data", Face: 100_000, Cashback: 5_000, Price: 95_000}, ""},
		{"open amount with the operator's fee", "IN", "vi", "", 100_00, topup.Quote{Kind: "airtime", Face: 100_00, Fee: 1_00, Price: 101_00}, ""},
		{"amount that is the face, not the price", "ID", "telkomsel", "tsel-pulsa-10k", 10_000, topup.Quote{}, topup.ReasonAmountMismatch},
		{"another operator's product", "ID", "xl", "tsel-pulsa-10k", 0, topup.Quote{}, topup.ReasonProductNotForPhone},
		{"unknown product", "ID", "telkomsel", "tsel-pulsa-1m", 0, topup.Quote{}, topup.ReasonUnknownProduct},
		{"above the open maximum", "ID", "telkomsel", "", 1_001_000, topup.Quote{}, topup.ReasonAmountNotOffered},
		{"no open amount for the operator", "IN", "jio", "", 100_00, topup.Quote{}, topup.ReasonAmountNotOffered},
		{"operator with nothing on sale", "MY", "nope", "", 10_00, topup.Quote{}, topup.ReasonOperatorNotOffered},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := c.Quote(tt.market, tt.operator, tt.product, tt.amount)
			if tt.reason != "" {
				if !fault.IsPermanent(err) || fault.ReasonOf(err) != tt.reason {
					t.Errorf("err = %v, want permanent %s", err, tt.reason)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, q); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseCatalogRejects(t *testing.T) {
	const base = `version: "t1"
markets:
  - market: ID
    operators:
      - operator: telkomsel
        airtime: {min: 5000, max: 100000, step: 1000}
        products:
          - {id: p1, kind: airtime, face: 10000}
`
	if _, err := topup.ParseCatalog([]byte(base)); err != nil {
		t.Fatalf("base catalog: %v", err)
	}
	tests := []struct{ name, old, new, want string }{
		{"unknown field", "face: 10000}", "face: 10000, fees: 5}", "fees"},
		{"unknown market", "market: ID", "market: SG", "SG"},
		{"operator of another market", "operator: telkomsel", "operator: globe", "no such operator"},
		{"duplicate product", "face: 10000}\n", "face: 10000}\n          - {id: p1, kind: airtime, face: 20000}\n", "twice"},
		{"cashback above the price", "face: 10000}", "face: 10000, cashback: 10000}", "price"},
		{"negative fee", "face: 10000}", "face: 10000, fee: -1}", "fee"},
		{"data without a size", "kind: airtime, face: 10000}", "kind: data, face: 10000}", "data_mb"},
		{"unknown kind", "kind: airtime", "kind: voucher", "kind"},
		{"min off the step", "min: 5000", "min: 5500", "multiples"},
		{"bad product id", "id: p1", "id: \"p 1\"", "product id"},
		{"no version", `version: "t1"`, `version: ""`, "version"},
		{"two documents", "face: 10000}\n", "face: 10000}\n---\nversion: x\n", "more than one"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := strings.Replace(base, tt.old, tt.new, 1)
			if doc == base {
				t.Fatal("the mutation changed nothing")
			}
			_, err := topup.ParseCatalog([]byte(doc))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one mentioning %q", err, tt.want)
			}
		})
	}
}
