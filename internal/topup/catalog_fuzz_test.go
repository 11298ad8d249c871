package topup_test

import (
	"os"
	"testing"

	"github.com/sebelas/sebelas/internal/money"
	"github.com/sebelas/sebelas/internal/topup"
)

// FuzzParseCatalog: no file panics the loader or hangs it, and whatever it
// accepts prices every product within 1..money.AmountMinorMax.
func FuzzParseCatalog(f *testing.F) {
	def, err := os.ReadFile("products.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(def)
	f.Add([]byte("version: x\nmarkets: []\n"))
	f.Add([]byte("version: x\nmarkets:\n  - market: PK\n    operators:\n      - operator: jazz\n        airtime: {min: 10, max: 100, step: 10}\n"))
	f.Add([]byte("version: x\nmarkets:\n  - market: ID\n    fee: 9223372036854775807\n    operators:\n      - operator: xl\n        products: [{id: a, kind: airtime, face: 1}]\n"))
	f.Add([]byte("&a [*a]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := topup.ParseCatalog(data)
		if err != nil {
			return
		}
		for _, m := range []string{"ID", "PH", "MY", "TH", "BD", "PK", "IN"} {
			for _, p := range c.Products(m) {
				if price := p.Price(); price < 1 || price > money.AmountMinorMax {
					t.Fatalf("product %s accepted with price %d", p.ID, price)
				}
			}
		}
	})
}
