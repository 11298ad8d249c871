package topup_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sebelas/sebelas/internal/signing"
	"github.com/sebelas/sebelas/internal/topup"
)

func TestBuildRefusesIncompleteConfiguration(t *testing.T) {
	good := map[string]string{
		"AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:1", "SEBELAS_TABLE": "sebelas",
		topup.EnvOperatorURL: "http://127.0.0.1:2", topup.EnvSink: "http://127.0.0.1:3",
	}
	for k, v := range signing.NewDevKeys().Env {
		good[k] = v
	}
	badCatalog := filepath.Join(t.TempDir(), "products.yaml")
	if err := os.WriteFile(badCatalog, []byte("version: x\nmarkets: [{market: SG}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, key, value, want string
	}{
		{"complete", "", "", ""},
		{"no aggregator", topup.EnvOperatorURL, "", topup.EnvOperatorURL},
		{"aggregator not a URL", topup.EnvOperatorURL, "aggregator:443", topup.EnvOperatorURL},
		{"no fraud public key", signing.EnvVerifyKeys(signing.RoleFraud), "", signing.EnvVerifyKeys(signing.RoleFraud)},
		{"no reviewer public key", signing.EnvVerifyKeys(signing.RoleReview), "", signing.EnvVerifyKeys(signing.RoleReview)},
		{"retired shared key", signing.EnvRetired, "k:AAAA", signing.EnvRetired},
		{"sink not a URL", topup.EnvSink, "broker", topup.EnvSink},
		{"broken catalog", topup.EnvProducts, badCatalog, "SG"},
		{"missing catalog", topup.EnvProducts, filepath.Join(t.TempDir(), "none.yaml"), topup.EnvProducts},
		{"operator timeout not a number", topup.EnvOperatorTimeoutMs, "8s", topup.EnvOperatorTimeoutMs},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range good {
				env[k] = v
			}
			if tt.key != "" {
				env[tt.key] = tt.value
			}
			h, err := topup.Build(context.Background(), func(k string) string { return env[k] }, nil)
			if tt.want == "" {
				if err != nil || h == nil {
					t.Fatalf("Build: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one naming %s", err, tt.want)
			}
		})
	}
}
