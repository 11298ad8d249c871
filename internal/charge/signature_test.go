package charge_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/google/go-cmp/cmp"

	"github.com/sebelas/sebelas/events"
	"github.com/sebelas/sebelas/internal/charge"
	"github.com/sebelas/sebelas/internal/fault"
	"github.com/sebelas/sebelas/internal/ledger"
	"github.com/sebelas/sebelas/internal/money"
	"github.com/sebelas/sebelas/internal/signing"
)

// testKeys are the keys of every role in these tests: fraud and the review
// tool sign with theirs; the handler under test holds testVerifier, the
// public keys of fraud and the reviewers only.
var (
	testKeys     = signing.NewDevKeys()
	testVerifier = mustVerifier(testKeys)
)

func mustVerifier(k signing.DevKeys) *signing.Verifier {
	v, err := signing.NewVerifier(map[signing.Role]string{
		signing.RoleFraud:  k.Signers[signing.RoleFraud].PublicKey(),
		signing.RoleReview: k.Signers[signing.RoleReview].PublicKey(),
	})
	if err != nil {
		panic(err)
	}
	return v
}

// signHeader signs a binary-mode request as fraud does: over the type, id,
// source and data the request carries.
func signHeader(t testing.TB, req *http.Request, ceType, id, body string) {
	t.Helper()
	signHeaderWith(t, testKeys, req, ceType, id, body, time.Now())
}

func signHeaderWith(t testing.TB, keys signing.DevKeys, req *http.Request, ceType, id, body string, at time.Time) {
	t.Helper()
	ev := cloudevents.NewEvent()
	ev.SetType(ceType)
	ev.SetID(id)
	ev.SetSource(req.Header.Get("Ce-Source"))
	ev.DataEncoded = []byte(body)
	if _, signed := signing.Senders[ceType]; !signed {
		return // nobody signs this type; charge refuses it unsigned
	}
	if err := keys.Sign(&ev, at); err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Ce-"+signing.Extension, ev.Extensions()[signing.Extension].(string))
}

// send posts a binary-mode event as given, signature header included or
// not, and returns the status and the reply's type ("" for none).
func send(t testing.TB, url string, ev cloudevents.Event) (int, *cloudevents.Event) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(string(ev.Data())))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Ce-Specversion", "1.0")
	req.Header.Set("Ce-Type", ev.Type())
	req.Header.Set("Ce-Source", ev.Source())
	req.Header.Set("Ce-Id", ev.ID())
	req.Header.Set("Content-Type", "application/json")
	if sig, ok := ev.Extensions()[signing.Extension].(string); ok {
		req.Header.Set("Ce-"+signing.Extension, sig)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Ce-Type") == "" {
		return resp.StatusCode, nil
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := cloudevents.NewEvent()
	out.SetType(resp.Header.Get("Ce-Type"))
	out.SetID(resp.Header.Get("Ce-Id"))
	out.SetSource(resp.Header.Get("Ce-Source"))
	out.SetDataContentType(resp.Header.Get("Content-Type"))
	out.DataEncoded = body
	return resp.StatusCode, &out
}

func screened(t testing.TB, sc events.ChargeScreened, id string) cloudevents.Event {
	t.Helper()
	ev, err := events.NewEvent(events.TypeChargeScreened, "/sebelas/fraud", sc)
	if err != nil {
		t.Fatal(err)
	}
	ev.SetID(id)
	return ev
}

func signed(t testing.TB, ev cloudevents.Event) cloudevents.Event {
	t.Helper()
	if err := testKeys.Sign(&ev, time.Now()); err != nil {
		t.Fatal(err)
	}
	return ev
}

