package stack

import "github.com/sebelas/sebelas/internal/money"

// DemoFunding is the seed balance of a demo or test wallet in c: about USD
// 60–120 in every market, so the same traffic drains wallets alike in all
// seven currencies. `sebelas dev` and the chaos run seed with it.
func DemoFunding(c money.Currency) money.Amount {
	major := int64(1_000)
	switch c {
	case money.IDR:
		major = 1_500_000
	case money.PHP:
		major = 5_000
	case money.MYR:
		major = 400
	case money.THB:
		major = 3_000
	case money.BDT:
		major = 10_000
	case money.PKR:
		major = 25_000
	case money.INR:
		major = 8_000
	}
	return money.Amount{Minor: major * c.MinorPerMajor(), Currency: c}
}
