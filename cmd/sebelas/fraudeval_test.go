package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := dispatch(context.Background(), args, &out, io.Discard)
	return out.String(), err
}

func TestFraudRulesCheck(t *testing.T) {
	out, err := runCLI(t, "fraud", "rules-check", "../../infra/knative/fraud-rules.yaml")
	if err != nil || !strings.Contains(out, ": ok") {
		t.Fatalf("shipped rules: %v\n%s", err, out)
	}
	bad := filepath.Join(t.TempDir(), "rules.yaml")
	doc := "version: x\nmarkets:\n  default: {review_score: 400, deny_score: 700}\nrules:\n  - {name: a, reason: a, score: 1, when: amount >= t.missing}\n"
	if err := os.WriteFile(bad, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = runCLI(t, "fraud", "rules-check", bad)
	if err == nil || !strings.Contains(out, "t.missing is not set for market ID") {
		t.Errorf("broken rules: err %v, output:\n%s", err, out)
	}
}

func TestFraudEval(t *testing.T) {
	out, err := runCLI(t, "fraud", "eval", "--csv", "../../internal/devtools/fraudeval/testdata/paysim_sample.csv", "--currency", "PHP")
	if err != nil || !strings.Contains(out, "| rules 2026.11.1 | 6 | 2 |") || !strings.Contains(out, "Read 8 rows, skipped 0; amounts are major units of PHP, times 100") {
		t.Fatalf("PaySim CSV: %v\n%s", err, out)
	}
	csv := filepath.Join(t.TempDir(), "gen.csv")
	out, err = runCLI(t, "fraud", "generate", "--out", csv, "--users", "60", "--devices")
	if err != nil || !strings.Contains(out, "--warmup-steps 120 --festival 2026-11-11") {
		t.Fatalf("generate: %v\n%s", err, out)
	}
	report := filepath.Join(t.TempDir(), "eval.md")
	out, err = runCLI(t, "fraud", "eval", "--csv", csv, "--warmup-steps", "120", "--festival", "2026-11-11", "--out", report)
	if err != nil || !strings.Contains(out, "report written") || !strings.Contains(out, "ROC-AUC") {
		t.Fatalf("--out: %v\n%s", err, out)
	}
	if doc, err := os.ReadFile(report); err != nil || !strings.Contains(string(doc), "mule_fan_in") || !strings.Contains(string(doc), "naive PaySim rule") {
		t.Errorf("report file: %v\n%.2000s", err, doc)
	}
	if _, err := runCLI(t, "fraud", "generate", "--out", csv, "--users", "1"); err == nil {
		t.Error("--users 1 accepted")
	}
}

func TestFraudReviewNeedsKeyAndDecision(t *testing.T) {
	t.Setenv("SEBELAS_SIGNING_KEY_REVIEW", "")
	if _, err := runCLI(t, "fraud", "review", "--charge", "ch-1", "--approve", "--reviewer", "r"); err == nil || !strings.Contains(err.Error(), "SEBELAS_SIGNING_KEY_REVIEW") {
		t.Errorf("without a key: %v", err)
	}
	if _, err := runCLI(t, "fraud", "review", "--charge", "ch-1", "--approve", "--reject", "--reviewer", "r"); err == nil {
		t.Error("approve and reject at once accepted")
	}
}
