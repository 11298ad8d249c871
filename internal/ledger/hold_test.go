package ledger_test

import (
	"context"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/go-cmp/cmp"

	"github.com/sebelas/sebelas/events"
	"github.com/sebelas/sebelas/internal/devtools/ddbtest"
	"github.com/sebelas/sebelas/internal/ledger"
	"github.com/sebelas/sebelas/internal/money"
	"github.com/sebelas/sebelas/internal/table"
)

type holdFixture struct {
	db    *dynamodb.Client
	table string
	s     *ledger.Store
}

func newHoldFixture(t *testing.T) holdFixture {
	t.Helper()
	db, name := ddbtest.New(t)
	return holdFixture{db: db, table: name, s: ledger.New(db, name, nil)}
}

// apply runs items as one transaction and returns the cancellation reasons
// of a failed one (nil on success).
func (f holdFixture) apply(t *testing.T, items ...types.TransactWriteItem) []types.CancellationReason {
	t.Helper()
	_, err := f.db.TransactWriteItems(context.Background(), &dynamodb.TransactWriteItemsInput{TransactItems: items})
	if err == nil {
		return nil
	}
	reasons, ok := table.CancellationReasons(err)
	if !ok {
		t.Fatalf("transaction: %v", err)
	}
	return reasons
}

type bal struct{ Balance, Held int64 }

func (f holdFixture) bal(t *testing.T, wallet string, cur money.Currency) bal {
	t.Helper()
	b, ok, err := f.s.GetBalance(context.Background(), wallet, cur)
	if err != nil || !ok {
		t.Fatalf("GetBalance(%s): %v, %v", wallet, ok, err)
	}
	return bal{b.Balance, b.Held}
}

func TestHoldCaptureRelease(t *testing.T) {
	f := newHoldFixture(t)
	fund(t, f.s, "w-hold", 100_000, money.IDR)
	steps := []struct {
		name string
		item types.TransactWriteItem
		want bal
	}{
		{"hold 30k", f.s.HoldItem("w-hold", "IDR", 30_000), bal{70_000, 30_000}},
		{"hold 50k", f.s.HoldItem("w-hold", "IDR", 50_000), bal{20_000, 80_000}},
		{"capture 30k", f.s.CaptureItem("w-hold", "IDR", 30_000), bal{20_000, 50_000}},
		{"release 50k", f.s.ReleaseItem("w-hold", "IDR", 50_000), bal{70_000, 0}},
	}
	for _, st := range steps {
		if reasons := f.apply(t, st.item); reasons != nil {
			t.Fatalf("%s: cancelled %v", st.name, reasons)
		}
		if diff := cmp.Diff(st.want, f.bal(t, "w-hold", money.IDR)); diff != "" {
			t.Errorf("after %s (-want +got):\n%s", st.name, diff)
		}
	}
}

