// Package functions_test checks what the function binaries link: they start
// on every scale-from-zero, so they stay lean (docs/architecture.md).
package functions_test

import (
	"os/exec"
	"strings"
	"testing"
)

// forbidden are import paths no function may link, with why.
var forbidden = map[string]string{
	"k8s.io/client-go":                             "the Kubernetes API client: tooling only",
	"knative.dev/serving/pkg/apis":                 "Knative's API types: the manifests' tests only",
	"knative.dev/eventing/pkg/apis":                "Knative's API types: the manifests' tests only",
	"github.com/aws/aws-sdk-go-v2/config":          "the SDK's shared-config loader (table uses the pod chain, credentials.go)",
	"github.com/aws/aws-sdk-go-v2/service/sso":     "SSO: an operator's laptop, not a pod",
	"github.com/aws/aws-sdk-go-v2/service/ssooidc": "SSO: an operator's laptop, not a pod",
	"github.com/aws/aws-sdk-go-v2/service/signin":  "console sign-in: an operator's laptop, not a pod",
}

func TestFunctionsStayLean(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", "./...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 50 {
		t.Fatalf("go list found %d packages: the functions were not listed", len(deps))
	}
	for _, d := range deps {
		for prefix, why := range forbidden {
			if d == prefix || strings.HasPrefix(d, prefix+"/") {
				t.Errorf("a function links %s: %s", d, why)
			}
		}
	}
}
