package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/sebelas/sebelas/events"
	"github.com/sebelas/sebelas/internal/devtools/burst"
	"github.com/sebelas/sebelas/internal/fraud"
	"github.com/sebelas/sebelas/internal/ledger"
	"github.com/sebelas/sebelas/internal/market"
	"github.com/sebelas/sebelas/internal/money"
	"github.com/sebelas/sebelas/internal/table"
)

// rawStep is one DynamoDB operation of the charge path, issued directly:
// the domain package's own call (so the request is byte for byte what the
// function sends), without HTTP, CloudEvents, the Broker or a function.
type rawStep struct {
	name string
	// do performs the step for one charge and returns outcomeSucceeded,
	// or what stopped the charge (a decline's reason, an error).
	do func(ctx context.Context, req events.ChargeRequested) (outcome string)
}

// rawSteps are the DynamoDB operations the full path performs for one
// charge, in the path's order. THIS IS THE ONE PLACE to keep in step with
// the path: the report compares the operations both phases sent to
// DynamoDB, per charge, and flags a difference.
//
//   - "fraud observe": fraud's feature store, wired as fraud.Build wires it
//     (fraud.NewDynamoStore on the table, the ledger for balances), asked for
//     the balance exactly when the built-in rules would ask: the velocity
//     counter UpdateItem, plus the device item for a wallet in its first
//     hour, plus the balance GetItem for a large payment.
//   - "charge": the ledger's Charge, one TransactWriteItems of two items
//     (the charge's unsettled-index entry rides on its put). Alone, it is
//     phase (0), the bare charge transaction.
//
// The fraud rules' evaluation (CEL, in memory) and the signature are not
// DynamoDB operations and are left out; they are part of what the full
// path adds.
func rawSteps(l *ledger.Store, db fraud.DB, tableName string, limits money.Limits) ([]rawStep, error) {
	rules, err := fraud.DefaultRules()
	if err != nil {
		return nil, err
	}
	store := fraud.NewDynamoStore(db, tableName, l)
	return []rawStep{
		{name: "fraud observe", do: func(ctx context.Context, req events.ChargeRequested) string {
			m, err := market.ByCurrency(money.Currency(req.Currency))
			if err != nil {
				return "error: " + err.Error()
			}
			p := fraud.Payment{
				Kind: fraud.KindCharge, EventKey: "/bench\x00" + req.ChargeID, At: time.Now().UTC(),
				Wallet: req.PayerWallet, Payee: req.MerchantID, Amount: req.Amount, Currency: req.Currency,
				DeviceID: req.DeviceID, DeviceCountry: req.DeviceCountry,
			}
			if _, err = store.Observe(ctx, p, rules.WantsBalance(m.Code, req.Amount)); err != nil {
				return "error: " + err.Error()
			}
			return outcomeSucceeded
		}},
		{name: "charge", do: func(ctx context.Context, req events.ChargeRequested) string {
			out, err := l.Charge(ctx, req, limits)
			switch {
			case err != nil:
				return "error: " + err.Error()
			case out.Status != ledger.ChargeSucceeded:
				return "declined: " + out.Reason
			}
			return outcomeSucceeded
		}},
	}, nil
}

// meteredDB is the ledger's DB with the capacity of every answer added to
// a table.Meter (which counts calls and round trips by itself).
type meteredDB struct {
	*dynamodb.Client
	meter *table.Meter
}

func (m meteredDB) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, opts ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	out, err := m.Client.TransactWriteItems(ctx, in, opts...)
	if err == nil {
		m.meter.AddCapacity(out.ConsumedCapacity)
	}
	return out, err
}

func (m meteredDB) PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	out, err := m.Client.PutItem(ctx, in, opts...)
	if err == nil {
		m.meter.AddConsumed(out.ConsumedCapacity)
	}
	return out, err
}

func (m meteredDB) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	out, err := m.Client.UpdateItem(ctx, in, opts...)
	if err == nil {
		m.meter.AddConsumed(out.ConsumedCapacity)
	}
	return out, err
}

// primeAge is how long before the run warm mode says every payer was first
// seen: past fraud's young-wallet hour, so a wallet is established.
const primeAge = 2 * time.Hour

// prime observes one payment of every payer of p at time at, through
// fraud's store as the function wires it: the wallet's counters item and
// its device exist afterwards, as they do for a festival night's
// established users.
func prime(ctx context.Context, db fraud.DB, tableName string, p burst.Profile, at time.Time) error {
	store := fraud.NewDynamoStore(db, tableName, nil)
	type job struct{ market, payer int }
	jobs := make(chan job)
	errc := make(chan error, fundInFlight)
	var wg sync.WaitGroup
	for range fundInFlight {
		wg.Go(func() {
			for j := range jobs {
				m := p.Markets[j.market]
				mk, err := market.ByCode(m.Code)
				if err == nil {
					_, err = store.Observe(ctx, fraud.Payment{
						Kind: fraud.KindCharge, EventKey: "/bench-prime\x00" + burst.PayerID(m.Code, j.payer), At: at,
						Wallet: burst.PayerID(m.Code, j.payer), Payee: burst.MerchantID(m.Code, 0), Amount: 1,
						Currency: string(mk.Currency), DeviceID: burst.DeviceID(m.Code, j.payer), DeviceCountry: m.Code,
					}, false)
				}
				if err != nil {
					errc <- fmt.Errorf("prime %s payer %d: %w", m.Code, j.payer, err)
					return
				}
			}
		})
	}
	var err error
feed:
	for i := range p.Markets {
		for n := range p.PayersIn(i) {
			select {
			case jobs <- job{i, n}:
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
	if err == nil && len(errc) > 0 {
		err = <-errc
	}
	return err
}
