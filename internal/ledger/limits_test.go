package ledger_test

import (
	"context"
	"strings"
	"testing"

	"github.com/sebelas/sebelas/internal/fault"
	"github.com/sebelas/sebelas/internal/money"
)

// TestIDLimitEdge: ids from operators (cash-in, wallet) are 1..64 bytes
// without '#': 64 is stored, 65 refused before any write.
func TestIDLimitEdge(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	amt := money.Amount{Minor: 1_00, Currency: money.PHP}
	id64, id65 := strings.Repeat("a", 64), strings.Repeat("b", 65)
	if _, err := s.CashIn(ctx, id64, id64, amt, "test"); err != nil {
		t.Errorf("64-byte ids: %v, want stored", err)
	}
	for _, tt := range []struct{ cashIn, wallet string }{{id65, "w-1"}, {"ci-1", id65}, {"", "w-1"}, {"ci#1", "w-1"}} {
		if _, err := s.CashIn(ctx, tt.cashIn, tt.wallet, amt, "test"); !fault.IsPermanent(err) {
			t.Errorf("CashIn(%d-byte id %q..., %d-byte wallet): err = %v, want a permanent refusal", len(tt.cashIn), prefix(tt.cashIn), len(tt.wallet), err)
		}
	}
	if _, ok, _ := s.GetBalance(ctx, id65, money.PHP); ok {
		t.Error("a refused cash-in created a balance")
	}
}

func prefix(s string) string {
	if len(s) > 8 {
		return s[:8]
	}
	return s
}
