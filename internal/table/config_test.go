package table_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sebelas/sebelas/internal/table"
)

func TestConfigFromEnv(t *testing.T) {
	def := table.Config{Region: "ap-southeast-1", Table: "sebelas", MaxAttempts: 3, TimeoutMs: 2000}
	with := func(f func(*table.Config)) table.Config { c := def; f(&c); return c }
	tests := []struct {
		name    string
		env     map[string]string
		want    table.Config
		wantErr string // substring; empty = no error
	}{
		{name: "defaults", want: def},
		{
			name: "all set",
			env: map[string]string{
				"AWS_REGION": "ap-southeast-3", "AWS_ENDPOINT_URL_DYNAMODB": "http://localhost:8000",
				"SEBELAS_TABLE": "sebelas-prod", "SEBELAS_DYNAMODB_MAX_ATTEMPTS": "5", "SEBELAS_DYNAMODB_TIMEOUT_MS": "750",
			},
			want: table.Config{Region: "ap-southeast-3", Endpoint: "http://localhost:8000", Table: "sebelas-prod", MaxAttempts: 5, TimeoutMs: 750},
		},
		{
			name: "generic endpoint",
			env:  map[string]string{"AWS_ENDPOINT_URL": "https://alternator.example:8043"},
			want: with(func(c *table.Config) { c.Endpoint = "https://alternator.example:8043" }),
		},
		{
			name: "service endpoint wins",
			env:  map[string]string{"AWS_ENDPOINT_URL": "http://generic:1", "AWS_ENDPOINT_URL_DYNAMODB": "http://ddb:2"},
			want: with(func(c *table.Config) { c.Endpoint = "http://ddb:2" }),
		},
		{
			name: "spaces trimmed",
			env:  map[string]string{"SEBELAS_DYNAMODB_MAX_ATTEMPTS": " 1 ", "SEBELAS_DYNAMODB_TIMEOUT_MS": "30000"},
			want: with(func(c *table.Config) { c.MaxAttempts, c.TimeoutMs = 1, 30000 }),
		},
		{name: "attempts not a number", env: map[string]string{"SEBELAS_DYNAMODB_MAX_ATTEMPTS": "three"}, wantErr: `SEBELAS_DYNAMODB_MAX_ATTEMPTS="three" is not an integer (want 1..10)`},
		{name: "attempts zero", env: map[string]string{"SEBELAS_DYNAMODB_MAX_ATTEMPTS": "0"}, wantErr: "SEBELAS_DYNAMODB_MAX_ATTEMPTS=0 is out of range (want 1..10)"},
		{name: "attempts too many", env: map[string]string{"SEBELAS_DYNAMODB_MAX_ATTEMPTS": "11"}, wantErr: "SEBELAS_DYNAMODB_MAX_ATTEMPTS=11 is out of range"},
		{name: "timeout too small", env: map[string]string{"SEBELAS_DYNAMODB_TIMEOUT_MS": "49"}, wantErr: "SEBELAS_DYNAMODB_TIMEOUT_MS=49 is out of range (want 50..30000)"},
		{name: "timeout too big", env: map[string]string{"SEBELAS_DYNAMODB_TIMEOUT_MS": "30001"}, wantErr: "SEBELAS_DYNAMODB_TIMEOUT_MS=30001 is out of range"},
		{name: "timeout with unit", env: map[string]string{"SEBELAS_DYNAMODB_TIMEOUT_MS": "2s"}, wantErr: `SEBELAS_DYNAMODB_TIMEOUT_MS="2s" is not an integer`},
		{name: "endpoint without scheme", env: map[string]string{"AWS_ENDPOINT_URL_DYNAMODB": "localhost:8000"}, wantErr: `endpoint "localhost:8000" is not an http(s) URL`},
		{name: "endpoint bad scheme", env: map[string]string{"AWS_ENDPOINT_URL": "ftp://x"}, wantErr: "is not an http(s) URL"},
		{name: "table bad char", env: map[string]string{"SEBELAS_TABLE": "sebelas#1"}, wantErr: `SEBELAS_TABLE: table name "sebelas#1" has '#'`},
		{name: "table too short", env: map[string]string{"SEBELAS_TABLE": "ab"}, wantErr: "must be 3..255 characters"},
		{name: "table too long", env: map[string]string{"SEBELAS_TABLE": strings.Repeat("a", 256)}, wantErr: "must be 3..255 characters"},
		{name: "region bad", env: map[string]string{"AWS_REGION": "Asia/Jakarta"}, wantErr: `AWS_REGION="Asia/Jakarta" is not a region name`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := table.ConfigFromEnv(func(k string) string { return tt.env[k] })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ConfigFromEnv() error = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ConfigFromEnv() error = %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ConfigFromEnv() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
