package manifests

import (
	"context"
	"errors"
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	eventingduckv1 "knative.dev/eventing/pkg/apis/duck/v1"
	"knative.dev/pkg/apis"
	duckv1 "knative.dev/pkg/apis/duck/v1"
	"knative.dev/serving/pkg/apis/autoscaling"
)

// ceContextAttributes are the CloudEvents context attribute names a
// ceOverrides extension cannot replace: the CloudEvents SDK refuses to set
// them as extensions and Knative's PingSource adapter drops the error, so
// such an override would silently do nothing.
var ceContextAttributes = map[string]bool{
	"specversion": true, "id": true, "source": true, "type": true,
	"subject": true, "time": true, "datacontenttype": true,
	"dataschema": true, "data": true, "data_base64": true,
}

// Validate checks the set as the Knative webhooks would and then as a whole.
// Each object is validated on a copy after its own SetDefaults (so the set
// itself is not changed); the FieldErrors of Knative are reported with the
// object and the file it came from. Cross-checks:
//   - every namespaced object names its namespace, and the namespace is in
//     the set when the set declares any;
//   - every Trigger's broker is a Broker in the set; its subscriber is a ref
//     to a Service in the set; it has its own delivery with retry and a
//     dead-letter sink that is a Service in the set; it filters on `type`
//     with filter.attributes (spec.filters needs the alpha feature flag
//     new-trigger-filters, off by default, and would be ignored);
//   - every PingSource sinks to a Service or Broker in the set, and its
//     ceOverrides do not try to replace a CloudEvents context attribute;
//   - a Broker's dead-letter sink, if any, is a Service in the set;
//   - every Service declares autoscaling.knative.dev/min-scale "0", and each
//     of its ConfigMap volumes names a ConfigMap in the set.
func (s *Set) Validate(ctx context.Context) error {
	var errs []error
	add := func(kind string, o metav1.Object, err error) {
		if err == nil {
			return
		}
		where := s.Origin(kind, o.GetNamespace(), o.GetName())
		errs = append(errs, fmt.Errorf("%s %s (%s): %w", kind, displayName(o), where, err))
	}
	fe := func(e *apis.FieldError) error {
		if e == nil {
			return nil
		}
		return errors.New(e.Error())
	}
	create := apis.WithinCreate(ctx)

	declared := map[string]bool{}
	for _, ns := range s.Namespaces {
		declared[ns.Name] = true
	}
	nsCheck := func(kind string, o metav1.Object) {
		switch {
		case o.GetNamespace() == "":
			add(kind, o, errors.New("metadata.namespace is required (the deployment must not depend on the kubectl context)"))
		case len(declared) > 0 && !declared[o.GetNamespace()]:
			add(kind, o, fmt.Errorf("namespace %q is not declared in the set", o.GetNamespace()))
		}
	}

	for _, cm := range s.ConfigMaps {
		nsCheck(KindConfigMap, cm)
	}

	for _, svc := range s.Services {
		nsCheck(KindService, svc)
		// A ConfigMap volume must name a ConfigMap of the set (unless
		// optional): else the pod never starts on the cluster.
		for _, v := range svc.Spec.Template.Spec.Volumes {
			if cm := v.ConfigMap; cm != nil && (cm.Optional == nil || !*cm.Optional) && s.ConfigMap(svc.Namespace, cm.Name) == nil {
				add(KindService, svc, fmt.Errorf("volume %s: ConfigMap %q is not in the set", v.Name, cm.Name))
			}
		}
		c := svc.DeepCopy()
		c.SetDefaults(ctx)
		add(KindService, svc, fe(c.Validate(create)))
		if _, v, ok := autoscaling.MinScaleAnnotation.Get(svc.Spec.Template.Annotations); !ok || v != "0" {
			add(KindService, svc, fmt.Errorf("spec.template.metadata.annotations[%s] must be \"0\" (scale to zero between peaks), got %q",
				autoscaling.MinScaleAnnotationKey, v))
		}
	}

	for _, b := range s.Brokers {
		nsCheck(KindBroker, b)
		c := b.DeepCopy()
		c.SetDefaults(ctx)
		add(KindBroker, b, fe(c.Validate(create)))
		if b.Spec.Delivery != nil && b.Spec.Delivery.DeadLetterSink != nil {
			add(KindBroker, b, s.mustBe(b.Namespace, "spec.delivery.deadLetterSink", *b.Spec.Delivery.DeadLetterSink, KindService))
		}
	}

	for _, t := range s.Triggers {
		nsCheck(KindTrigger, t)
		c := t.DeepCopy()
		c.SetDefaults(ctx)
		add(KindTrigger, t, fe(c.Validate(create)))
		if t.Spec.Broker != "" && s.Broker(t.Namespace, t.Spec.Broker) == nil {
			add(KindTrigger, t, fmt.Errorf("spec.broker: Broker %q is not in the set", t.Spec.Broker))
		}
		add(KindTrigger, t, s.mustBe(t.Namespace, "spec.subscriber", t.Spec.Subscriber, KindService))
		add(KindTrigger, t, s.checkDelivery(t.Namespace, t.Spec.Delivery))
		if len(t.Spec.Filters) > 0 {
			add(KindTrigger, t, errors.New("spec.filters needs the alpha feature new-trigger-filters (disabled by default in Knative Eventing) and would be ignored: use spec.filter.attributes"))
		}
		if t.Spec.Filter == nil || t.Spec.Filter.Attributes["type"] == "" {
			add(KindTrigger, t, errors.New("spec.filter.attributes.type is required: a Trigger without a type filter receives every event, including its subscriber's own replies"))
		}
	}

	for _, p := range s.PingSources {
		nsCheck(KindPingSource, p)
		c := p.DeepCopy()
		c.SetDefaults(ctx)
		add(KindPingSource, p, fe(c.Validate(create)))
		add(KindPingSource, p, s.mustBe(p.Namespace, "spec.sink", p.Spec.Sink, KindService, KindBroker))
		if ov := p.Spec.CloudEventOverrides; ov != nil {
			for k := range ov.Extensions {
				if ceContextAttributes[strings.ToLower(k)] {
					add(KindPingSource, p, fmt.Errorf("spec.ceOverrides.extensions[%s]: a CloudEvents context attribute cannot be overridden (Knative drops it silently); PingSource events always have type dev.knative.sources.ping", k))
				} else if k != strings.ToLower(k) {
					add(KindPingSource, p, fmt.Errorf("spec.ceOverrides.extensions[%s]: CloudEvents extension names are lower case", k))
				}
			}
		}
	}
	return errors.Join(errs...)
}

