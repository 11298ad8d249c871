package main

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/sebelas/sebelas/internal/table"
)

// dynamoClient is the CLI's DynamoDB client: table.NewClient with the AWS
// SDK's full default credential chain (shared config and profiles, SSO,
// everything an operator's laptop has). The functions use table's lean pod
// chain instead, which keeps those packages out of their binaries.
func dynamoClient(ctx context.Context, tc table.Config) (*dynamodb.Client, error) {
	if tc.Endpoint == "" && tc.Credentials == nil {
		cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(tc.Region))
		if err != nil {
			return nil, fmt.Errorf("load AWS config: %w", err)
		}
		tc.Credentials = cfg.Credentials
	}
	return table.NewClient(ctx, tc)
}
