package table

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestPodCredentials walks the pod chain source by source; the container
// endpoint is a real HTTP server speaking the EKS Pod Identity answer, with
// its token read from a file as EKS mounts it.
func TestPodCredentials(t *testing.T) {
	dir := t.TempDir()
	tokenPath := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenPath, []byte("tok-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var gotAuth string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAuth = r.Header.Get("Authorization")
		exp := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
		_, _ = w.Write([]byte(`{"AccessKeyId":"ASIAPOD","SecretAccessKey":"s","Token":"t","Expiration":"` + exp + `"}`))
	}))
	defer srv.Close()
	for _, tt := range []struct {
		name    string
		env     map[string]string
		wantKey string
		wantErr string
	}{
		{"environment keys", map[string]string{envAccessKeyID: "AKIAENV", envSecretAccessKey: "s"}, "AKIAENV", ""},
		{"a key id without its secret", map[string]string{envAccessKeyID: "AKIAENV"}, "", envSecretAccessKey},
		{"web identity without a role", map[string]string{envWebIdentityToken: tokenPath}, "", envRoleARN},
		{"EKS Pod Identity", map[string]string{envContainerFullURI: srv.URL, envContainerTokenFile: tokenPath}, "ASIAPOD", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, err := podCredentials("ap-southeast-1", func(k string) string { return tt.env[k] }, http.DefaultClient)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			creds, err := p.Retrieve(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.wantKey, creds.AccessKeyID); diff != "" {
				t.Errorf("access key (-want +got):\n%s", diff)
			}
		})
	}
	if gotAuth != "tok-1" {
		t.Errorf("container endpoint got Authorization %q, want the token file's content", gotAuth)
	}
}
