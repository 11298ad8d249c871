package charge_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sebelas/sebelas/events"
	"github.com/sebelas/sebelas/internal/ledger"
	"github.com/sebelas/sebelas/internal/money"
)

// TestConflictNeverReadsAsAState: a resend of a succeeded charge that
// changes only its description is answered with charge.conflicted (its own
// type and id), not charge.declined; the charge stays succeeded, no money
// moves, and the original request still replays charge.succeeded.
func TestConflictNeverReadsAsAState(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	sc := sample(t)
	cur := money.Currency(sc.Charge.Currency)
	if _, err := f.ledger.CashIn(ctx, "ci-1", sc.Charge.PayerWallet, money.Amount{Minor: 1_000_000, Currency: cur}, "test"); err != nil {
		t.Fatal(err)
	}
	_, first := post(t, f.srv.URL, sc, "ev-1")
	changed := sc
	changed.Charge.Description = "another description"
	status, conflict := post(t, f.srv.URL, changed, "ev-2")
	_, replay := post(t, f.srv.URL, sc, "ev-3")
	c, _, err := f.ledger.GetCharge(ctx, sc.Charge.ChargeID)
	if err != nil {
		t.Fatal(err)
	}
	got := []any{first.Type(), status, conflict.Type(), conflict.ID() != first.ID(), replay.Type(), replay.ID() == first.ID(),
		c.Status, balanceOf(t, f.ledger, sc.Charge.PayerWallet, cur)}
	want := []any{events.TypeChargeSucceeded, http.StatusOK, events.TypeChargeConflicted, true, events.TypeChargeSucceeded, true,
		ledger.ChargeSucceeded, 1_000_000 - sc.Charge.Amount}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("[first, conflict status, conflict type, own id, replay, same id, stored status, balance] (-want +got):\n%s", diff)
	}
}
