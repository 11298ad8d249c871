// Package ledger owns the money items of the table: wallet balances
// (W#<wallet> / BAL#<currency>), charges (C#<charge_id> / C) and cash-ins
// (K#<cashin_id> / K). Every rule that keeps money from being created or lost
// on these items — the idempotency check, the funds check, the frozen check —
// is a DynamoDB condition written here, beside the keys it guards.
package ledger

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/sebelas/sebelas/internal/fault"
	"github.com/sebelas/sebelas/internal/table"
)

// DB is the part of the DynamoDB API the ledger uses; *dynamodb.Client
// satisfies it.
type DB interface {
	TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, opts ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
}

var _ DB = (*dynamodb.Client)(nil)

// Store is the ledger on one table.
type Store struct {
	db    DB
	table string
	now   func() time.Time
	// refunding lets refunds of one charge take turns (refund.go).
	refunding chargeLocks
}

// New returns a ledger on table. now may be nil (time.Now).
func New(db DB, table string, now func() time.Time) *Store {
	if db == nil || table == "" {
		panic("ledger.New: db and table are required")
	}
	if now == nil {
		now = time.Now
	}
	return &Store{db: db, table: table, now: now}
}

// Table is the name of the table the store writes.
func (s *Store) Table() string { return s.table }

// getItem reads one item with a strongly consistent read and decodes it into
// T; ok is false when it does not exist. A storage failure is classified for
// retry; an item that does not decode is reported as corruptReason (a
// transient fault: the event is retried, never dead-lettered, while an
// operator looks).
func getItem[T any](ctx context.Context, s *Store, key map[string]types.AttributeValue, corruptReason string) (T, bool, error) {
	var v T
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(s.table), Key: key, ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return v, false, table.Classify(err)
	}
	if len(out.Item) == 0 {
		return v, false, nil
	}
	if err := attributevalue.UnmarshalMap(out.Item, &v); err != nil {
		return v, false, fault.Transient(corruptReason, err)
	}
	return v, true, nil
}

// storedImage decodes the item a failed attribute_not_exists condition
// found: the old image DynamoDB returned with ALL_OLD or, when the API
// returned none (emulators, older APIs), a consistent read of key. what names
// the item in fault reasons ("charge" → corrupt_charge, charge_vanished).
// Every replay of a duplicate starts here, so all of them treat a missing or
// undecodable item as transient (retried), never as a conflict.
func storedImage[T any](ctx context.Context, s *Store, key, old map[string]types.AttributeValue, what string) (T, error) {
	var v T
	if len(old) == 0 {
		v, ok, err := getItem[T](ctx, s, key, "corrupt_"+what)
		if err != nil {
			return v, err
		}
		if !ok {
			return v, fault.Transient(what+"_vanished", fmt.Errorf("%s condition failed but no item", what))
		}
		return v, nil
	}
	if err := attributevalue.UnmarshalMap(old, &v); err != nil {
		return v, fault.Transient("corrupt_"+what, err)
	}
	return v, nil
}
