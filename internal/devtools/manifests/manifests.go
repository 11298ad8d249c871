// Package manifests loads the Knative deployment of sebelas (infra/knative)
// into typed Knative objects and checks it the way the cluster would:
// each object's own SetDefaults and Validate (the code the Knative webhooks
// run), plus cross-checks that only make sense for the set as a whole
// (every sink names a Service in the set, every Trigger has its own
// delivery with a dead-letter sink, every Service scales to zero).
//
// `sebelas dev` and the end-to-end tests route events locally by reading
// these same objects (package router), so local routing and the cluster
// cannot drift apart.
//
// Dependency rule: this package imports the Knative Serving and Eventing API
// packages. That is allowed only because its users are cmd/sebelas and tests;
// functions/ and the domain packages must never import it (or router): a
// function binary stays free of Kubernetes and Knative API code.
package manifests

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	_ "time/tzdata" // PingSource time zones must resolve on any machine

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"
	sourcesv1 "knative.dev/eventing/pkg/apis/sources/v1"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"
	"sigs.k8s.io/yaml"

	"github.com/sebelas/sebelas/internal/signing"
)

// API versions and kinds this package understands.
const (
	apiServing  = "serving.knative.dev/v1"
	apiEventing = "eventing.knative.dev/v1"
	apiSources  = "sources.knative.dev/v1"
	apiCore     = "v1"

	KindService    = "Service"
	KindBroker     = "Broker"
	KindTrigger    = "Trigger"
	KindPingSource = "PingSource"
	KindNamespace  = "Namespace"
	KindConfigMap  = "ConfigMap"
)

// Set is every object of one manifest directory, in file order (files
// sorted by name, documents in file order).
type Set struct {
	Dir         string
	Namespaces  []*corev1.Namespace
	Services    []*servingv1.Service
	Brokers     []*eventingv1.Broker
	Triggers    []*eventingv1.Trigger
	PingSources []*sourcesv1.PingSource
	// ConfigMaps hold configuration mounted into Services (the fraud
	// rules); Secrets are never in the repository, so not in the set.
	ConfigMaps []*corev1.ConfigMap

	origin map[string]string // objectKey -> "file.yaml#doc"
}

// Load reads every *.yaml and *.yml file in dir (not recursively) and
// decodes each YAML document into its typed Knative or Kubernetes object.
// Decoding is strict: an unknown field (a typo), a duplicate key, an
// unsupported kind or a duplicate object is an error naming the file and
// document. Empty documents (only comments) are skipped.
func Load(dir string) (*Set, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("manifests: %w", err)
	}
	var files []string
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		if ext := filepath.Ext(e.Name()); ext == ".yaml" || ext == ".yml" {
			files = append(files, e.Name())
		}
	}
	sort.Strings(files)
	if len(files) == 0 {
		return nil, fmt.Errorf("manifests: no *.yaml files in %s", dir)
	}
	s := &Set{Dir: dir, origin: map[string]string{}}
	var errs []error
	for _, name := range files {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("manifests: %w", err)
		}
		err = s.decodeFile(name, f)
		f.Close()
		if err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return s, nil
}

// LoadReader decodes the YAML documents of one stream as if they were a
// file called name; tests and tools that build manifests in memory use it.
func LoadReader(name string, r io.Reader) (*Set, error) {
	s := &Set{Dir: "", origin: map[string]string{}}
	if err := s.decodeFile(name, r); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Set) decodeFile(name string, r io.Reader) error {
	reader := utilyaml.NewYAMLReader(bufio.NewReader(r))
	var errs []error
	for doc := 1; ; doc++ {
		raw, err := reader.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("%s: reading document %d: %w", name, doc, err)
		}
		where := fmt.Sprintf("%s#%d", name, doc)
		if err := s.decodeDoc(where, raw); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", where, err))
		}
	}
	return errors.Join(errs...)
}

