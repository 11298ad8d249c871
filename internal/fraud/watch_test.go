package fraud

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sebelas/sebelas/events"
)

// rulesDoc is a one-rule set: payments of at least 1000 score `score`.
func rulesDoc(version string, score int) string {
	return fmt.Sprintf(`
version: %q
markets:
  default: {review_score: 400, deny_score: 700}
rules:
  - {name: big, reason: big_amount, score: %d, when: amount >= 1000}
`, version, score)
}

// writeFile replaces path atomically, as the kubelet does for a mounted
// ConfigMap (a new file renamed over the old).
func writeFile(t testing.TB, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// waitFor bounds how long a test waits for the watcher to notice a change:
// a liveness bound, not a speed assertion (the poll here is 5 ms).
const waitFor = 30 * time.Second

// TestRulesChangeWhileScoring rewrites the rules file while payments are
// being scored from several goroutines: the watcher reloads it, and the
// next payment gets the new rules' decision.
func TestRulesChangeWhileScoring(t *testing.T) {
	path := filepath.Join(t.TempDir(), RulesKey)
	writeFile(t, path, rulesDoc("v1", 800))
	w, err := NewWatcher(path, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	reloaded := make(chan *Ruleset, 4)
	w.OnReload(func(rs *Ruleset, err error) {
		if err == nil {
			reloaded <- rs
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.Run(ctx, 5*time.Millisecond)

	scorer := &Scorer{Rules: w, Store: NewMemoryStore()}
	pay := func(i int) Verdict {
		v, _, err := scorer.Score(context.Background(), Payment{Kind: KindCharge, EventKey: fmt.Sprintf("/w|%d", i),
			Wallet: fmt.Sprintf("w-%d", i%10), Amount: 5000, Currency: "PHP", At: t0.Add(time.Duration(i) * time.Second)})
		if err != nil {
			t.Error(err)
		}
		return v
	}
	if v := pay(0); v.Decision != events.DecisionDeny || v.RulesVersion != "v1" {
		t.Fatalf("before the change: %+v", v)
	}

	// Score continuously while the file changes under the watcher.
	var stop atomic.Bool
	var wg sync.WaitGroup
	var n atomic.Int64
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 1 + g; !stop.Load(); i += 4 {
				v := pay(i)
				if v.RulesVersion != "v1" && v.RulesVersion != "v2" {
					t.Errorf("rules version %q", v.RulesVersion)
				}
				n.Add(1)
			}
		}()
	}
	writeFile(t, path, rulesDoc("v2", 100))
	select {
	case rs := <-reloaded:
		if rs.Version != "v2" {
			t.Fatalf("reloaded %q", rs.Version)
		}
	case <-time.After(waitFor):
		t.Fatal("the watcher did not reload the changed file")
	}
	stop.Store(true)
	wg.Wait()
	if v := pay(1_000_000); v.Decision != events.DecisionAllow || v.RulesVersion != "v2" || v.Score != 100 {
		t.Errorf("after the change: %+v", v)
	}
	t.Logf("%d payments scored during the change", n.Load())
}

// TestBrokenRulesKeepTheLastGood: a broken version is rejected with a clear
// error, the previous rules stay in force, and a fixed version loads.
func TestBrokenRulesKeepTheLastGood(t *testing.T) {
	path := filepath.Join(t.TempDir(), RulesKey)
	writeFile(t, path, rulesDoc("v1", 800))
	w, err := NewWatcher(path, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var reports []error
	w.OnReload(func(_ *Ruleset, err error) { reports = append(reports, err) })

	broken := strings.Replace(rulesDoc("v2", 100), "amount >= 1000", "amount >= ", 1)
	for _, bad := range []string{broken, "version: [", ""} {
		writeFile(t, path, bad)
		changed, err := w.Check()
		var re *RuleError
		if changed || !errors.As(err, &re) {
			t.Fatalf("Check of a broken file = %v, %v; want a *RuleError", changed, err)
		}
		if w.Current().Version != "v1" {
			t.Fatalf("rules in force %q after a broken file, want v1", w.Current().Version)
		}
		if !errors.Is(w.LastError(), err) && w.LastError().Error() != err.Error() {
			t.Errorf("LastError = %v", w.LastError())
		}
	}
	// The same broken content again is not reported again.
	if _, err := w.Check(); err == nil {
		t.Fatal("still broken, no error")
	}
	if len(reports) != 3 {
		t.Errorf("%d reports for 3 distinct broken files", len(reports))
	}
	if !strings.Contains(reports[0].Error(), `rule "big"`) {
		t.Errorf("report %q does not name the rule", reports[0])
	}

	writeFile(t, path, rulesDoc("v3", 100))
	if changed, err := w.Check(); !changed || err != nil || w.Current().Version != "v3" || w.LastError() != nil {
		t.Errorf("fixed file: changed=%v err=%v version=%s", changed, err, w.Current().Version)
	}
	if changed, err := w.Check(); changed || err != nil {
		t.Errorf("unchanged file: changed=%v err=%v", changed, err)
	}

	// A missing file is not a rule change either.
	os.Remove(path)
	if changed, err := w.Check(); changed || err == nil || w.Current().Version != "v3" {
		t.Errorf("missing file: changed=%v err=%v version=%s", changed, err, w.Current().Version)
	}
}

func TestNewWatcherRefusesBrokenRules(t *testing.T) {
	path := filepath.Join(t.TempDir(), RulesKey)
	writeFile(t, path, "rules: nope")
	if _, err := NewWatcher(path, nil, nil); err == nil {
		t.Error("NewWatcher accepted a broken file")
	}
	if _, err := NewWatcher(filepath.Join(t.TempDir(), "missing.yaml"), nil, nil); err == nil {
		t.Error("NewWatcher accepted a missing file")
	}
}