// TestForgedScreenedEventMovesNoMoney: only an event signed with the key
// ring is acted on. Every forgery gets 400 (to the dead-letter sink, never
// retried), no reply, no stored charge, and the payer's balance is intact.
func TestForgedScreenedEventMovesNoMoney(t *testing.T) {
	f := newFixture(t)
	sc := sample(t)
	cur := money.Currency(sc.Charge.Currency)
	if _, err := f.ledger.CashIn(context.Background(), "ci-1", sc.Charge.PayerWallet, money.Amount{Minor: 10_000_000, Currency: cur}, "test"); err != nil {
		t.Fatal(err)
	}
	attacker := signing.NewDevKeys()
	denied := sc
	denied.Screening = events.Screening{Score: 950, Decision: events.DecisionDeny, Reasons: []string{"balance_drain"}}
	tests := []struct {
		name   string
		ev     func(id string) cloudevents.Event
		reason string
	}{
		{"unsigned", func(id string) cloudevents.Event { return screened(t, sc, id) }, signing.ReasonMissing},
		{"signed with another key", func(id string) cloudevents.Event {
			ev := screened(t, sc, id)
			if err := attacker.Sign(&ev, time.Now()); err != nil {
				t.Fatal(err)
			}
			return ev
		}, signing.ReasonInvalid},
		{"signed by the ingress's key (a compromised ingress)", func(id string) cloudevents.Event {
			ev := screened(t, sc, id)
			if err := testKeys.Impostor(signing.RoleIngress, signing.RoleFraud).Sign(&ev, time.Now()); err != nil {
				t.Fatal(err)
			}
			return ev
		}, signing.ReasonInvalid},
		{"signed by a reviewer's key", func(id string) cloudevents.Event {
			ev := screened(t, sc, id)
			if err := testKeys.Impostor(signing.RoleReview, signing.RoleFraud).Sign(&ev, time.Now()); err != nil {
				t.Fatal(err)
			}
			return ev
		}, signing.ReasonInvalid},
		{"review approval signed by fraud's key (a compromised fraud)", func(id string) cloudevents.Event {
			ev, err := events.NewEvent(events.TypeChargeReviewed, "/sebelas/review",
				events.ChargeReviewed{ChargeID: sc.Charge.ChargeID, Decision: events.ReviewApprove, Reviewer: "mallory", DecidedAt: time.Now().UTC()})
			if err != nil {
				t.Fatal(err)
			}
			ev.SetID(id)
			if err := testKeys.Impostor(signing.RoleFraud, signing.RoleReview).Sign(&ev, time.Now()); err != nil {
				t.Fatal(err)
			}
			return ev
		}, signing.ReasonInvalid},
		{"fraud's deny turned into allow", func(id string) cloudevents.Event {
			ev := signed(t, screened(t, denied, id))
			ev.DataEncoded = []byte(strings.Replace(string(ev.Data()), `"deny"`, `"allow"`, 1))
			return ev
		}, signing.ReasonInvalid},
		{"amount raised", func(id string) cloudevents.Event {
			ev := signed(t, screened(t, sc, id))
			ev.DataEncoded = []byte(strings.Replace(string(ev.Data()), fmt.Sprintf(`"amount":%d`, sc.Charge.Amount), `"amount":9000000`, 1))
			return ev
		}, signing.ReasonInvalid},
		{"payee swapped", func(id string) cloudevents.Event {
			ev := signed(t, screened(t, sc, id))
			ev.DataEncoded = []byte(strings.Replace(string(ev.Data()), sc.Charge.MerchantID, "m-mule-01", 1))
			return ev
		}, signing.ReasonInvalid},
		{"replayed a day later", func(id string) cloudevents.Event {
			ev := screened(t, sc, id)
			if err := testKeys.Sign(&ev, time.Now().Add(-24*time.Hour)); err != nil {
				t.Fatal(err)
			}
			return ev
		}, signing.ReasonStale},
		{"a review approved by a forger", func(id string) cloudevents.Event {
			ev, err := events.NewEvent(events.TypeChargeReviewed, "/sebelas/review",
				events.ChargeReviewed{ChargeID: sc.Charge.ChargeID, Decision: events.ReviewApprove, Reviewer: "mallory", DecidedAt: time.Now().UTC()})
			if err != nil {
				t.Fatal(err)
			}
			ev.SetID(id)
			return ev
		}, signing.ReasonMissing},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, reply := send(t, f.srv.URL, tt.ev(fmt.Sprintf("forged-%d", i)))
			if status != http.StatusBadRequest || reply != nil {
				t.Errorf("status %d reply %v, want 400 and no reply", status, reply)
			}
			if _, found, err := f.ledger.GetCharge(context.Background(), sc.Charge.ChargeID); err != nil || found {
				t.Errorf("a charge was stored (found=%v, err=%v)", found, err)
			}
		})
	}
	// The handler's own error names the reason (what the dead letter records).
	h := &charge.Handler{Ledger: f.ledger, Limits: money.DefaultLimits(), Verifier: testVerifier}
	for _, tt := range tests {
		_, err := h.Handle(context.Background(), tt.ev("direct"))
		if !fault.IsPermanent(err) || fault.ReasonOf(err) != tt.reason {
			t.Errorf("%s: err %v, want permanent %s", tt.name, err, tt.reason)
		}
	}
	if got := balanceOf(t, f.ledger, sc.Charge.PayerWallet, cur); got != 10_000_000 {
		t.Errorf("balance = %d, want untouched", got)
	}
	// The genuine event still goes through.
	if status, reply := send(t, f.srv.URL, signed(t, screened(t, sc, "genuine"))); status != http.StatusOK || reply == nil || reply.Type() != events.TypeChargeSucceeded {
		t.Fatalf("genuine event: status %d reply %v", status, reply)
	}
	if got := balanceOf(t, f.ledger, sc.Charge.PayerWallet, cur); got != 10_000_000-sc.Charge.Amount {
		t.Errorf("balance = %d after the genuine charge", got)
	}
}

