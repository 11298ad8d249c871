package fraud

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/sebelas/sebelas/internal/table"
)

// CountersBytes is the stored size of a wallet's counters item in a
// currency (0 when there is none): every screening rewrites it, so it is
// what real DynamoDB bills fraud's write by. The benchmark reports it.
func (s *DynamoStore) CountersBytes(ctx context.Context, wallet, currency string) (int, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(s.table), ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{
			"pk": &types.AttributeValueMemberS{Value: walletPK(wallet, currency)},
			"sk": &types.AttributeValueMemberS{Value: velocitySK},
		},
	})
	if err != nil {
		return 0, table.Classify(err)
	}
	return table.ItemBytes(out.Item), nil
}
