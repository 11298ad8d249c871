package table

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	smithy "github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"

	"github.com/sebelas/sebelas/internal/telemetry"
)

// telemetryOption puts every call of a client on the process's metrics:
// calls, retries, throttled attempts, failures by code, latency and the
// capacity consumed. It asks DynamoDB for the consumed capacity (TOTAL) on
// every call that did not ask for it: the answer grows by a few bytes and
// the call costs the same.
func telemetryOption(o *dynamodb.Options) {
	o.APIOptions = append(o.APIOptions, addTelemetry)
}

type attemptsKey struct{}

func addTelemetry(stack *middleware.Stack) error {
	err := stack.Initialize.Add(middleware.InitializeMiddlewareFunc("sebelasTelemetryCall",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			op := awsmiddleware.GetOperationName(ctx)
			askCapacity(in.Parameters)
			start := time.Now()
			ctx = context.WithValue(ctx, attemptsKey{}, new(atomic.Int32))
			out, md, err := next.HandleInitialize(ctx, in)
			telemetry.DynamoCall(op)
			telemetry.DynamoSeconds(op, time.Since(start))
			if err != nil {
				telemetry.DynamoError(op, errorCode(err))
			}
			if units := consumed(out.Result); units > 0 {
				telemetry.DynamoCapacity(op, units)
			}
			return out, md, err
		}), middleware.Before)
	if err != nil {
		return err
	}
	attempt := middleware.FinalizeMiddlewareFunc("sebelasTelemetryAttempt",
		func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			op := awsmiddleware.GetOperationName(ctx)
			if n, ok := ctx.Value(attemptsKey{}).(*atomic.Int32); ok && n.Add(1) > 1 {
				telemetry.DynamoRetry(op)
			}
			out, md, err := next.HandleFinalize(ctx, in)
			if err != nil && throttled(err) {
				telemetry.DynamoThrottle(op)
			}
			return out, md, err
		})
	// After the retry middleware, so that each attempt passes through it.
	if err := stack.Finalize.Insert(attempt, "Retry", middleware.After); err != nil {
		return stack.Finalize.Add(attempt, middleware.After)
	}
	return nil
}

// askCapacity sets ReturnConsumedCapacity=TOTAL where the caller left it
// unset.
func askCapacity(p any) {
	const total = types.ReturnConsumedCapacityTotal
	switch in := p.(type) {
	case *dynamodb.GetItemInput:
		if in.ReturnConsumedCapacity == "" {
			in.ReturnConsumedCapacity = total
		}
	case *dynamodb.PutItemInput:
		if in.ReturnConsumedCapacity == "" {
			in.ReturnConsumedCapacity = total
		}
	case *dynamodb.UpdateItemInput:
		if in.ReturnConsumedCapacity == "" {
			in.ReturnConsumedCapacity = total
		}
	case *dynamodb.DeleteItemInput:
		if in.ReturnConsumedCapacity == "" {
			in.ReturnConsumedCapacity = total
		}
	case *dynamodb.QueryInput:
		if in.ReturnConsumedCapacity == "" {
			in.ReturnConsumedCapacity = total
		}
	case *dynamodb.TransactWriteItemsInput:
		if in.ReturnConsumedCapacity == "" {
			in.ReturnConsumedCapacity = total
		}
	case *dynamodb.TransactGetItemsInput:
		if in.ReturnConsumedCapacity == "" {
			in.ReturnConsumedCapacity = total
		}
	case *dynamodb.BatchWriteItemInput:
		if in.ReturnConsumedCapacity == "" {
			in.ReturnConsumedCapacity = total
		}
	case *dynamodb.BatchGetItemInput:
		if in.ReturnConsumedCapacity == "" {
			in.ReturnConsumedCapacity = total
		}
	}
}

// consumed returns the capacity units an answer reports (0 for none).
func consumed(r any) float64 {
	one := func(c *types.ConsumedCapacity) float64 {
		if c == nil || c.CapacityUnits == nil {
			return 0
		}
		return *c.CapacityUnits
	}
	list := func(cc []types.ConsumedCapacity) float64 {
		var sum float64
		for i := range cc {
			sum += one(&cc[i])
		}
		return sum
	}
	switch out := r.(type) {
	case *dynamodb.GetItemOutput:
		return one(out.ConsumedCapacity)
	case *dynamodb.PutItemOutput:
		return one(out.ConsumedCapacity)
	case *dynamodb.UpdateItemOutput:
		return one(out.ConsumedCapacity)
	case *dynamodb.DeleteItemOutput:
		return one(out.ConsumedCapacity)
	case *dynamodb.QueryOutput:
		return one(out.ConsumedCapacity)
	case *dynamodb.ScanOutput:
		return one(out.ConsumedCapacity)
	case *dynamodb.TransactWriteItemsOutput:
		return list(out.ConsumedCapacity)
	case *dynamodb.TransactGetItemsOutput:
		return list(out.ConsumedCapacity)
	case *dynamodb.BatchWriteItemOutput:
		return list(out.ConsumedCapacity)
	case *dynamodb.BatchGetItemOutput:
		return list(out.ConsumedCapacity)
	}
	return 0
}

// throttled uses classify.go's throttleCodes.
func throttled(err error) bool { return throttleCodes[errorCode(err)] }

// errorCode is the API error code of err, "canceled", "timeout" or
// "transport" for failures without one.
func errorCode(err error) string {
	var ae smithy.APIError
	switch {
	case errors.As(err, &ae):
		return ae.ErrorCode()
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	}
	return "transport"
}
