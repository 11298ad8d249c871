package deadletter

// Operators' side of the dead-letter store (`sebelas dlq list|show|replay`):
// find a letter, rebuild the event that failed and post it to the Broker
// again, then mark the letter resolved.
//
// Why a replay is safe: every handler is idempotent on its business id
// (charge_id, refund_id, topup_id, the settlement's merchant-day), so an
// event that did take effect before it was dead-lettered (its reply was
// lost, say) replays the same outcome and moves no money twice.
//
// Why the mark is idempotent and honest: the letter is marked only on the
// condition that it is still the one that was replayed (same received_at)
// and not yet resolved. A second replay of a resolved letter posts nothing;
// a replayed event that fails again is stored again by the sink, which
// drops the mark, so the letter shows as unresolved until a later replay
// gets it through.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	cloudevents "github.com/cloudevents/sdk-go/v2"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/sebelas/sebelas/internal/fault"
	"github.com/sebelas/sebelas/internal/table"
)

const (
	// eventBytesMax bounds the stored original event: the data (at most
	// dataBytesMax) and its attributes, under DynamoDB's 400 KB item limit
	// beside the data attribute.
	eventBytesMax = dataBytesMax + 16<<10
	// refHashHexLen is the length of a reference's hash part: 48 bits, so
	// two letters of one day collide with odds of about 1 in 10^10 at
	// listMax letters (and a collision is refused, not guessed).
	refHashHexLen = 12
	// RangeDaysMax bounds the days one listing reads.
	RangeDaysMax = 31
	// publishTimeoutMs bounds one post to the Broker, which answers 202 as
	// soon as the event is enqueued.
	publishTimeoutMs = 10_000
	// noteBytesMax bounds the note a resolution records.
	noteBytesMax = 200
)

// originalEvent is ev without Knative's error extensions, as structured
// JSON; nil when it would not fit (the letter's fields then rebuild it).
func originalEvent(ev cloudevents.Event) []byte {
	orig := ev.Clone()
	for name := range orig.Extensions() {
		if strings.HasPrefix(name, "knativeerror") {
			_ = orig.Context.SetExtension(name, nil) // nil deletes
		}
	}
	b, err := json.Marshal(orig)
	if err != nil || len(b) > eventBytesMax {
		return nil
	}
	return b
}

// Ref is the letter's short reference for operators: its UTC day and a
// hash of its key, "2026-11-11.3f9a0c1d2e4b".
func (l Letter) Ref() string {
	sum := sha256.Sum256([]byte(l.PK + "|" + l.SK))
	return l.Day() + "." + hex.EncodeToString(sum[:])[:refHashHexLen]
}

// Day is the UTC day the letter was received (its partition's day).
func (l Letter) Day() string {
	rest := strings.TrimPrefix(l.PK, pkPrefix)
	if i := strings.IndexByte(rest, '#'); i >= 0 {
		return rest[:i]
	}
	return rest
}

// Resolved reports whether a replay got the letter's event through.
func (l Letter) Resolved() bool { return l.ResolvedAt != "" }

// CloudEvent is the event that failed, as it was before Knative added its
// error extensions.
func (l Letter) CloudEvent() (cloudevents.Event, error) {
	if len(l.Event) > 0 {
		ev := cloudevents.NewEvent()
		if err := json.Unmarshal(l.Event, &ev); err != nil {
			return ev, fmt.Errorf("dead letter %s: stored event: %w", l.Ref(), err)
		}
		return ev, nil
	}
	// A letter stored before the whole event was kept: its type, source,
	// id, subject and data (extensions such as a signature are lost, so
	// a consumer that needs them refuses the replay with a 400).
	ev := cloudevents.NewEvent()
	ev.SetID(l.ID)
	ev.SetSource(l.Source)
	ev.SetType(l.Type)
	if l.Subject != "" {
		ev.SetSubject(l.Subject)
	}
	if t, err := time.Parse(time.RFC3339Nano, strings.SplitN(l.SK, "#", 2)[0]); err == nil {
		ev.SetTime(t)
	}
	if len(l.Data) > 0 {
		if err := ev.SetData(cloudevents.ApplicationJSON, l.Data); err != nil {
			return ev, err
		}
	}
	return ev, ev.Validate()
}

