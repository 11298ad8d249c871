package stack_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/sebelas/sebelas/events"
	"github.com/sebelas/sebelas/internal/devtools/ddbtest"
	"github.com/sebelas/sebelas/internal/devtools/router"
	"github.com/sebelas/sebelas/internal/devtools/stack"
	"github.com/sebelas/sebelas/internal/money"
	"github.com/sebelas/sebelas/internal/session"
	"github.com/sebelas/sebelas/internal/signing"
	"github.com/sebelas/sebelas/internal/topup"
)

// TestTopupThroughTheAppGateway: the wallet app posts a top-up with its
// session to the app gateway the stack started (from infra/knative/appgw.yaml);
// it reaches fraud signed by the app role and succeeds. The same top-up
// posted to the Broker unsigned (anyone on the cluster network) moves
// nothing.
func TestTopupThroughTheAppGateway(t *testing.T) {
	ctx := context.Background()
	_, name := ddbtest.New(t)
	st, err := stack.Start(ctx, stack.Options{
		Endpoint: ddbtest.Endpoint(t), Table: name,
		Router: router.Options{Sleep: func(context.Context, time.Duration) error { return nil }},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	gw := st.Functions["appgw"]
	if gw == "" {
		t.Fatalf("no appgw started: %v", st.Functions)
	}
	raw, _ := events.Sample(events.TypeTopupRequested)
	var req events.TopupRequested
	if err := json.Unmarshal(raw, &req); err != nil {
		t.Fatal(err)
	}
	cur := money.Currency(req.Currency)
	if _, err := st.Ledger.CashIn(ctx, "ci-appgw", req.PayerWallet, money.Amount{Minor: 2_000_00, Currency: cur}, "test"); err != nil {
		t.Fatal(err)
	}
	wait := func() {
		t.Helper()
		wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		if err := st.Router.Wait(wctx); err != nil {
			t.Fatal(err)
		}
	}
	store := topup.NewStore(st.DB, st.Table, st.Ledger, nil)

	// Unsigned, straight onto the Broker: fraud refuses it.
	forged := req
	forged.TopupID = "tp-forged"
	ev, err := events.NewEvent(events.TypeTopupRequested, "/app", forged)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Router.Publish(ctx, ev); err != nil {
		t.Fatal(err)
	}
	wait()
	if _, ok, err := store.Get(ctx, forged.TopupID); ok || err != nil {
		t.Errorf("unsigned top-up stored (%v, %v)", ok, err)
	}

	token, err := session.Issue(st.Keys.Signers[signing.RoleSession], req.PayerWallet, time.Now(), 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(req)
	post, _ := http.NewRequestWithContext(ctx, http.MethodPost, gw+"/v1/topups", bytes.NewReader(body))
	post.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(post)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("appgw answered %d, want 202", resp.StatusCode)
	}
	wait()
	r, ok, err := store.Get(ctx, req.TopupID)
	if err != nil || !ok || r.Status != topup.StatusSucceeded {
		t.Errorf("top-up through the gateway: %+v %v %v, want succeeded", r, ok, err)
	}
}
