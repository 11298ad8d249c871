package manifests

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"knative.dev/serving/pkg/apis/autoscaling"
)

const realDir = "../../../infra/knative"

func TestRealDeploymentLoadsAndValidates(t *testing.T) {
	s, err := Load(realDir)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if err := s.Validate(context.Background()); err != nil {
		t.Fatalf("Validate:\n%v", err)
	}
	counts := map[string][2]int{
		KindNamespace:  {len(s.Namespaces), 1},
		KindService:    {len(s.Services), 8},
		KindBroker:     {len(s.Brokers), 1},
		KindTrigger:    {len(s.Triggers), 11},
		KindPingSource: {len(s.PingSources), 8},
	}
	for kind, c := range counts {
		if c[0] != c[1] {
			t.Errorf("%s: got %d objects, want %d", kind, c[0], c[1])
		}
	}
	for _, name := range []string{"charge", "fraud", "refund", "topup", "settle", "dead-letter", "ingress", "appgw"} {
		svc := s.Service("sebelas", name)
		if svc == nil {
			t.Errorf("Service %s missing", name)
			continue
		}
		if _, v, _ := autoscaling.MinScaleAnnotation.Get(svc.Spec.Template.Annotations); v != "0" {
			t.Errorf("Service %s min-scale = %q", name, v)
		}
		if s.Origin(KindService, "sebelas", name) != name+".yaml#1" {
			t.Errorf("Service %s origin = %q", name, s.Origin(KindService, "sebelas", name))
		}
	}
	// One settlement tick per market zone, all through the Broker.
	zones := map[string]string{
		"settle-id": "Asia/Jakarta", "settle-ph": "Asia/Manila", "settle-my": "Asia/Kuala_Lumpur",
		"settle-th": "Asia/Bangkok", "settle-bd": "Asia/Dhaka", "settle-pk": "Asia/Karachi", "settle-in": "Asia/Kolkata",
	}
	for name, tz := range zones {
		p := s.PingSource(name)
		if p == nil {
			t.Errorf("PingSource %s missing", name)
			continue
		}
		if p.Spec.Timezone != tz || p.Spec.Schedule != "5 0 * * *" {
			t.Errorf("PingSource %s: timezone %q schedule %q", name, p.Spec.Timezone, p.Spec.Schedule)
		}
		if p.Spec.Sink.Ref == nil || p.Spec.Sink.Ref.Kind != KindBroker {
			t.Errorf("PingSource %s does not sink to the Broker", name)
		}
	}
	if got := len(s.TriggersOf("sebelas", "default")); got != 11 {
		t.Errorf("TriggersOf(default) = %d, want 11", got)
	}
}

