package manifests

import (
	"fmt"
	"strings"
	"testing"
)

// minimalSet is one Broker, one Service and one Trigger with retry n.
func minimalSet(t *testing.T, retry int32) *Set {
	t.Helper()
	doc := fmt.Sprintf(`apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: charge, namespace: sebelas}
spec:
  template:
    metadata:
      annotations: {autoscaling.knative.dev/min-scale: "0"}
    spec:
      containers: [{image: example.com/charge}]
---
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: default, namespace: sebelas, annotations: {eventing.knative.dev/broker.class: MTChannelBasedBroker}}
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: charge-screened, namespace: sebelas}
spec:
  broker: default
  filter: {attributes: {type: dev.sebelas.charge.screened}}
  subscriber: {ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: charge}}
  delivery:
    retry: %d
    backoffPolicy: exponential
    backoffDelay: PT0.2S
    deadLetterSink: {ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: charge}}
`, retry)
	s, err := LoadReader("limits.yaml", strings.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestDeliveryRetryEdge: DeliveryRetryMax is accepted, one more is not.
func TestDeliveryRetryEdge(t *testing.T) {
	check := func(retry int32) error {
		s := minimalSet(t, retry)
		return s.checkDelivery("sebelas", s.Triggers[0].Spec.Delivery)
	}
	if err := check(DeliveryRetryMax); err != nil {
		t.Errorf("retry %d: %v, want valid", DeliveryRetryMax, err)
	}
	err := check(DeliveryRetryMax + 1)
	if err == nil || !strings.Contains(err.Error(), "spec.delivery.retry") {
		t.Errorf("retry %d: err = %v, want one naming spec.delivery.retry", DeliveryRetryMax+1, err)
	}
}
