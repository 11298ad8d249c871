package topup

import (
	"strings"
	"testing"

	"github.com/sebelas/sebelas/internal/redact"
)

// TestHeldMissingMasksTheWallet: the held_amount_missing fault is logged
// (it pages), so it names the payer only as internal/redact masks it.
func TestHeldMissingMasksTheWallet(t *testing.T) {
	rec := Record{TopupID: "tp-1", Payer: "w-8c1f2e9a-payer-77", Amount: 49_900, Currency: "BDT"}
	err := heldMissing(rec, &moneyRefused{})
	if err == nil || strings.Contains(err.Error(), rec.Payer) || !strings.Contains(err.Error(), redact.Wallet(rec.Payer)) {
		t.Errorf("held_amount_missing error %q: want the wallet masked as %q, never whole", err, redact.Wallet(rec.Payer))
	}
}
