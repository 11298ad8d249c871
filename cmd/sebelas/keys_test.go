package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/sebelas/sebelas/internal/fault"
	"github.com/sebelas/sebelas/internal/signing"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// binary builds the CLI once per test run: CLIs are tested as shipped.
func binary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "sebelas-cli-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "sebelas")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = err
			t.Logf("%s", out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// TestReviewIsSignedWithTheReviewersKey runs `sebelas keys new` and
// `sebelas fraud review` as built. A decision signed with the reviewers'
// key verifies as a review; the same command given fraud's private key (a
// compromised fraud pod trying to approve its own holds) produces an event
// every verifier refuses.
func TestReviewIsSignedWithTheReviewersKey(t *testing.T) {
	bin := binary(t)
	out, err := exec.Command(bin, "keys", "new", "--role", "review", "--id", "r-1").Output()
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(k, "#") {
			env[k] = v
		}
	}
	private, public := env[signing.EnvSigningKey(signing.RoleReview)], env[signing.EnvVerifyKeys(signing.RoleReview)]
	if !strings.HasPrefix(private, "r-1:") || !strings.HasPrefix(public, "r-1:") {
		t.Fatalf("keys new printed:\n%s", out)
	}
	verifier, err := signing.NewVerifier(map[signing.Role]string{signing.RoleReview: public})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []cloudevents.Event
	broker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		ev := cloudevents.NewEvent()
		if err := ev.UnmarshalJSON(body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		got = append(got, ev)
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	defer broker.Close()
	fraudKey := signing.NewDevKeys().Env[signing.EnvSigningKey(signing.RoleFraud)]
	for _, key := range []string{private, fraudKey} {
		cmd := exec.CommandContext(context.Background(), bin, "fraud", "review", "--charge", "ch-held-1", "--approve", "--reviewer", "ana", "--broker", broker.URL)
		cmd.Env = append(os.Environ(), signing.EnvSigningKey(signing.RoleReview)+"="+key)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("fraud review: %v\n%s", err, out)
		}
	}
	if len(got) != 2 {
		t.Fatalf("broker got %d events, want 2", len(got))
	}
	if err := verifier.Verify(got[0], time.Now()); err != nil {
		t.Errorf("decision signed with the reviewers' key: %v", err)
	}
	if err := verifier.Verify(got[1], time.Now()); fault.ReasonOf(err) != signing.ReasonUnknownKey && fault.ReasonOf(err) != signing.ReasonInvalid {
		t.Errorf("decision signed with fraud's key: %v, want refused", err)
	}
}
