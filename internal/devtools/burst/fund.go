package burst

import (
	"context"
	"fmt"
	"math"
	"sync"

	"github.com/sebelas/sebelas/internal/ledger"
	"github.com/sebelas/sebelas/internal/money"
)

// fundUSD is what each generated payer is credited with: enough for
// thousands of the largest baskets, so a burst measures the path and not
// running out of money.
const fundUSD = 100_000

// fundInFlightMax bounds concurrent cash-ins while funding.
const fundInFlightMax = 64

// FundCashInID is the cash-in id that funds a generated payer: fixed per
// wallet and currency, so funding twice credits once.
func FundCashInID(wallet string, c money.Currency) string {
	return "burst-fund-" + wallet + "-" + string(c)
}

// FundPayers credits every generated payer of every market of p, once (a
// repeat is a replayed cash-in). It talks to the table through l, not to
// the Broker: it is the operator's explicit set-up step before a burst.
func FundPayers(ctx context.Context, l *ledger.Store, p Profile, inFlight int) error {
	if err := p.Validate(); err != nil {
		return err
	}
	inFlight = max(1, min(inFlight, fundInFlightMax))
	type job struct {
		wallet string
		amt    money.Amount
	}
	jobs := make(chan job)
	errc := make(chan error, inFlight)
	var wg sync.WaitGroup
	for range inFlight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				if _, err := l.CashIn(ctx, FundCashInID(j.wallet, j.amt.Currency), j.wallet, j.amt, "burst"); err != nil {
					errc <- fmt.Errorf("fund %s: %w", j.wallet, err)
					return
				}
			}
		}()
	}
	var err error
feed:
	for i, m := range p.Markets {
		minor := int64(math.Round(fundUSD*majorPerUSD[m.Currency])) * m.Currency.MinorPerMajor()
		for n := range p.PayersIn(i) {
			select {
			case jobs <- job{PayerID(m.Code, n), money.Amount{Minor: minor, Currency: m.Currency}}:
			case err = <-errc:
				break feed
			case <-ctx.Done():
				err = ctx.Err()
				break feed
			}
		}
	}
	close(jobs)
	wg.Wait()
	if err == nil {
		select {
		case err = <-errc:
		default:
		}
	}
	return err
}
