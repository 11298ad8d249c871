// Package deadletter is the dead-letter sink: every event the Broker could not
// deliver (after its retries, or at once for a 400) arrives here with
// Knative's knativeerrorcode, knativeerrordest and knativeerrordata
// extensions, and is written to the table so that nothing that touched money
// is lost silently. Operators list them by day; the chaos run counts them.
//
// Items: pk DL#<UTC date>#<shard>, sk <RFC3339 time>#<source>#<id>, with a
// TTL. The day is sharded because a failing dependency at midnight turns the
// whole peak into dead letters at once. Beside each letter a marker item
// (pk DLK#<sha256 of source and id>, sk DLK) names where the letter of that
// source and id lives, so that every delivery of one event lands on one
// item whatever its ce-time (or none) and whatever day it arrives.
package deadletter

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/sebelas/sebelas/internal/fault"
	"github.com/sebelas/sebelas/internal/function"
	"github.com/sebelas/sebelas/internal/table"
	"github.com/sebelas/sebelas/internal/telemetry"
)

const (
	pkPrefix = "DL#"
	// shards spreads one day's dead letters over partitions (see package doc).
	shards = 16
	// dataBytesMax bounds the stored body: enough to replay any valid event
	// (events.BodyBytesMax is 64 KiB) while keeping the item under
	// DynamoDB's 400 KB limit with room for the attributes.
	dataBytesMax = 64 << 10
	// errorDataBytesMax bounds the stored failure response.
	errorDataBytesMax = 2 << 10
	// retentionDays is how long a dead letter stays before the TTL removes
	// it: long enough for a festival post-mortem.
	retentionDays = 90
	// listMax bounds one List call.
	listMax = 10_000
)

// KeyPartsBytesMax bounds the source and id as they appear in the sort key
// (together). DynamoDB caps a sort key at 1024 bytes and CloudEvents bounds
// neither, and a dead letter is by nature an event that broke the rules: a
// longer pair is keyed by its SHA-256 instead, so it is still stored (and a
// redelivery still lands on the same item); the item keeps both whole.
const KeyPartsBytesMax = 512

func keyParts(source, id string) string {
	if len(source)+len(id) <= KeyPartsBytesMax {
		return source + "#" + id
	}
	sum := sha256.Sum256([]byte(source + "|" + id))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// DB is the part of DynamoDB the sink uses.
type DB interface {
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
}

var _ DB = (*dynamodb.Client)(nil)

// Letter is one stored dead letter.
type Letter struct {
	PK         string `dynamodbav:"pk"`
	SK         string `dynamodbav:"sk"`
	Kind       string `dynamodbav:"kind"`
	Type       string `dynamodbav:"type"`
	Source     string `dynamodbav:"source"`
	ID         string `dynamodbav:"id"`
	Subject    string `dynamodbav:"subject,omitempty"`
	ErrorCode  string `dynamodbav:"error_code,omitempty"`
	ErrorDest  string `dynamodbav:"error_dest,omitempty"`
	ErrorData  string `dynamodbav:"error_data,omitempty"`
	Data       []byte `dynamodbav:"data,omitempty"`
	ReceivedAt string `dynamodbav:"received_at"`
	ExpiresAt  int64  `dynamodbav:"expires_at"`
	// Event is the original CloudEvent (structured JSON, every attribute
	// and extension but Knative's knativeerror* ones) so that a replay
	// posts the very event that failed, its signature included. Letters
	// stored before it existed are rebuilt from the fields above.
	Event []byte `dynamodbav:"event,omitempty"`
	// Set by a replay (replay.go); a new failure of the same event stores
	// the letter again without them.
	ResolvedAt   string `dynamodbav:"resolved_at,omitempty"`
	ResolvedNote string `dynamodbav:"resolved_note,omitempty"`
}

// Sink stores dead letters.
type Sink struct {
	DB    DB
	Table string
	Now   func() time.Time
	Log   *slog.Logger
}

func ext(ev cloudevents.Event, name string) string {
	v, ok := ev.Extensions()[name]
	if !ok {
		return ""
	}
	return fmt.Sprint(v)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func shardOf(source, id string) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(source + "|" + id))
	return int(h.Sum32() % shards)
}

// Handle stores one dead letter. Storing is idempotent on the event's source
// and id (a redelivered dead letter overwrites itself), and every failure is
// transient: a dead letter must never itself be dropped.
func (s *Sink) Handle(ctx context.Context, ev cloudevents.Event) (*cloudevents.Event, error) {
	now := s.Now().UTC()
	data := ev.Data()
	if len(data) > dataBytesMax {
		data = data[:dataBytesMax]
	}
	day := now.Format("2006-01-02")
	// The sort key leads with the event's own time when it has one, so a
	// redelivery of the same dead letter lands on the same item.
	at := ev.Time()
	if at.IsZero() {
		at = now
	}
	l := Letter{
		PK:         fmt.Sprintf("%s%s#%02d", pkPrefix, day, shardOf(ev.Source(), ev.ID())),
		SK:         at.UTC().Format(time.RFC3339Nano) + "#" + keyParts(ev.Source(), ev.ID()),
		Kind:       "dead_letter",
		Type:       ev.Type(),
		Source:     ev.Source(),
		ID:         ev.ID(),
		Subject:    ev.Subject(),
		ErrorCode:  ext(ev, "knativeerrorcode"),
		ErrorDest:  ext(ev, "knativeerrordest"),
		ErrorData:  truncate(ext(ev, "knativeerrordata"), errorDataBytesMax),
		Data:       data,
		ReceivedAt: now.Format(time.RFC3339Nano),
		ExpiresAt:  now.Add(retentionDays * 24 * time.Hour).Unix(),
		Event:      originalEvent(ev),
	}
	if err := s.place(ctx, &l); err != nil {
		return nil, err
	}
	item, err := attributevalue.MarshalMap(l)
	if err != nil {
		panic(err)
	}
	if _, err := s.DB.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.Table), Item: item}); err != nil {
		return nil, table.Classify(err)
	}
	telemetry.DeadLetter(l.Type, l.ErrorCode)
	if s.Log != nil {
		// Type, ids and the failure only: the payload may hold a phone
		// number and stays in the table.
		s.Log.Warn("dead letter", "type", l.Type, "source", l.Source, "id", l.ID,
			"error_code", l.ErrorCode, "error_dest", l.ErrorDest)
	}
	return nil, nil
}