// StoreDB is the part of DynamoDB the operators' store uses.
type StoreDB interface {
	Querier
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
}

var _ StoreDB = (*dynamodb.Client)(nil)

// Store reads and resolves stored dead letters.
type Store struct {
	DB    StoreDB
	Table string
	Now   func() time.Time // nil: time.Now
}

func (s *Store) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Filter selects letters.
type Filter struct {
	From, To   time.Time // UTC days, inclusive
	Type       string    // "" = any
	Unresolved bool      // only letters no replay got through
	Transient  bool      // leave out code 400 (the consumer said never-succeeds)
}

func (f Filter) keep(l Letter) bool {
	switch {
	case f.Type != "" && l.Type != f.Type:
		return false
	case f.Unresolved && l.Resolved():
		return false
	case f.Transient && l.ErrorCode == "400":
		return false
	}
	return true
}

// List returns the letters the filter keeps, oldest day first.
func (s *Store) List(ctx context.Context, f Filter) ([]Letter, error) {
	from, to := f.From.UTC().Truncate(24*time.Hour), f.To.UTC().Truncate(24*time.Hour)
	if to.Before(from) {
		return nil, fmt.Errorf("dead letters: day range %s..%s is backwards", from.Format(time.DateOnly), to.Format(time.DateOnly))
	}
	if days := int(to.Sub(from).Hours()/24) + 1; days > RangeDaysMax {
		return nil, fmt.Errorf("dead letters: %d days asked, at most %d at once", days, RangeDaysMax)
	}
	var out []Letter
	for day := from; !day.After(to); day = day.Add(24 * time.Hour) {
		letters, err := listDay(ctx, s.DB, s.Table, day)
		if err != nil {
			return nil, err
		}
		for _, l := range letters {
			if f.keep(l) {
				out = append(out, l)
			}
		}
		if len(out) > listMax {
			return nil, fmt.Errorf("more than %d dead letters from %s: list fewer days", listMax, from.Format(time.DateOnly))
		}
	}
	return out, nil
}

// ErrNotFound is returned for a reference that names no stored letter.
var ErrNotFound = errors.New("no such dead letter")

// Find returns the letter a reference (Letter.Ref) names.
func (s *Store) Find(ctx context.Context, ref string) (Letter, error) {
	dayText, hash, ok := strings.Cut(ref, ".")
	day, err := time.Parse(time.DateOnly, dayText)
	if !ok || err != nil || len(hash) != refHashHexLen {
		return Letter{}, fmt.Errorf("dead letter reference %.40q: want <YYYY-MM-DD>.<%d hex digits> as `dlq list` prints it", ref, refHashHexLen)
	}
	letters, err := listDay(ctx, s.DB, s.Table, day)
	if err != nil {
		return Letter{}, err
	}
	var found []Letter
	for _, l := range letters {
		if l.Ref() == ref {
			found = append(found, l)
		}
	}
	switch len(found) {
	case 0:
		return Letter{}, fmt.Errorf("%w: %s", ErrNotFound, ref)
	case 1:
		return found[0], nil
	default:
		return Letter{}, fmt.Errorf("dead letter reference %s names %d letters: replay them by listing with --type", ref, len(found))
	}
}

// Resolution is what marking a letter resolved found.
type Resolution string

const (
	ResolvedNow       Resolution = "resolved"
	AlreadyResolved   Resolution = "already resolved"
	DeadLetteredAgain Resolution = "dead-lettered again (stored anew since it was read): still unresolved"
	Gone              Resolution = "gone (expired)"
)

