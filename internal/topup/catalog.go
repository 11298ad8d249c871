package topup

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"

	"go.yaml.in/yaml/v3"

	"github.com/sebelas/sebelas/internal/fault"
	"github.com/sebelas/sebelas/internal/market"
	"github.com/sebelas/sebelas/internal/money"
	"github.com/sebelas/sebelas/internal/msisdn"
	"github.com/sebelas/sebelas/internal/operator"
)

// Reasons of the permanent errors of Catalog.Quote (400, dead-lettered:
// the app sent something the catalog does not sell).
const (
	ReasonUnknownProduct     = "unknown_product"
	ReasonProductNotForPhone = "product_not_for_number"
	ReasonAmountMismatch     = "amount_mismatch"
	ReasonAmountNotOffered   = "amount_not_offered"
	ReasonOperatorNotOffered = "operator_not_offered"
)

// Limits of a catalog file.
const (
	catalogBytesMax    = 1 << 20
	catalogProductsMax = 10_000
)

//go:embed products.yaml
var defaultCatalogYAML []byte

var productIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$`)

// Product is one denomination or bundle an operator sells.
type Product struct {
	ID       string
	Market   string // ISO 3166 code
	Operator string // msisdn.Operator.ID
	Kind     string // operator.KindAirtime or KindData
	// Face is what the phone receives (airtime) or the bundle's retail
	// value (data), minor units of the market's currency.
	Face int64
	// Fee is added to Face and Cashback taken off it: Price is what the
	// payer's wallet is charged.
	Fee, Cashback int64
	DataMB        int64
	ValidityDays  int64
}

// Price is what the payer pays.
func (p Product) Price() int64 { return p.Face + p.Fee - p.Cashback }

// Quote is what one top-up buys and costs.
type Quote struct {
	ProductID string // empty for an open airtime amount
	Kind      string
	Face      int64
	Fee       int64
	Cashback  int64
	Price     int64
}

type openAirtime struct {
	min, max, step int64
	fee, cashback  int64
}

// Catalog is the products on sale, per market and operator, with the fees
// and cashback of each. It is immutable once loaded.
type Catalog struct {
	Version  string
	products map[string]Product
	open     map[[2]string]openAirtime // by market, operator
	offered  map[[2]string]bool        // operators with anything on sale
}

// The file format (products.yaml is the default, embedded in the binary;
// SEBELAS_TOPUP_PRODUCTS names a replacement, for example a ConfigMap
// mounted as a file). Amounts are minor units of the market's currency.
// Fee and cashback are flat amounts, set per market and overridden per
// operator and per product. Cashback is an instant discount: the payer is
// charged face + fee − cashback. It is never credited afterwards, since a
// later credit would be money entering a wallet without a cash-in, which
// the audit rightly flags.
type catalogFile struct {
	Version string       `yaml:"version"`
	Markets []marketFile `yaml:"markets"`
}

type marketFile struct {
	Market    string         `yaml:"market"`
	Fee       int64          `yaml:"fee"`
	Cashback  int64          `yaml:"cashback"`
	Operators []operatorFile `yaml:"operators"`
}

type operatorFile struct {
	Operator string        `yaml:"operator"`
	Fee      *int64        `yaml:"fee"`
	Cashback *int64        `yaml:"cashback"`
	Airtime  *airtimeFile  `yaml:"airtime"`
	Products []productFile `yaml:"products"`
}

// airtimeFile allows an open airtime amount: min..max face value in
// multiples of step.
type airtimeFile struct {
	Min  int64 `yaml:"min"`
	Max  int64 `yaml:"max"`
	Step int64 `yaml:"step"`
}

type productFile struct {
	ID           string `yaml:"id"`
	Kind         string `yaml:"kind"`
	Face         int64  `yaml:"face"`
	Fee          *int64 `yaml:"fee"`
	Cashback     *int64 `yaml:"cashback"`
	DataMB       int64  `yaml:"data_mb"`
	ValidityDays int64  `yaml:"validity_days"`
}

// DefaultCatalog returns the embedded catalog. It panics if the embedded
// file is broken: a build defect its test catches.
func DefaultCatalog() *Catalog {
	c, err := ParseCatalog(defaultCatalogYAML)
	if err != nil {
		panic("topup: embedded products.yaml: " + err.Error())
	}
	return c
}

// LoadCatalog reads a catalog file.
func LoadCatalog(path string) (*Catalog, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, catalogBytesMax+1))
	if err != nil {
		return nil, err
	}
	c, err := ParseCatalog(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// ParseCatalog parses and checks a catalog: known markets and operators
// (msisdn's table), unique product ids, positive prices within
// money.AmountMinorMax, kinds, bundles with their size and validity, open
// amount ranges. Unknown fields are errors, so a typo cannot silently drop
// a fee.
func ParseCatalog(data []byte) (*Catalog, error) {
	if len(data) > catalogBytesMax {
		return nil, fmt.Errorf("catalog is over %d bytes", catalogBytesMax)
	}
	var f catalogFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("catalog: more than one YAML document")
	}
	if f.Version == "" {
		return nil, errors.New("catalog: version is required")
	}
	c := &Catalog{Version: f.Version, products: map[string]Product{}, open: map[[2]string]openAirtime{}, offered: map[[2]string]bool{}}
	seenMarket := map[string]bool{}
	for _, mf := range f.Markets {
		if _, err := market.ByCode(mf.Market); err != nil {
			return nil, fmt.Errorf("catalog: %w", err)
		}
		if seenMarket[mf.Market] {
			return nil, fmt.Errorf("catalog: market %s listed twice", mf.Market)
		}
		seenMarket[mf.Market] = true
		seenOp := map[string]bool{}
		for _, of := range mf.Operators {
			where := mf.Market + "/" + of.Operator
			if _, ok := msisdn.OperatorByID(mf.Market, of.Operator); !ok {
				return nil, fmt.Errorf("catalog: %s: no such operator in internal/msisdn", where)
			}
			if seenOp[of.Operator] {
				return nil, fmt.Errorf("catalog: %s listed twice", where)
			}
			seenOp[of.Operator] = true
			fee, cashback := orDefault(of.Fee, mf.Fee), orDefault(of.Cashback, mf.Cashback)
			key := [2]string{mf.Market, of.Operator}
			if a := of.Airtime; a != nil {
				if a.Step < 1 || a.Min < a.Step || a.Max < a.Min || a.Min%a.Step != 0 || a.Max%a.Step != 0 {
					return nil, fmt.Errorf("catalog: %s: airtime wants step >= 1, min and max multiples of step, step <= min <= max", where)
				}
				for _, face := range []int64{a.Min, a.Max} {
					if err := checkPricing(where+" airtime", face, fee, cashback); err != nil {
						return nil, err
					}
				}
				c.open[key] = openAirtime{min: a.Min, max: a.Max, step: a.Step, fee: fee, cashback: cashback}
				c.offered[key] = true
			}
			for _, pf := range of.Products {
				p := Product{ID: pf.ID, Market: mf.Market, Operator: of.Operator, Kind: pf.Kind, Face: pf.Face,
					Fee: orDefault(pf.Fee, fee), Cashback: orDefault(pf.Cashback, cashback), DataMB: pf.DataMB, ValidityDays: pf.ValidityDays}
				if err := checkProduct(p); err != nil {
					return nil, fmt.Errorf("catalog: %s: %w", where, err)
				}
				if _, dup := c.products[p.ID]; dup {
					return nil, fmt.Errorf("catalog: product %s listed twice", p.ID)
				}
				if len(c.products) >= catalogProductsMax {
					return nil, fmt.Errorf("catalog: more than %d products", catalogProductsMax)
				}
				c.products[p.ID] = p
				c.offered[key] = true
			}
		}
	}
	return c, nil
}

func orDefault(v *int64, def int64) int64 {
	if v == nil {
		return def
	}
	return *v
}

func checkPricing(what string, face, fee, cashback int64) error {
	if face < 1 || face > money.AmountMinorMax || fee < 0 || fee > money.AmountMinorMax || cashback < 0 || cashback > money.AmountMinorMax {
		return fmt.Errorf("catalog: %s: face, fee and cashback must be within 0..%d, face at least 1", what, money.AmountMinorMax)
	}
	if price := face + fee - cashback; price < 1 || price > money.AmountMinorMax {
		return fmt.Errorf("catalog: %s: price face + fee - cashback = %d, want 1..%d", what, price, money.AmountMinorMax)
	}
	return nil
}

func checkProduct(p Product) error {
	if !productIDPattern.MatchString(p.ID) {
		return fmt.Errorf("product id %.64q: want 1..64 of [A-Za-z0-9._:-], starting alphanumeric", p.ID)
	}
	switch p.Kind {
	case operator.KindAirtime:
		if p.DataMB != 0 || p.ValidityDays != 0 {
			return fmt.Errorf("product %s: airtime has no data_mb or validity_days", p.ID)
		}
	case operator.KindData:
		if p.DataMB < 1 || p.ValidityDays < 1 || p.DataMB > 10_000_000 || p.ValidityDays > 3_660 {
			return fmt.Errorf("product %s: a data bundle needs data_mb and validity_days", p.ID)
		}
	default:
		return fmt.Errorf("product %s: kind %.16q, want airtime or data", p.ID, p.Kind)
	}
	return checkPricing("product "+p.ID, p.Face, p.Fee, p.Cashback)
}

// Product returns a product by id.
func (c *Catalog) Product(id string) (Product, bool) {
	p, ok := c.products[id]
	return p, ok
}

// Products returns every product of a market, sorted by operator and id.
func (c *Catalog) Products(marketCode string) []Product {
	var out []Product
	for _, p := range c.products {
		if p.Market == marketCode {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Operator != out[j].Operator {
			return out[i].Operator < out[j].Operator
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// Quote prices a top-up for a number of marketCode whose operator is
// operatorID. With productID, the product must be that operator's, and an
// amount, if given, must be its price (the app shows the price; a
// different amount means the app and the catalog disagree, and the payer
// must not be charged what they were not shown). Without productID, amount
// is the airtime face value wanted, within the operator's open range.
func (c *Catalog) Quote(marketCode, operatorID, productID string, amount int64) (Quote, error) {
	key := [2]string{marketCode, operatorID}
	if !c.offered[key] {
		return Quote{}, fault.Permanentf(ReasonOperatorNotOffered, "no top-ups on sale for %s in %s", operatorID, marketCode)
	}
	if productID != "" {
		p, ok := c.products[productID]
		if !ok {
			return Quote{}, fault.Permanentf(ReasonUnknownProduct, "no product %.64q", productID)
		}
		if p.Market != marketCode || p.Operator != operatorID {
			return Quote{}, fault.Permanentf(ReasonProductNotForPhone, "product %s is for %s in %s, the number is %s", p.ID, p.Operator, p.Market, operatorID)
		}
		if amount != 0 && amount != p.Price() {
			return Quote{}, fault.Permanentf(ReasonAmountMismatch, "amount %d is not the price %d of %s", amount, p.Price(), p.ID)
		}
		return Quote{ProductID: p.ID, Kind: p.Kind, Face: p.Face, Fee: p.Fee, Cashback: p.Cashback, Price: p.Price()}, nil
	}
	o, ok := c.open[key]
	if !ok {
		return Quote{}, fault.Permanentf(ReasonAmountNotOffered, "%s sells products only in %s: a product_id is required", operatorID, marketCode)
	}
	if amount < o.min || amount > o.max || amount%o.step != 0 {
		return Quote{}, fault.Permanentf(ReasonAmountNotOffered, "airtime for %s is %d..%d in steps of %d", operatorID, o.min, o.max, o.step)
	}
	return Quote{Kind: operator.KindAirtime, Face: amount, Fee: o.fee, Cashback: o.cashback, Price: amount + o.fee - o.cashback}, nil
}