func reviewed(t testing.TB, chargeID, decision, id string) cloudevents.Event {
	t.Helper()
	ev, err := events.NewEvent(events.TypeChargeReviewed, "/sebelas/review",
		events.ChargeReviewed{ChargeID: chargeID, Decision: decision, Reviewer: "risk-ph-07", Note: "called the customer", DecidedAt: time.Now().UTC()})
	if err != nil {
		t.Fatal(err)
	}
	ev.SetID(id)
	return signed(t, ev)
}

func result(t testing.TB, ev *cloudevents.Event) events.ChargeResult {
	t.Helper()
	var r events.ChargeResult
	if err := events.Decode(*ev, &r); err != nil {
		t.Fatalf("%s does not validate: %v", ev.Type(), err)
	}
	return r
}

// TestReviewHoldsThenDecides walks the manual review: held without moving
// money, then approved (charged once, however often the decision arrives)
// or rejected (declined), and the first decision wins.
func TestReviewHoldsThenDecides(t *testing.T) {
	f := newFixture(t)
	sc := sample(t)
	cur := money.Currency(sc.Charge.Currency)
	ctx := context.Background()
	const funds = 1_000_000
	if _, err := f.ledger.CashIn(ctx, "ci-1", sc.Charge.PayerWallet, money.Amount{Minor: funds, Currency: cur}, "test"); err != nil {
		t.Fatal(err)
	}
	review := func(id string) events.ChargeScreened {
		s := sc
		s.Charge.ChargeID = id
		s.Screening = events.Screening{Score: 450, Decision: events.DecisionReview, Reasons: []string{"new_device_new_payee"}}
		return s
	}
	type outcome struct {
		status int
		typ    string
		reason string
	}
	do := func(ev cloudevents.Event) (outcome, string) {
		status, reply := send(t, f.srv.URL, ev)
		if reply == nil {
			return outcome{status: status}, ""
		}
		return outcome{status, reply.Type(), result(t, reply).Reason}, reply.ID()
	}
	held := outcome{http.StatusOK, events.TypeChargeHeld, events.ReasonFraudReview}
	// same: the index of an earlier step whose reply this one replays, id
	// included (-1: none).
	steps := []struct {
		name string
		ev   cloudevents.Event
		want outcome
		same int
	}{
		{"review holds ch-a", signed(t, screened(t, review("ch-a"), "s-a")), held, -1},
		{"redelivered review holds again", signed(t, screened(t, review("ch-a"), "s-a2")), held, 0},
		{"a later allow does not bypass the review", signed(t, screened(t, func() events.ChargeScreened {
			s := review("ch-a")
			s.Screening.Decision = events.DecisionAllow
			return s
		}(), "s-a3")), held, 0},
		{"approve charges", reviewed(t, "ch-a", events.ReviewApprove, "r-a1"), outcome{http.StatusOK, events.TypeChargeSucceeded, ""}, -1},
		{"approve redelivered replays", reviewed(t, "ch-a", events.ReviewApprove, "r-a2"), outcome{http.StatusOK, events.TypeChargeSucceeded, ""}, 3},
		{"a late reject replays the approval", reviewed(t, "ch-a", events.ReviewReject, "r-a3"), outcome{http.StatusOK, events.TypeChargeSucceeded, ""}, 3},
		{"review holds ch-b", signed(t, screened(t, review("ch-b"), "s-b")), held, -1},
		{"reject declines", reviewed(t, "ch-b", events.ReviewReject, "r-b1"), outcome{http.StatusOK, events.TypeChargeDeclined, events.ReasonFraud}, -1},
		{"a late approve replays the rejection", reviewed(t, "ch-b", events.ReviewApprove, "r-b2"), outcome{http.StatusOK, events.TypeChargeDeclined, events.ReasonFraud}, 7},
		{"review of an unknown charge", reviewed(t, "ch-none", events.ReviewApprove, "r-n"), outcome{status: http.StatusBadRequest}, -1},
	}
	ids := make([]string, len(steps))
	for i, s := range steps {
		got, id := do(s.ev)
		ids[i] = id
		if diff := cmp.Diff(s.want, got, cmp.AllowUnexported(outcome{})); diff != "" {
			t.Errorf("%s (-want +got):\n%s", s.name, diff)
		}
		if s.same >= 0 && id != ids[s.same] {
			t.Errorf("%s: reply id %s, want the replayed %s", s.name, id, ids[s.same])
		}
	}
	if got := balanceOf(t, f.ledger, sc.Charge.PayerWallet, cur); got != funds-sc.Charge.Amount {
		t.Errorf("balance = %d, want %d (ch-a charged once, ch-b never)", got, funds-sc.Charge.Amount)
	}
	for id, want := range map[string]string{"ch-a": ledger.ChargeSucceeded, "ch-b": ledger.ChargeDeclined} {
		c, found, err := f.ledger.GetCharge(ctx, id)
		if err != nil || !found || c.Status != want {
			t.Errorf("%s: %+v found=%v err=%v, want status %s", id, c, found, err, want)
		}
		if want == ledger.ChargeSucceeded && c.LocalDate == "" {
			t.Errorf("%s: approved charge has no local date for settlement", id)
		}
	}
}