// TestBrokenDeployments mutates one real manifest (or adds a file) and
// checks the failure names the problem.
func TestBrokenDeployments(t *testing.T) {
	tests := []struct {
		name     string
		file     string // file to edit or create
		old, new string // replace the first old with new; old "" creates file with new
		atLoad   bool   // fails in Load (else in Validate)
		want     []string
	}{
		{
			name: "unknown field", file: "triggers.yaml",
			old: "  filter:\n", new: "  fitler:\n", atLoad: true,
			want: []string{"triggers.yaml#1", `unknown field "fitler"`},
		},
		{
			name: "unknown field in Service", file: "charge.yaml",
			old: "containerConcurrency:", new: "containerConcurency:", atLoad: true,
			want: []string{"charge.yaml#1", "containerConcurency"},
		},
		{
			name: "duplicate key", file: "refund.yaml",
			old: "  name: refund\n", new: "  name: refund\n  name: refund2\n", atLoad: true,
			want: []string{"refund.yaml#1", `key "name" already set`},
		},
		{
			name: "unknown kind", file: "extra.yaml",
			new:    "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: x\n  namespace: sebelas\n",
			atLoad: true, want: []string{"extra.yaml#1", `unsupported kind "Deployment"`},
		},
		{
			name: "object defined twice", file: "extra.yaml",
			new:    "# again\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: sebelas\n",
			atLoad: true, want: []string{"extra.yaml#1", "defined twice", "namespace.yaml#1"},
		},
		{
			name: "trigger to missing service", file: "triggers.yaml",
			old: "      name: refund\n", new: "      name: refunds\n",
			want: []string{"Trigger sebelas/refund-refund-requested", `Service "refunds" is not in the set`},
		},
		{
			name: "trigger to missing broker", file: "triggers.yaml",
			old: "  broker: default\n", new: "  broker: other\n",
			want: []string{"Trigger sebelas/fraud-charge-requested", `Broker "other" is not in the set`},
		},
		{
			name: "missing dead-letter sink", file: "triggers.yaml",
			old:  "    backoffDelay: PT0.2S\n    deadLetterSink:\n      ref:\n        apiVersion: serving.knative.dev/v1\n        kind: Service\n        name: dead-letter\n",
			new:  "    backoffDelay: PT0.2S\n",
			want: []string{"Trigger sebelas/fraud-charge-requested (triggers.yaml#1)", "deadLetterSink is required"},
		},
		{
			name: "no delivery at all", file: "triggers.yaml",
			old:  "  delivery:\n    retry: 10\n    backoffPolicy: exponential\n    backoffDelay: PT0.2S\n    deadLetterSink:\n      ref:\n        apiVersion: serving.knative.dev/v1\n        kind: Service\n        name: dead-letter\n",
			new:  "",
			want: []string{"fraud-charge-requested", "spec.delivery is required"},
		},
		{
			name: "bad backoffDelay (Knative's own validation)", file: "triggers.yaml",
			old: "backoffDelay: PT0.2S", new: "backoffDelay: 0.2s",
			want: []string{"fraud-charge-requested", "backoffDelay"},
		},
		{
			name: "invalid PingSource timezone", file: "pingsources.yaml",
			old: "  timezone: Asia/Jakarta\n", new: "  timezone: Asia/Jakart\n",
			want: []string{"PingSource sebelas/settle-id (pingsources.yaml#1)", "timezone", "Asia/Jakart"},
		},
		{
			name: "invalid PingSource schedule", file: "pingsources.yaml",
			old: `schedule: "5 0 * * *"`, new: `schedule: "5 0 * *"`,
			want: []string{"settle-id", "schedule"},
		},
		{
			name: "PingSource data not JSON", file: "pingsources.yaml",
			old: `data: '{"market":"ID"`, new: `data: '{market:"ID"`,
			want: []string{"settle-id", "data"},
		},
		{
			name: "PingSource overriding type", file: "pingsources.yaml",
			old: "      sebelastype:", new: "      type:",
			want: []string{"settle-id", "cannot be overridden"},
		},
		{
			name: "PingSource sink uri", file: "pingsources.yaml",
			old:  "  sink:\n    ref:\n      apiVersion: eventing.knative.dev/v1\n      kind: Broker\n      name: default\n",
			new:  "  sink:\n    uri: http://example.com/\n",
			want: []string{"settle-id", "uri", "not allowed"},
		},
		{
			name: "service not scaling to zero", file: "fraud.yaml",
			old: `autoscaling.knative.dev/min-scale: "0"`, new: `autoscaling.knative.dev/min-scale: "1"`,
			want: []string{"Service sebelas/fraud", "min-scale", `"0"`},
		},
		{
			name: "Knative Service validation", file: "topup.yaml",
			old: `autoscaling.knative.dev/panic-window-percentage: "5.0"`, new: `autoscaling.knative.dev/panic-window-percentage: "500"`,
			want: []string{"Service sebelas/topup", "panic-window-percentage"},
		},
		{
			name: "trigger without type filter", file: "triggers.yaml",
			old: "        type: dev.sebelas.charge.requested\n", new: "        source: x\n",
			want: []string{"fraud-charge-requested", "attributes.type is required"},
		},
		{
			name: "alpha filters", file: "triggers.yaml",
			old: "  filter:\n", new: "  filters:\n    - exact:\n        type: x\n  filter:\n",
			want: []string{"fraud-charge-requested", "new-trigger-filters"},
		},
		{
			name: "missing namespace", file: "refund.yaml",
			old: "  namespace: sebelas\n", new: "",
			want: []string{"Service refund", "metadata.namespace is required"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyDir(t, realDir)
			path := filepath.Join(dir, tc.file)
			if tc.old == "" {
				writeFile(t, path, tc.new)
			} else {
				b, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(string(b), tc.old) {
					t.Fatalf("%s does not contain %q", tc.file, tc.old)
				}
				writeFile(t, path, strings.Replace(string(b), tc.old, tc.new, 1))
			}
			s, err := Load(dir)
			if tc.atLoad {
				if err == nil {
					t.Fatal("Load succeeded, want an error")
				}
			} else {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				err = s.Validate(context.Background())
				if err == nil {
					t.Fatal("Validate succeeded, want an error")
				}
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestLoadEmptyDir(t *testing.T) {
	if _, err := Load(t.TempDir()); err == nil || !strings.Contains(err.Error(), "no *.yaml") {
		t.Fatalf("Load(empty) = %v", err)
	}
}

func TestLoadReaderSkipsCommentDocs(t *testing.T) {
	s, err := LoadReader("x.yaml", strings.NewReader("# only a comment\n---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n---\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Namespaces) != 1 || s.Origin(KindNamespace, "", "a") != "x.yaml#2" {
		t.Fatalf("got %d namespaces, origin %q", len(s.Namespaces), s.Origin(KindNamespace, "", "a"))
	}
}

func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dst, e.Name()), string(b))
	}
	return dst
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
