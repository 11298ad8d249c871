package fraud

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sebelas/sebelas/events"
)

// TestResendsCountOnce: 25 resends of one charge with fresh CloudEvent ids
// count once in velocity (against DynamoDB Local), every verdict is the same,
// and the wallet's next genuine charge sees one earlier payment, not 25.
func TestResendsCountOnce(t *testing.T) {
	ctx := context.Background()
	store, _, _ := newDynamoStore(t)
	h := newHandler(t, testKeys(t))
	h.Scorer.Store = store
	req := events.ChargeRequested{ChargeID: "ch-resent", Marketplace: "tindahan", MerchantID: "m-1", PayerWallet: "w-1",
		Amount: 249900, Currency: "PHP", DeviceID: "dev-a", DeviceCountry: "PH", RequestedAt: t0}
	var first events.ChargeScreened
	for i := range 25 {
		reply, err := h.Handle(ctx, incoming(t, events.TypeChargeRequested, req, fmt.Sprintf("ev-fresh-%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		var got events.ChargeScreened
		if err := events.Decode(*reply, &got); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = got
			continue
		}
		if diff := cmp.Diff(first.Screening, got.Screening); diff != "" {
			t.Fatalf("resend %d: verdict changed (-first +resend):\n%s", i, diff)
		}
	}
	next := Payment{Kind: KindCharge, EventKey: PaymentKey(KindCharge, "ch-next"), Wallet: "w-1", Payee: "m-1",
		DeviceID: "dev-a", DeviceCountry: "PH", Amount: 1000, Currency: "PHP", At: t0}
	_, f, err := h.Scorer.Score(ctx, next)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]int64{2, 2}, []int64{f.Count1h, f.Count1d}); diff != "" {
		t.Errorf("[count_1h, count_1d] after 25 resends and one new charge (-want +got):\n%s", diff)
	}
}
