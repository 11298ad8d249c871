package table

import (
	"context"
	"sort"
	"sync"
	"sync/atomic"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"
)

// capacityScale is the fixed-point scale of capacity units (micro-units:
// DynamoDB reports halves for eventually consistent reads).
const capacityScale = 1_000_000

// Meter counts DynamoDB API calls, HTTP round trips and consumed capacity.
// It is safe for concurrent use; the zero value is ready.
//
//	var m table.Meter
//	client, _ := table.NewClient(ctx, cfg, m.Option())
//	... // run, passing ReturnConsumedCapacity=TOTAL and m.AddCapacity(out.ConsumedCapacity)
//	s := m.Snapshot()
type Meter struct {
	calls      atomic.Int64
	roundTrips atomic.Int64
	capacity   atomic.Int64 // in 1/capacityScale units
	byOp       sync.Map     // operation name -> *atomic.Int64 (round trips)
}

// MeterSnapshot is the state of a Meter at one time.
type MeterSnapshot struct {
	Calls      int64            // API calls made (one per client method call)
	RoundTrips int64            // HTTP attempts, retries included
	Capacity   float64          // consumed capacity units added with AddCapacity
	ByOp       map[string]int64 // round trips per operation name (PutItem, ...)
}

// Option returns a client option that counts every call and every HTTP
// attempt of a client: pass it to NewClient or to a single call.
func (m *Meter) Option() func(*dynamodb.Options) {
	return func(o *dynamodb.Options) {
		o.APIOptions = append(o.APIOptions, m.addMiddleware)
	}
}

func (m *Meter) addMiddleware(stack *middleware.Stack) error {
	err := stack.Initialize.Add(middleware.InitializeMiddlewareFunc("sebelasMeterCall",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			m.calls.Add(1)
			return next.HandleInitialize(ctx, in)
		}), middleware.Before)
	if err != nil {
		return err
	}
	attempt := middleware.FinalizeMiddlewareFunc("sebelasMeterAttempt",
		func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			m.roundTrips.Add(1)
			m.opCounter(awsmiddleware.GetOperationName(ctx)).Add(1)
			return next.HandleFinalize(ctx, in)
		})
	// After the retry middleware, so that each attempt passes through it.
	if err := stack.Finalize.Insert(attempt, "Retry", middleware.After); err != nil {
		return stack.Finalize.Add(attempt, middleware.After)
	}
	return nil
}

func (m *Meter) opCounter(op string) *atomic.Int64 {
	if c, ok := m.byOp.Load(op); ok {
		return c.(*atomic.Int64)
	}
	c, _ := m.byOp.LoadOrStore(op, new(atomic.Int64))
	return c.(*atomic.Int64)
}

// AddCapacity adds the capacity units of a list of ConsumedCapacity, as
// TransactWriteItems, BatchWriteItem and the like return them.
func (m *Meter) AddCapacity(cc []types.ConsumedCapacity) {
	for i := range cc {
		m.AddConsumed(&cc[i])
	}
}

// AddConsumed adds one ConsumedCapacity, as PutItem, UpdateItem, Query and
// the like return it; nil is ignored.
func (m *Meter) AddConsumed(c *types.ConsumedCapacity) {
	if c == nil || c.CapacityUnits == nil {
		return
	}
	m.capacity.Add(int64(*c.CapacityUnits*capacityScale + 0.5))
}

// Snapshot returns the counters so far.
func (m *Meter) Snapshot() MeterSnapshot {
	s := MeterSnapshot{
		Calls:      m.calls.Load(),
		RoundTrips: m.roundTrips.Load(),
		Capacity:   float64(m.capacity.Load()) / capacityScale,
		ByOp:       map[string]int64{},
	}
	m.byOp.Range(func(k, v any) bool {
		s.ByOp[k.(string)] = v.(*atomic.Int64).Load()
		return true
	})
	return s
}

// Sub returns s minus an earlier snapshot: what happened in between.
func (s MeterSnapshot) Sub(earlier MeterSnapshot) MeterSnapshot {
	d := MeterSnapshot{
		Calls:      s.Calls - earlier.Calls,
		RoundTrips: s.RoundTrips - earlier.RoundTrips,
		Capacity:   s.Capacity - earlier.Capacity,
		ByOp:       map[string]int64{},
	}
	for k, v := range s.ByOp {
		if n := v - earlier.ByOp[k]; n != 0 {
			d.ByOp[k] = n
		}
	}
	return d
}

// Ops returns the operation names of s.ByOp, sorted.
func (s MeterSnapshot) Ops() []string {
	ops := make([]string, 0, len(s.ByOp))
	for k := range s.ByOp {
		ops = append(ops, k)
	}
	sort.Strings(ops)
	return ops
}