const markerPrefix = "DLK#"

// marker is the item naming where the letter of one source and id lives.
type marker struct {
	PK        string `dynamodbav:"pk"`
	SK        string `dynamodbav:"sk"`
	Kind      string `dynamodbav:"kind"`
	LetterPK  string `dynamodbav:"letter_pk"`
	LetterSK  string `dynamodbav:"letter_sk"`
	ExpiresAt int64  `dynamodbav:"expires_at"`
}

func markerKey(source, id string) map[string]types.AttributeValue {
	sum := sha256.Sum256([]byte(source + "|" + id))
	return map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: markerPrefix + hex.EncodeToString(sum[:])},
		"sk": &types.AttributeValueMemberS{Value: "DLK"},
	}
}

// place gives l the key of the first delivery of its source and id: it
// writes the marker if there is none, else moves l onto the marker's key.
// The marker goes first: a crash before the letter's put leaves a marker
// whose letter the Broker's redelivery writes.
func (s *Sink) place(ctx context.Context, l *Letter) error {
	key := markerKey(l.Source, l.ID)
	m := marker{PK: key["pk"].(*types.AttributeValueMemberS).Value, SK: "DLK", Kind: "dead_letter_marker",
		LetterPK: l.PK, LetterSK: l.SK, ExpiresAt: l.ExpiresAt}
	item, err := attributevalue.MarshalMap(m)
	if err != nil {
		panic(err)
	}
	cond, err := expression.NewBuilder().WithCondition(expression.AttributeNotExists(expression.Name("pk"))).Build()
	if err != nil {
		panic(err)
	}
	_, err = s.DB.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(s.Table), Item: item, ConditionExpression: cond.Condition(),
		ExpressionAttributeNames: cond.Names(), ExpressionAttributeValues: cond.Values(),
	})
	var exists *types.ConditionalCheckFailedException
	if !errors.As(err, &exists) {
		return table.Classify(err)
	}
	out, err := s.DB.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.Table), Key: key, ConsistentRead: aws.Bool(true)})
	if err != nil {
		return table.Classify(err)
	}
	var old marker
	if err := attributevalue.UnmarshalMap(out.Item, &old); err != nil || old.LetterPK == "" {
		// Gone between the two calls (its TTL): retry writes a new one.
		return fault.Transient("dead_letter_marker_vanished", fmt.Errorf("marker of %s: %v", l.Source, err))
	}
	l.PK, l.SK = old.LetterPK, old.LetterSK
	return nil
}

// List returns the dead letters received on a UTC day, oldest first.
func (s *Sink) List(ctx context.Context, day time.Time) ([]Letter, error) {
	return listDay(ctx, s.DB, s.Table, day)
}

// Querier is the read the listing needs.
type Querier interface {
	Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
}

func listDay(ctx context.Context, db Querier, tableName string, day time.Time) ([]Letter, error) {
	var all []Letter
	for shard := range shards {
		kc, err := expression.NewBuilder().WithKeyCondition(
			expression.Key("pk").Equal(expression.Value(fmt.Sprintf("%s%s#%02d", pkPrefix, day.UTC().Format("2006-01-02"), shard)))).Build()
		if err != nil {
			panic(err)
		}
		var start map[string]types.AttributeValue
		for {
			out, err := db.Query(ctx, &dynamodb.QueryInput{
				TableName: aws.String(tableName), KeyConditionExpression: kc.KeyCondition(),
				ExpressionAttributeNames: kc.Names(), ExpressionAttributeValues: kc.Values(),
				ExclusiveStartKey: start, ConsistentRead: aws.Bool(true),
			})
			if err != nil {
				return nil, table.Classify(err)
			}
			var page []Letter
			if err := attributevalue.UnmarshalListOfMaps(out.Items, &page); err != nil {
				return nil, err
			}
			all = append(all, page...)
			if len(all) > listMax {
				return nil, fmt.Errorf("more than %d dead letters on %s: list fewer", listMax, day.Format("2006-01-02"))
			}
			if len(out.LastEvaluatedKey) == 0 {
				break
			}
			start = out.LastEvaluatedKey
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].SK < all[j].SK })
	return all, nil
}

// Build wires the dead-letter function.
func Build(ctx context.Context, getenv func(string) string, log *slog.Logger) (function.Handler, error) {
	tc, err := table.ConfigFromEnv(getenv)
	if err != nil {
		return nil, err
	}
	db, err := table.NewClient(ctx, tc)
	if err != nil {
		return nil, err
	}
	s := &Sink{DB: db, Table: tc.Table, Now: time.Now, Log: log}
	return s.Handle, nil
}
