package manifests

import (
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sebelas/sebelas/internal/signing"
)

// TestEachPodHoldsOnlyItsKeys: a Service holds the private key of the one
// role it signs as (from that role's own Secret) and the public keys of the
// roles whose events it verifies, nothing more. The reviewers' private key
// is in no pod at all. The local stack gives each function exactly these
// (Set.KeysOf), so a missing key fails `go tool task test` first.
func TestEachPodHoldsOnlyItsKeys(t *testing.T) {
	s, err := Load(realDir)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"ingress": {signing.EnvSigningKey(signing.RoleIngress)},
		"appgw":   {signing.EnvSigningKey(signing.RoleApp), signing.EnvVerifyKeys(signing.RoleSession)},
		"fraud":   {signing.EnvSigningKey(signing.RoleFraud), signing.EnvVerifyKeys(signing.RoleApp), signing.EnvVerifyKeys(signing.RoleIngress)},
		"charge":  {signing.EnvVerifyKeys(signing.RoleFraud), signing.EnvVerifyKeys(signing.RoleReview)},
		"refund":  {signing.EnvVerifyKeys(signing.RoleIngress)},
		"topup":   {signing.EnvVerifyKeys(signing.RoleFraud), signing.EnvVerifyKeys(signing.RoleReview)},
	}
	got := map[string][]string{}
	for _, svc := range s.Services {
		for _, c := range svc.Spec.Template.Spec.Containers {
			for _, e := range c.Env {
				private := strings.HasPrefix(e.Name, signing.EnvSigningKey(""))
				if !private && !strings.HasPrefix(e.Name, signing.EnvVerifyKeys("")) {
					continue
				}
				got[svc.Name] = append(got[svc.Name], e.Name)
				role := strings.ToLower(e.Name[strings.LastIndex(e.Name, "_")+1:])
				switch ref := e.ValueFrom; {
				case private && (ref == nil || ref.SecretKeyRef == nil || ref.SecretKeyRef.Name != "sebelas-signing-"+role):
					t.Errorf("%s: %s must come from the Secret sebelas-signing-%s", svc.Name, e.Name, role)
				case !private && (ref == nil || ref.ConfigMapKeyRef == nil || ref.ConfigMapKeyRef.Name != "sebelas-verify-keys" || ref.ConfigMapKeyRef.Key != role):
					t.Errorf("%s: %s must come from the ConfigMap sebelas-verify-keys, key %s", svc.Name, e.Name, role)
				}
			}
		}
		sort.Strings(got[svc.Name])
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("signing keys per Service (-want +got):\n%s", diff)
	}
	for name, envs := range got {
		for _, e := range envs {
			if e == signing.EnvSigningKey(signing.RoleReview) {
				t.Errorf("%s holds the reviewers' private key", name)
			}
		}
	}
}