func (s *Set) decodeDoc(where string, raw []byte) error {
	js, err := yaml.YAMLToJSONStrict(raw)
	if err != nil {
		return fmt.Errorf("invalid YAML: %w", err)
	}
	if t := bytes.TrimSpace(js); len(t) == 0 || string(t) == "null" {
		return nil // only comments or an empty document
	}
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(raw, &tm); err != nil {
		return fmt.Errorf("invalid document: %w", err)
	}
	if tm.Kind == "" || tm.APIVersion == "" {
		return fmt.Errorf("document has no apiVersion/kind")
	}
	var obj metav1.Object
	switch tm.APIVersion + "/" + tm.Kind {
	case apiServing + "/" + KindService:
		o := &servingv1.Service{}
		obj = o
	case apiEventing + "/" + KindBroker:
		obj = &eventingv1.Broker{}
	case apiEventing + "/" + KindTrigger:
		obj = &eventingv1.Trigger{}
	case apiSources + "/" + KindPingSource:
		obj = &sourcesv1.PingSource{}
	case apiCore + "/" + KindNamespace:
		obj = &corev1.Namespace{}
	case apiCore + "/" + KindConfigMap:
		obj = &corev1.ConfigMap{}
	default:
		return fmt.Errorf("unsupported kind %q (apiVersion %q): the set knows %s, %s, %s, %s, %s and %s",
			tm.Kind, tm.APIVersion, KindNamespace, KindConfigMap, KindService, KindBroker, KindTrigger, KindPingSource)
	}
	if err := yaml.UnmarshalStrict(raw, obj); err != nil {
		return fmt.Errorf("%s: %s", tm.Kind, cleanDecodeError(err))
	}
	if obj.GetName() == "" {
		return fmt.Errorf("%s: metadata.name is required", tm.Kind)
	}
	key := objectKey(tm.Kind, obj.GetNamespace(), obj.GetName())
	if prev, dup := s.origin[key]; dup {
		return fmt.Errorf("%s %s is defined twice (first in %s)", tm.Kind, displayName(obj), prev)
	}
	s.origin[key] = where
	switch o := obj.(type) {
	case *servingv1.Service:
		s.Services = append(s.Services, o)
	case *eventingv1.Broker:
		s.Brokers = append(s.Brokers, o)
	case *eventingv1.Trigger:
		s.Triggers = append(s.Triggers, o)
	case *sourcesv1.PingSource:
		s.PingSources = append(s.PingSources, o)
	case *corev1.Namespace:
		s.Namespaces = append(s.Namespaces, o)
	case *corev1.ConfigMap:
		s.ConfigMaps = append(s.ConfigMaps, o)
	}
	return nil
}

// cleanDecodeError strips the wrapper prefixes sigs.k8s.io/yaml adds, so the
// message reads "json: unknown field "fitler"".
func cleanDecodeError(err error) string {
	msg := err.Error()
	for _, p := range []string{"error unmarshaling JSON: ", "while decoding JSON: "} {
		msg = strings.TrimPrefix(msg, p)
	}
	return msg
}

func objectKey(kind, namespace, name string) string {
	return kind + "/" + namespace + "/" + name
}

func displayName(o metav1.Object) string {
	if o.GetNamespace() == "" {
		return o.GetName()
	}
	return o.GetNamespace() + "/" + o.GetName()
}

// Origin says where an object was read from ("charge.yaml#1"), or "" when
// it is not in the set.
func (s *Set) Origin(kind, namespace, name string) string {
	return s.origin[objectKey(kind, namespace, name)]
}

// Service returns the Service called name in namespace, or nil.
func (s *Set) Service(namespace, name string) *servingv1.Service {
	for _, o := range s.Services {
		if o.Namespace == namespace && o.Name == name {
			return o
		}
	}
	return nil
}

// ConfigMap returns the ConfigMap called name in namespace, or nil.
func (s *Set) ConfigMap(namespace, name string) *corev1.ConfigMap {
	for _, o := range s.ConfigMaps {
		if o.Namespace == namespace && o.Name == name {
			return o
		}
	}
	return nil
}

// Broker returns the Broker called name in namespace, or nil.
func (s *Set) Broker(namespace, name string) *eventingv1.Broker {
	for _, o := range s.Brokers {
		if o.Namespace == namespace && o.Name == name {
			return o
		}
	}
	return nil
}

// PingSource returns the PingSource called name (in any namespace; names
// are unique in sebelas' single namespace), or nil.
func (s *Set) PingSource(name string) *sourcesv1.PingSource {
	for _, o := range s.PingSources {
		if o.Name == name {
			return o
		}
	}
	return nil
}

// TriggersOf returns the Triggers bound to the Broker namespace/name, in
// set order.
func (s *Set) TriggersOf(namespace, broker string) []*eventingv1.Trigger {
	var out []*eventingv1.Trigger
	for _, t := range s.Triggers {
		if t.Namespace == namespace && t.Spec.Broker == broker {
			out = append(out, t)
		}
	}
	return out
}

// EnvNames lists the environment variable names the containers of the
// Service called name declare (in any namespace of the set).
func (s *Set) EnvNames(name string) map[string]bool {
	names := map[string]bool{}
	for _, o := range s.Services {
		if o.Name != name {
			continue
		}
		for _, c := range o.Spec.Template.Spec.Containers {
			for _, e := range c.Env {
				names[e.Name] = true
			}
		}
	}
	return names
}

// KeysOf wraps getenv for the Service called name so that it sees only the
// signing keys (signing.EnvSigningKey, signing.EnvVerifyKeys) its manifest
// declares: one process running every function locally still gives each
// the keys, and only the keys, it would hold on a cluster. A manifest that
// forgets a key its function needs fails locally as it would deployed.
func (s *Set) KeysOf(name string, getenv func(string) string) func(string) string {
	declared := s.EnvNames(name)
	private, public := signing.EnvSigningKey(""), signing.EnvVerifyKeys("")
	return func(k string) string {
		if (strings.HasPrefix(k, private) || strings.HasPrefix(k, public)) && !declared[k] {
			return ""
		}
		return getenv(k)
	}
}