func TestHoldRefusedAndExplained(t *testing.T) {
	f := newHoldFixture(t)
	ctx := context.Background()
	fund(t, f.s, "w-poor", 10_00, money.PHP)
	fund(t, f.s, "w-cold", 10_00, money.PHP)
	if err := f.s.SetStatus(ctx, "w-cold", money.PHP, ledger.WalletFrozen); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, wallet, currency string
		amount                 int64
		want                   string
	}{
		{"more than the balance", "w-poor", "PHP", 10_01, events.ReasonInsufficientFunds},
		{"frozen", "w-cold", "PHP", 1, events.ReasonWalletFrozen},
		{"no such wallet", "w-ghost", "PHP", 1, events.ReasonWalletNotFound},
		{"no balance in that currency", "w-poor", "MYR", 1, events.ReasonCurrencyMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reasons := f.apply(t, f.s.HoldItem(tt.wallet, tt.currency, tt.amount))
			if !table.ConditionFailedAt(reasons, 0) {
				t.Fatalf("reasons = %v, want a failed condition", reasons)
			}
			got, err := f.s.WhyNoHold(ctx, tt.wallet, tt.currency, reasons[0].Item)
			if err != nil || got != tt.want {
				t.Errorf("WhyNoHold = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	for _, w := range []string{"w-poor", "w-cold"} {
		if got := f.bal(t, w, money.PHP); got != (bal{10_00, 0}) {
			t.Errorf("%s = %+v after refused holds, want untouched", w, got)
		}
	}
}

func TestCaptureAndReleaseNeverTakeMoreThanHeld(t *testing.T) {
	f := newHoldFixture(t)
	ctx := context.Background()
	fund(t, f.s, "w-h", 1_000, money.THB)
	if r := f.apply(t, f.s.HoldItem("w-h", "THB", 400)); r != nil {
		t.Fatal(r)
	}
	for name, item := range map[string]types.TransactWriteItem{
		"capture 401":                  f.s.CaptureItem("w-h", "THB", 401),
		"release 401":                  f.s.ReleaseItem("w-h", "THB", 401),
		"capture on a missing balance": f.s.CaptureItem("w-ghost", "THB", 1),
	} {
		if r := f.apply(t, item); !table.ConditionFailedAt(r, 0) {
			t.Errorf("%s: reasons %v, want a failed condition", name, r)
		}
	}
	// A wallet frozen while its hold is open still settles it both ways.
	if err := f.s.SetStatus(ctx, "w-h", money.THB, ledger.WalletFrozen); err != nil {
		t.Fatal(err)
	}
	if r := f.apply(t, f.s.CaptureItem("w-h", "THB", 100)); r != nil {
		t.Errorf("capture on a frozen wallet: %v", r)
	}
	if r := f.apply(t, f.s.ReleaseItem("w-h", "THB", 300)); r != nil {
		t.Errorf("release on a frozen wallet: %v", r)
	}
	if got := f.bal(t, "w-h", money.THB); got != (bal{900, 0}) {
		t.Errorf("balance = %+v, want {900 0}", got)
	}
}

// TestCapturePairedWithRecordHappensOnce shows the pattern the owners of
// holds follow: the capture goes with a conditional write of the
// operation's own record, so many concurrent captures of one operation
// take the money once.
func TestCapturePairedWithRecordHappensOnce(t *testing.T) {
	f := newHoldFixture(t)
	fund(t, f.s, "w-once", 10_000, money.MYR)
	for range 2 {
		if r := f.apply(t, f.s.HoldItem("w-once", "MYR", 1_000)); r != nil {
			t.Fatal(r)
		}
	}
	cond, err := expression.NewBuilder().WithCondition(expression.AttributeNotExists(expression.Name("pk"))).Build()
	if err != nil {
		t.Fatal(err)
	}
	record := types.TransactWriteItem{Put: &types.Put{
		TableName: aws.String(f.table),
		Item: map[string]types.AttributeValue{
			"pk": &types.AttributeValueMemberS{Value: "TEST#op-1"}, "sk": &types.AttributeValueMemberS{Value: "captured"},
		},
		ConditionExpression: cond.Condition(), ExpressionAttributeNames: cond.Names(),
	}}
	const attempts = 20
	var wg sync.WaitGroup
	applied := make(chan bool, attempts)
	for range attempts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := f.db.TransactWriteItems(context.Background(), &dynamodb.TransactWriteItemsInput{
				TransactItems: []types.TransactWriteItem{record, f.s.CaptureItem("w-once", "MYR", 1_000)},
			})
			applied <- err == nil
		}()
	}
	wg.Wait()
	close(applied)
	n := 0
	for ok := range applied {
		if ok {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d captures applied, want 1", n)
	}
	if got := f.bal(t, "w-once", money.MYR); got != (bal{8_000, 1_000}) {
		t.Errorf("balance = %+v, want {8000 1000}: one capture of 1000, the other hold open", got)
	}
}

func TestHoldAmountOutOfRangePanics(t *testing.T) {
	s := ledger.New(&dynamodb.Client{}, "t", nil)
	for _, amt := range []int64{0, -1, money.AmountMinorMax + 1} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("HoldItem(%d) did not panic", amt)
				}
			}()
			s.HoldItem("w", "IDR", amt)
		}()
	}
}