// checkDelivery requires an explicit delivery with retry and a dead-letter
// sink that is a Service in the set.
func (s *Set) checkDelivery(ns string, d *eventingduckv1.DeliverySpec) error {
	switch {
	case d == nil:
		return errors.New("spec.delivery is required: retry, backoff and a deadLetterSink, so a failing event is never dropped silently")
	case d.DeadLetterSink == nil:
		return errors.New("spec.delivery.deadLetterSink is required: without it Knative drops an event once retries are exhausted")
	case d.Retry == nil:
		return errors.New("spec.delivery.retry is required: without it Knative does not retry at all")
	case *d.Retry > DeliveryRetryMax:
		return fmt.Errorf("spec.delivery.retry %d is above %d: with exponential backoff the last retries would come hours later, long after anyone waits for the outcome", *d.Retry, DeliveryRetryMax)
	}
	return s.mustBe(ns, "spec.delivery.deadLetterSink", *d.DeadLetterSink, KindService)
}

// DeliveryRetryMax bounds a Trigger's retries. Knative bounds nothing; at
// backoffDelay 0.2 s doubling, retry 15 already waits 1.8 h before its last
// attempt, and a poison event should surface in the dead-letter sink within
// minutes (triggers.yaml uses 10: 3 min 25 s).
const DeliveryRetryMax = 15

// mustBe checks that dest is a ref to an object of one of kinds that is in
// the set, in namespace ns.
func (s *Set) mustBe(ns, field string, dest duckv1.Destination, kinds ...string) error {
	want := strings.Join(kinds, " or ")
	if dest.Ref == nil {
		if dest.URI != nil {
			return fmt.Errorf("%s: uri %q is not allowed: refer to a %s in the set so local routing follows the same wiring", field, dest.URI.String(), want)
		}
		return fmt.Errorf("%s: a ref to a %s is required", field, want)
	}
	ref := dest.Ref
	if ref.Namespace != "" && ref.Namespace != ns {
		return fmt.Errorf("%s.ref: namespace %q differs from the object's %q", field, ref.Namespace, ns)
	}
	for _, k := range kinds {
		if ref.Kind != k {
			continue
		}
		switch k {
		case KindService:
			if ref.APIVersion != apiServing {
				return fmt.Errorf("%s.ref: Service must be apiVersion %s (a Knative Service), got %q", field, apiServing, ref.APIVersion)
			}
			if s.Service(ns, ref.Name) == nil {
				return fmt.Errorf("%s.ref: Service %q is not in the set", field, ref.Name)
			}
			return nil
		case KindBroker:
			if ref.APIVersion != apiEventing {
				return fmt.Errorf("%s.ref: Broker must be apiVersion %s, got %q", field, apiEventing, ref.APIVersion)
			}
			if s.Broker(ns, ref.Name) == nil {
				return fmt.Errorf("%s.ref: Broker %q is not in the set", field, ref.Name)
			}
			return nil
		}
	}
	return fmt.Errorf("%s.ref: kind %q is not allowed here, want %s", field, ref.Kind, want)
}
