package appgw_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/google/go-cmp/cmp"

	"github.com/sebelas/sebelas/events"
	"github.com/sebelas/sebelas/internal/appgw"
	"github.com/sebelas/sebelas/internal/session"
	"github.com/sebelas/sebelas/internal/signing"
)

var t0 = time.Date(2026, 11, 11, 8, 0, 0, 0, time.UTC)

type broker struct {
	mu  sync.Mutex
	evs []cloudevents.Event
}

func (b *broker) Publish(_ context.Context, ev cloudevents.Event) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.evs = append(b.evs, ev)
	return nil
}

func topupBody(t *testing.T, id, wallet string) []byte {
	t.Helper()
	b, err := json.Marshal(events.TopupRequested{TopupID: id, PayerWallet: wallet, MSISDN: "+8801712345678",
		ProductID: "gp-50", Currency: "BDT", RequestedAt: t0})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestTopupsOnlyWithTheWalletsSession: the gateway publishes a top-up only
// with a valid session for the wallet it debits, and what it publishes is
// what fraud accepts (signed by the app role).
func TestTopupsOnlyWithTheWalletsSession(t *testing.T) {
	keys := signing.NewDevKeys()
	b := &broker{}
	h := appgw.New(appgw.Handler{Sessions: keys.Verifier(), Signer: keys.Signers[signing.RoleApp], Broker: b,
		Now: func() time.Time { return t0 }})
	mint := func(s *signing.Signer, wallet string, at time.Time) string {
		tok, err := session.Issue(s, wallet, at, 15*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return "Bearer " + tok
	}
	ana := mint(keys.Signers[signing.RoleSession], "w-ana", t0)
	// A session "signed" with the app gateway's own key: a compromised
	// gateway cannot mint sessions. (Issue refuses; forge via Impostor.)
	forged := mint(keys.Impostor(signing.RoleApp, signing.RoleSession), "w-ana", t0)
	tests := []struct {
		name, auth, wallet string
		want               int
		reason             string
	}{
		{"no session", "", "w-ana", 401, "unauthenticated"},
		{"not a bearer token", "Basic YW5hOnB3", "w-ana", 401, "unauthenticated"},
		{"expired session", mint(keys.Signers[signing.RoleSession], "w-ana", t0.Add(-time.Hour)), "w-ana", 401, "unauthenticated"},
		{"session signed with the gateway's key", forged, "w-ana", 401, "unauthenticated"},
		{"another wallet's session (the victim's wallet named)", ana, "w-victim", 403, "wallet_mismatch"},
		{"the wallet's own session", ana, "w-ana", 202, ""},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, "/v1/topups", bytes.NewReader(topupBody(t, "tp-"+string(rune('a'+i)), tt.wallet)))
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			var out map[string]string
			_ = json.Unmarshal(rec.Body.Bytes(), &out)
			if diff := cmp.Diff([]any{tt.want, tt.reason}, []any{rec.Code, out["error"]}); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}
		})
	}
	if len(b.evs) != 1 {
		t.Fatalf("published %d, want only the wallet's own top-up", len(b.evs))
	}
	ev := b.evs[0]
	onlyApp, err := signing.NewVerifier(map[signing.Role]string{signing.RoleApp: keys.Signers[signing.RoleApp].PublicKey()})
	if err != nil {
		t.Fatal(err)
	}
	if err := onlyApp.Verify(ev, t0); err != nil || ev.Type() != events.TypeTopupRequested || ev.Source() != appgw.Source {
		t.Errorf("published %s from %s: %v; want a topup.requested fraud accepts", ev.Type(), ev.Source(), err)
	}
}

func TestNewRefusesAnUnsignedGateway(t *testing.T) {
	keys := signing.NewDevKeys()
	defer func() {
		if recover() == nil {
			t.Error("New with a fraud-role signer did not panic")
		}
	}()
	appgw.New(appgw.Handler{Sessions: keys.Verifier(), Signer: keys.Signers[signing.RoleFraud], Broker: &broker{}})
}