// Resolve marks l resolved if it is still the letter that was read and no
// one resolved it yet (see the package note on replays).
func (s *Store) Resolve(ctx context.Context, l Letter, note string) (Resolution, error) {
	if len(note) > noteBytesMax {
		note = note[:noteBytesMax]
	}
	upd := expression.Set(expression.Name("resolved_at"), expression.Value(s.now().UTC().Format(time.RFC3339Nano))).
		Set(expression.Name("resolved_note"), expression.Value(note))
	cond := expression.AttributeExists(expression.Name("pk")).
		And(expression.Name("received_at").Equal(expression.Value(l.ReceivedAt))).
		And(expression.AttributeNotExists(expression.Name("resolved_at")))
	ex, err := expression.NewBuilder().WithUpdate(upd).WithCondition(cond).Build()
	if err != nil {
		panic(err) // a static expression
	}
	key := map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: l.PK}, "sk": &types.AttributeValueMemberS{Value: l.SK}}
	_, err = s.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.Table), Key: key, UpdateExpression: ex.Update(), ConditionExpression: ex.Condition(),
		ExpressionAttributeNames: ex.Names(), ExpressionAttributeValues: ex.Values(),
	})
	var ccf *types.ConditionalCheckFailedException
	if err == nil {
		return ResolvedNow, nil
	}
	if !errors.As(err, &ccf) {
		return "", table.Classify(err)
	}
	out, err := s.DB.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.Table), Key: key, ConsistentRead: aws.Bool(true)})
	if err != nil {
		return "", table.Classify(err)
	}
	if len(out.Item) == 0 {
		return Gone, nil
	}
	var now Letter
	if err := attributevalue.UnmarshalMap(out.Item, &now); err != nil {
		return "", err
	}
	if now.ReceivedAt != l.ReceivedAt {
		return DeadLetteredAgain, nil
	}
	return AlreadyResolved, nil
}

// Publisher posts one event to the Broker.
type Publisher interface {
	Publish(ctx context.Context, ev cloudevents.Event) error
}

// Replayed is the outcome of one replay.
type Replayed struct {
	Letter     Letter
	Posted     bool // the event went to the Broker (false: it was resolved already)
	Resolution Resolution
}

// Replay posts l's event to the Broker unless l is resolved, then marks it
// resolved. A failed post leaves it unresolved (try again).
func (s *Store) Replay(ctx context.Context, pub Publisher, l Letter, note string) (Replayed, error) {
	if l.Resolved() {
		return Replayed{Letter: l, Resolution: AlreadyResolved}, nil
	}
	ev, err := l.CloudEvent()
	if err != nil {
		return Replayed{Letter: l}, err
	}
	if err := pub.Publish(ctx, ev); err != nil {
		return Replayed{Letter: l}, err
	}
	res, err := s.Resolve(ctx, l, note)
	return Replayed{Letter: l, Posted: true, Resolution: res}, err
}

// HTTPPublisher posts CloudEvents (binary mode) to one URL: the Broker's
// ingress.
type HTTPPublisher struct {
	client cloudevents.Client
}

// NewHTTPPublisher returns a publisher to target, an http(s) URL.
func NewHTTPPublisher(target string) (*HTTPPublisher, error) {
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("broker URL %.200q is not an http(s) URL", target)
	}
	p, err := cloudevents.NewHTTP(cloudevents.WithTarget(target),
		cehttp.WithClient(http.Client{Timeout: publishTimeoutMs * time.Millisecond}))
	if err != nil {
		return nil, err
	}
	c, err := cloudevents.NewClient(p)
	if err != nil {
		return nil, err
	}
	return &HTTPPublisher{client: c}, nil
}

// Publish sends ev and waits for the Broker's acknowledgement.
func (p *HTTPPublisher) Publish(ctx context.Context, ev cloudevents.Event) error {
	ctx, cancel := context.WithTimeout(ctx, publishTimeoutMs*time.Millisecond)
	defer cancel()
	if res := p.client.Send(ctx, ev); !cloudevents.IsACK(res) {
		return fault.Transient("publish_failed", fmt.Errorf("post %s to the Broker: %w", ev.Type(), res))
	}
	return nil
}