func TestReviewApprovalChecksFundsAgain(t *testing.T) {
	f := newFixture(t)
	sc := sample(t)
	cur := money.Currency(sc.Charge.Currency)
	ctx := context.Background()
	if _, err := f.ledger.CashIn(ctx, "ci-1", sc.Charge.PayerWallet, money.Amount{Minor: sc.Charge.Amount, Currency: cur}, "test"); err != nil {
		t.Fatal(err)
	}
	s := sc
	s.Screening.Decision = events.DecisionReview
	if status, reply := send(t, f.srv.URL, signed(t, screened(t, s, "s-1"))); status != http.StatusOK || reply.Type() != events.TypeChargeHeld {
		t.Fatalf("hold: %d %v", status, reply)
	}
	// Meanwhile the payer spends the money elsewhere.
	other := sc
	other.Charge.ChargeID = "ch-other"
	if status, reply := send(t, f.srv.URL, signed(t, screened(t, other, "s-2"))); status != http.StatusOK || reply.Type() != events.TypeChargeSucceeded {
		t.Fatalf("other charge: %d %v", status, reply)
	}
	status, reply := send(t, f.srv.URL, reviewed(t, sc.Charge.ChargeID, events.ReviewApprove, "r-1"))
	if status != http.StatusOK || reply == nil || reply.Type() != events.TypeChargeDeclined || result(t, reply).Reason != events.ReasonInsufficientFunds {
		t.Fatalf("approve without funds: %d %v", status, reply)
	}
	if got := balanceOf(t, f.ledger, sc.Charge.PayerWallet, cur); got != 0 {
		t.Errorf("balance = %d, want 0", got)
	}
}

// TestConcurrentReviewDecisions: approve and reject racing for one held
// charge end in exactly one outcome, and the money moves at most once.
func TestConcurrentReviewDecisions(t *testing.T) {
	f := newFixture(t)
	sc := sample(t)
	cur := money.Currency(sc.Charge.Currency)
	ctx := context.Background()
	const funds = 10_000_000
	if _, err := f.ledger.CashIn(ctx, "ci-1", sc.Charge.PayerWallet, money.Amount{Minor: funds, Currency: cur}, "test"); err != nil {
		t.Fatal(err)
	}
	s := sc
	s.Screening.Decision = events.DecisionReview
	if status, _ := send(t, f.srv.URL, signed(t, screened(t, s, "s-1"))); status != http.StatusOK {
		t.Fatal(status)
	}
	const n = 8
	types := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			decision := events.ReviewApprove
			if i%2 == 1 {
				decision = events.ReviewReject
			}
			status, reply := send(t, f.srv.URL, reviewed(t, sc.Charge.ChargeID, decision, fmt.Sprintf("r-%d", i)))
			if status == http.StatusOK && reply != nil {
				types[i] = reply.Type()
			} else {
				types[i] = fmt.Sprint(status) // 503 under contention: the Broker retries
			}
		}()
	}
	wg.Wait()
	c, _, err := f.ledger.GetCharge(ctx, sc.Charge.ChargeID)
	if err != nil {
		t.Fatal(err)
	}
	want := events.TypeChargeDeclined
	wantBalance := int64(funds)
	if c.Status == ledger.ChargeSucceeded {
		want, wantBalance = events.TypeChargeSucceeded, funds-sc.Charge.Amount
	}
	for i, typ := range types {
		if typ != want && typ != "503" {
			t.Errorf("decision %d got %s, want %s (the stored outcome %s)", i, typ, want, c.Status)
		}
	}
	if got := balanceOf(t, f.ledger, sc.Charge.PayerWallet, cur); got != wantBalance {
		t.Errorf("balance = %d, want %d", got, wantBalance)
	}
}
