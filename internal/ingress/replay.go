package ingress

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/sebelas/sebelas/internal/table"
)

// Items of the replay record, owned by this package: pk IN#<marketplace>#<nonce>.
// One item per accepted request, under its own partition key (requests
// spread over partitions at any rate), expiring by TTL once its timestamp is
// outside the window, when the timestamp check alone refuses a replay. The
// key is the nonce, not the whole request: a nonce is used once, whatever
// is signed with it.
const (
	seenPrefix = "IN#"
	seenSK     = "IN"
	// seenTTLSlackSec keeps the record a while after the window closes:
	// clocks of ingress pods differ by a little, and DynamoDB TTL deletes
	// late anyway, so this is only a floor.
	seenTTLSlackSec = 600
)

// DB is the part of DynamoDB the replay record uses.
type DB interface {
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
}

var _ DB = (*dynamodb.Client)(nil)

type seenItem struct {
	PK          string `dynamodbav:"pk"`
	SK          string `dynamodbav:"sk"`
	Kind        string `dynamodbav:"kind"`
	Marketplace string `dynamodbav:"marketplace"`
	EventType   string `dynamodbav:"event_type"`
	KeyID       string `dynamodbav:"key_id"`
	Digest      string `dynamodbav:"digest"` // SHA-256 of the signed message
	Token       string `dynamodbav:"token"`  // this handling's, to recognise its own write
	SignedAt    int64  `dynamodbav:"signed_at"`
	SeenAt      string `dynamodbav:"seen_at"`
	ExpiresAt   int64  `dynamodbav:"expires_at"`
}

// errReplay is a request whose digest is already recorded.
var errReplay = errors.New("request already seen")

// replayLog records request digests with a conditional put.
type replayLog struct {
	db    DB
	table string
}

func seenKey(marketplace, nonce string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: seenPrefix + marketplace + "#" + nonce},
		"sk": &types.AttributeValueMemberS{Value: seenSK},
	}
}

// record stores the nonce if it is new: errReplay if it is not, a
// classified storage fault (429/503) if the table cannot say.
//
// The put is conditional on the item not existing. When DynamoDB applied it
// but the answer was lost (a 500, a timeout), the SDK sends it again and
// the condition fails on our own write; the random token tells that apart
// from a replay, so a legitimate request is not refused for a storage
// hiccup.
func (l *replayLog) record(ctx context.Context, r signedRequest, keyID, digest string, now time.Time) error {
	token := newToken()
	item, err := attributevalue.MarshalMap(seenItem{
		PK: seenPrefix + r.marketplace + "#" + r.nonce, SK: seenSK, Kind: "ingress_seen",
		Marketplace: r.marketplace, EventType: r.eventType, KeyID: keyID, Digest: digest, Token: token,
		SignedAt: r.timestamp, SeenAt: now.UTC().Format(time.RFC3339Nano),
		ExpiresAt: r.timestamp + timestampAgeMaxMs/1000 + seenTTLSlackSec,
	})
	if err != nil {
		panic(fmt.Sprintf("marshal seen item: %v", err)) // a struct we own always marshals
	}
	cond, err := expression.NewBuilder().
		WithCondition(expression.AttributeNotExists(expression.Name("pk"))).Build()
	if err != nil {
		panic(err)
	}
	_, err = l.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                           aws.String(l.table),
		Item:                                item,
		ConditionExpression:                 cond.Condition(),
		ExpressionAttributeNames:            cond.Names(),
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var ccf *types.ConditionalCheckFailedException
	if !errors.As(err, &ccf) {
		return table.Classify(err)
	}
	old := ccf.Item
	if len(old) == 0 {
		// Stores that do not return the old image: read it.
		out, err := l.db.GetItem(ctx, &dynamodb.GetItemInput{
			TableName: aws.String(l.table), Key: seenKey(r.marketplace, r.nonce), ConsistentRead: aws.Bool(true),
		})
		if err != nil {
			return table.Classify(err)
		}
		old = out.Item
	}
	var prev seenItem
	if err := attributevalue.UnmarshalMap(old, &prev); err == nil && prev.Token == token {
		return nil // our own write, answered late
	}
	return errReplay
}

func newToken() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return hex.EncodeToString(b)
}

// forget removes a record so that the same signed request may be sent
// again: used when the event could not be put on the Broker, so the
// marketplace's plain retry is not refused as a replay. If the Broker did
// take the event after all (the answer was lost), the retry publishes it a
// second time, which the business id makes harmless.
func (l *replayLog) forget(ctx context.Context, marketplace, nonce string) error {
	_, err := l.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName: aws.String(l.table),
		Key:       seenKey(marketplace, nonce),
	})
	return table.Classify(err)
}
