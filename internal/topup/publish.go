package topup

import (
	"context"
	"fmt"
	"net/url"

	cloudevents "github.com/cloudevents/sdk-go/v2"
)

// SinkPublisher sends events to a sink URL over HTTP (binary mode): on a
// cluster the Broker's ingress, which Knative passes as K_SINK (a
// SinkBinding, or the Service's env in infra/knative/topup.yaml); under
// `sebelas dev` the local Broker's ingress.
type SinkPublisher struct {
	client cloudevents.Client
}

var _ Publisher = (*SinkPublisher)(nil)

// NewSinkPublisher returns a publisher to sink. It makes no network call.
func NewSinkPublisher(sink string) (*SinkPublisher, error) {
	u, err := url.Parse(sink)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("sink %q: want an http(s) URL", sink)
	}
	p, err := cloudevents.NewHTTP(cloudevents.WithTarget(sink))
	if err != nil {
		return nil, err
	}
	c, err := cloudevents.NewClient(p)
	if err != nil {
		return nil, err
	}
	return &SinkPublisher{client: c}, nil
}

// Publish sends ev and succeeds only when the sink acknowledged it (2xx).
func (p *SinkPublisher) Publish(ctx context.Context, ev cloudevents.Event) error {
	if res := p.client.Send(ctx, ev); !cloudevents.IsACK(res) {
		return fmt.Errorf("publish %s: %w", ev.Type(), res)
	}
	return nil
}
