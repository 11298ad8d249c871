package fraud

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/sebelas/sebelas/internal/fault"
	"github.com/sebelas/sebelas/internal/ledger"
	"github.com/sebelas/sebelas/internal/money"
	"github.com/sebelas/sebelas/internal/table"
)

// Keys of fraud's items. They are part of the stored format.
const (
	velocityPrefix = "V#"  // V#<wallet>#<currency> / V: the counters (velocity.go)
	velocitySK     = "V"   //
	devicePrefix   = "VD#" // VD#<device hash> / VD: new wallets per device
	deviceSK       = "VD"
	kindVelocity   = "velocity"
	kindDevice     = "device_wallets"
)

// Attribute names of the counters item (short: every byte is written on
// every payment).
const (
	attrLastAt    = "la"
	attrFirstAt   = "fs"
	attrHistCount = "hn"
	attrHistSum   = "hs"
	attrDevices   = "dv"
	attrPayees    = "py"
	attrCountry   = "lc"
	attrNewDevice = "nd"
	attrNewDevAt  = "nt"
	attrWallets   = "wl"
	attrFirstIn   = "fi" // flows.go
	attrLastIn    = "li"
	attrExpires   = "expires_at" // the table's TTL attribute
	attrKind      = "kind"
)

// writeAttemptsMax bounds the planned writes after a refused blind one. Each
// refusal with a changed item means another payment of the same wallet
// landed in between; four in a row is contention worth a Broker retry.
const writeAttemptsMax = 4

// recentNames[i] is the attribute of redelivery slot i.
var recentNames = func() (n [recentEvents]string) {
	for i := range n {
		n[i] = "e" + strconv.Itoa(i)
	}
	return n
}()

// attrIndex maps a slot or redelivery attribute name to where it decodes.
var attrIndex = func() map[string][2]int {
	m := map[string][2]int{}
	for r := range rings {
		for s, n := range slotNames[r] {
			m[n] = [2]int{r, s}
		}
	}
	for i, n := range recentNames {
		m[n] = [2]int{-1, i}
	}
	for i, n := range payeeSlotNames {
		m[n] = [2]int{-2, i}
	}
	for i, n := range inflowSlotNames {
		m[n] = [2]int{-3, i}
	}
	return m
}()

func walletPK(wallet, currency string) string { return velocityPrefix + wallet + "#" + currency }

// DB is the part of the DynamoDB API the store uses.
type DB interface {
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
}

// BalanceReader reads a wallet's balance; *ledger.Store is one.
type BalanceReader interface {
	GetBalance(ctx context.Context, wallet string, cur money.Currency) (ledger.Balance, bool, error)
}

var _ BalanceReader = (*ledger.Store)(nil)

// DynamoStore keeps fraud's features in the table: one counters item per
// wallet and currency, one new-wallets item per device.
//
// Round trips per screened payment: ONE UpdateItem, plus
//   - a second UpdateItem for the rare refused blind write (velocity.go);
//   - one UpdateItem on the device item for a wallet's first payment that
//     names a device (the coupon-farm signal belongs to the device, and a new
//     wallet has no history to read anyway);
//   - one GetItem of the balance when the payment is at least the market's
//     t.balance_check_min, issued in parallel with the counters update, so
//     it costs capacity but no latency. Small payments cannot drain a wallet
//     in a way worth a read each.
type DynamoStore struct {
	db     DB
	table  string
	ledger BalanceReader
}

// NewDynamoStore returns a store on table. balances may be nil (no balance
// feature).
func NewDynamoStore(db DB, tableName string, balances BalanceReader) *DynamoStore {
	if db == nil || tableName == "" {
		panic("fraud.NewDynamoStore: db and table are required")
	}
	return &DynamoStore{db: db, table: tableName, ledger: balances}
}

// Observe implements Store.
func (s *DynamoStore) Observe(ctx context.Context, p Payment, wantBalance bool) (Observed, error) {
	w := newWrite(p)
	var (
		wg     sync.WaitGroup
		bal    ledger.Balance
		balOK  bool
		balErr error
	)
	if wantBalance && s.ledger != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			bal, balOK, balErr = s.ledger.GetBalance(ctx, p.Wallet, money.Currency(p.Currency))
		}()
	}
	var (
		recv    walletState
		recvErr error
	)
	in, toWallet := inflowOf(p)
	if toWallet {
		wg.Add(1)
		go func() {
			defer wg.Done()
			recv, recvErr = s.receive(ctx, in)
		}()
	}
	o, err := s.observeWallet(ctx, p, w)
	if err == nil && youngWallet(o) && w.deviceHash != "" {
		o.DeviceWallets, err = s.deviceWallets(ctx, w, shortHash("wallet", p.Wallet))
	}
	wg.Wait()
	if err != nil {
		return Observed{}, err
	}
	if balErr != nil {
		return Observed{}, balErr
	}
	if recvErr != nil {
		return Observed{}, recvErr
	}
	if toWallet {
		o.Receiver = recv.receiverOf(in)
	}
	if wantBalance && s.ledger != nil {
		o.BalanceKnown = true
		if balOK {
			o.Balance = bal.Balance
		}
	}
	return o, nil
}

func (s *DynamoStore) observeWallet(ctx context.Context, p Payment, w write) (Observed, error) {
	key := map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: walletPK(p.Wallet, p.Currency)},
		"sk": &types.AttributeValueMemberS{Value: velocitySK},
	}
	var old *walletState // nil: blind write
	for range writeAttemptsMax {
		expr := counterUpdate(w, old)
		out, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName:                           aws.String(s.table),
			Key:                                 key,
			UpdateExpression:                    expr.update,
			ConditionExpression:                 expr.condition,
			ExpressionAttributeNames:            expr.names,
			ExpressionAttributeValues:           expr.values,
			ReturnValues:                        types.ReturnValueAllOld,
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		})
		if err == nil {
			before, derr := decodeWallet(out.Attributes)
			if derr != nil {
				return Observed{}, derr
			}
			return before.observe(w, false), nil
		}
		var ccf *types.ConditionalCheckFailedException
		if !errors.As(err, &ccf) {
			return Observed{}, table.Classify(err)
		}
		item := ccf.Item
		if len(item) == 0 {
			// Emulators may not return the old image on a failed
			// condition; read it (only on this rare path).
			got, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.table), Key: key, ConsistentRead: aws.Bool(true)})
			if err != nil {
				return Observed{}, table.Classify(err)
			}
			item = got.Item
		}
		st, derr := decodeWallet(item)
		if derr != nil {
			return Observed{}, derr
		}
		if _, dup := st.check(w); dup {
			return st.observe(w, true), nil
		}
		old = &st
	}
	return Observed{}, fault.Transient("velocity_contention", fmt.Errorf("counters of one wallet changed %d times during one update", writeAttemptsMax))
}

// receive records an inflow on the receiver's counters item with ONE
// UpdateItem, without condition (the slot is overwritten, first and last
// arrival are idempotent), and returns the item as it was (ALL_OLD).
func (s *DynamoStore) receive(ctx context.Context, in Inflow) (walletState, error) {
	i, slot := in.slot()
	now := expression.Value(in.At)
	fi := expression.Name(attrFirstIn)
	upd := expression.Set(expression.Name(inflowSlotNames[i]), expression.Value(slot.encode())).
		Set(fi, expression.IfNotExists(fi, now)).
		Set(expression.Name(attrLastIn), now).
		Set(expression.Name(attrKind), expression.Value(kindVelocity)).
		Set(expression.Name(attrExpires), expression.Value(in.At+int64(walletTTL.Seconds())))
	expr, err := expression.NewBuilder().WithUpdate(upd).Build()
	if err != nil {
		panic(fmt.Sprintf("fraud: inflow update: %v", err)) // built from constants and numbers
	}
	out, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table),
		Key: map[string]types.AttributeValue{
			"pk": &types.AttributeValueMemberS{Value: walletPK(in.Wallet, in.Currency)},
			"sk": &types.AttributeValueMemberS{Value: velocitySK},
		},
		UpdateExpression: expr.Update(), ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
		ReturnValues: types.ReturnValueAllOld,
	})
	if err != nil {
		return walletState{}, table.Classify(err)
	}
	return decodeWallet(out.Attributes)
}

// packed is one payment's contribution to a slot: sum*packBase + count.
func packed(amount int64) string {
	if amount == 0 {
		return "1"
	}
	return strconv.FormatInt(amount, 10) + "000000001"
}

// stringSet marshals as a DynamoDB string set (a []string would be a list).
type stringSet []string

func (s stringSet) MarshalDynamoDBAttributeValue() (types.AttributeValue, error) {
	return &types.AttributeValueMemberSS{Value: s}, nil
}

// counterInput is one counters UpdateItem's expressions.
type counterInput struct {
	update, condition *string
	names             map[string]string
	values            map[string]types.AttributeValue
}

// counterUpdate builds the update of w. old == nil is the blind first write,
// whose condition (mirrored by walletState.check) refuses a redelivery, a
// stale own slot, a new device and a full payee set; otherwise the write is
// planned from old and conditioned on old still being the item (hn, bumped by
// every write).
//
// The condition is built with the expression builder. The update is written
// out here: it names ~140 attributes (the REMOVE of every slot outside the
// windows), for which the builder costs ~190 µs of CPU per payment; these
// names and placeholders are constants of this file, never input.
func counterUpdate(w write, old *walletState) counterInput {
	p := blindPlan(w)
	if old != nil {
		p = old.planFor(w)
	}
	in := counterInput{names: map[string]string{}, values: map[string]types.AttributeValue{}}
	name := func(attr string) string {
		ph := "#" + attr
		in.names[ph] = attr
		return ph
	}
	num := func(ph string, v string) string {
		in.values[ph] = &types.AttributeValueMemberN{Value: v}
		return ph
	}
	str := func(ph string, v string) string {
		in.values[ph] = &types.AttributeValueMemberS{Value: v}
		return ph
	}
	set := func(ph string, v string) string {
		in.values[ph] = &types.AttributeValueMemberSS{Value: []string{v}}
		return ph
	}
	var sets, adds, removes []string
	now := num(":now", strconv.FormatInt(w.now, 10))
	sets = append(sets,
		name(attrLastAt)+" = "+now,
		name(attrFirstAt)+" = if_not_exists("+name(attrFirstAt)+", "+now+")",
		name(recentNames[w.recentSlot])+" = "+str(":ev", w.eventHash),
		name(attrExpires)+" = "+num(":exp", strconv.FormatInt(w.now+int64(walletTTL.Seconds()), 10)),
		name(attrKind)+" = "+str(":kind", kindVelocity))
	adds = append(adds, name(attrHistCount)+" "+num(":one", "1"), name(attrHistSum)+" "+num(":amt", strconv.FormatInt(w.amount, 10)))
	pk := num(":pk", packed(w.amount))
	for r, rg := range rings {
		cur := rg.bucket(w.now)
		own := name(slotNames[r][rg.slotOf(cur)])
		if p.overwrite[r] {
			sets = append(sets, own+" = "+pk)
		} else {
			adds = append(adds, own+" "+pk)
		}
		for j := range int(rg.slots) {
			if !rg.liveAt(j, cur) {
				removes = append(removes, name(slotNames[r][j]))
			}
		}
	}
	if p.addDevice {
		adds = append(adds, name(attrDevices)+" "+set(":dset", w.deviceHash))
	}
	if p.addPayee {
		adds = append(adds, name(attrPayees)+" "+set(":pset", w.payeeHash))
	}
	if p.newDevice {
		sets = append(sets, name(attrNewDevice)+" = "+str(":dh", w.deviceHash), name(attrNewDevAt)+" = "+now)
	}
	if w.country != "" {
		sets = append(sets, name(attrCountry)+" = "+str(":lc", w.country))
	}
	if w.payeeHash != "" {
		ps := flowSlot{hash: flowHash(w.payeeHash), at: w.now, amount: w.amount}
		sets = append(sets, name(payeeSlotNames[flowIndex(w.payeeHash, recentPayees)])+" = "+str(":q", ps.encode()))
	}
	update := "SET " + strings.Join(sets, ", ") + " ADD " + strings.Join(adds, ", ") + " REMOVE " + strings.Join(removes, ", ")
	in.update = &update

	// The condition, with the builder (its placeholders are #0, :0, ...).
	la := expression.Name(attrLastAt)
	var cond expression.ConditionBuilder
	switch {
	case old == nil:
		recent := expression.Name(recentNames[w.recentSlot])
		cond = expression.Or(expression.AttributeNotExists(recent), recent.NotEqual(expression.Value(w.eventHash)))
		for r, rg := range rings {
			// Adding to the own slot is right only if it is empty or
			// already this bucket's (la in this bucket or later).
			cur := rg.bucket(w.now)
			slotName := expression.Name(slotNames[r][rg.slotOf(cur)])
			cond = cond.And(expression.Or(expression.AttributeNotExists(slotName),
				la.GreaterThanEqual(expression.Value(cur*rg.widthS))))
		}
		if w.deviceHash != "" {
			// Only a device the wallet knows, or its first: a new one is
			// noted by the planned write.
			dv := expression.Name(attrDevices)
			cond = cond.And(expression.Or(expression.AttributeNotExists(dv), expression.Contains(dv, w.deviceHash)))
		}
		if w.payeeHash != "" {
			py := expression.Name(attrPayees)
			cond = cond.And(expression.Or(expression.AttributeNotExists(py),
				py.Size().LessThan(expression.Value(payeesMax)), expression.Contains(py, w.payeeHash)))
		}
	case old.exists && old.histCount > 0:
		// An item written only by inflows (flows.go) has no hn yet.
		cond = expression.Name(attrHistCount).Equal(expression.Value(old.histCount))
	default:
		cond = expression.AttributeNotExists(expression.Name(attrHistCount))
	}
	expr, err := expression.NewBuilder().WithCondition(cond).Build()
	if err != nil {
		panic(fmt.Sprintf("fraud: counter condition: %v", err)) // built from constants and numbers
	}
	in.condition = expr.Condition()
	for k, v := range expr.Names() {
		in.names[k] = v
	}
	for k, v := range expr.Values() {
		in.values[k] = v
	}
	return in
}

// decodeWallet reads a counters item. Unknown attributes are ignored (pk,
// sk, kind, expires_at, attributes of a later version).
func decodeWallet(item map[string]types.AttributeValue) (walletState, error) {
	var st walletState
	if len(item) == 0 {
		return st, nil
	}
	st.exists = true
	num := func(name string, av types.AttributeValue) (int64, error) {
		n, ok := av.(*types.AttributeValueMemberN)
		if !ok {
			return 0, fmt.Errorf("%s is not a number", name)
		}
		return strconv.ParseInt(n.Value, 10, 64)
	}
	set := func(av types.AttributeValue) map[string]bool {
		ss, ok := av.(*types.AttributeValueMemberSS)
		if !ok {
			return nil
		}
		m := make(map[string]bool, len(ss.Value))
		for _, v := range ss.Value {
			m[v] = true
		}
		return m
	}
	var err error
	for name, av := range item {
		switch name {
		case attrLastAt:
			st.lastAt, err = num(name, av)
		case attrFirstAt:
			st.firstAt, err = num(name, av)
		case attrHistCount:
			st.histCount, err = num(name, av)
		case attrHistSum:
			st.histSum, err = num(name, av)
		case attrDevices:
			st.devices = set(av)
		case attrPayees:
			st.payees = set(av)
		case attrCountry:
			if s, ok := av.(*types.AttributeValueMemberS); ok {
				st.lastCountry = s.Value
			}
		case attrNewDevice:
			if s, ok := av.(*types.AttributeValueMemberS); ok {
				st.newDevice = s.Value
			}
		case attrNewDevAt:
			st.newDeviceAt, err = num(name, av)
		case attrFirstIn:
			st.firstIn, err = num(name, av)
		case attrLastIn:
			st.lastIn, err = num(name, av)
		default:
			idx, ok := attrIndex[name]
			if !ok {
				continue
			}
			if idx[0] < 0 {
				s, ok := av.(*types.AttributeValueMemberS)
				if !ok {
					continue
				}
				switch idx[0] {
				case -1:
					st.recent[idx[1]] = s.Value
				case -2:
					st.payeesRecent[idx[1]], _ = decodeFlowSlot(s.Value)
				case -3:
					st.inflows[idx[1]], _ = decodeFlowSlot(s.Value)
				}
				continue
			}
			n, ok := av.(*types.AttributeValueMemberN)
			if !ok {
				return st, fault.Transient("corrupt_velocity", fmt.Errorf("slot %s is not a number", name))
			}
			sl, perr := unpack(n.Value)
			if perr != nil {
				return st, fault.Transient("corrupt_velocity", fmt.Errorf("slot %s: %w", name, perr))
			}
			st.slots[idx[0]][idx[1]] = sl
			st.present[idx[0]][idx[1]] = true
		}
		if err != nil {
			return st, fault.Transient("corrupt_velocity", err)
		}
	}
	return st, nil
}

// packDigits is the number of decimal digits of packBase's count part.
const packDigits = 9

func unpack(v string) (slot, error) {
	if len(v) <= packDigits {
		c, err := strconv.ParseInt(v, 10, 64)
		return slot{count: c}, err
	}
	c, err := strconv.ParseInt(v[len(v)-packDigits:], 10, 64)
	if err != nil {
		return slot{}, err
	}
	s, err := strconv.ParseInt(v[:len(v)-packDigits], 10, 64)
	return slot{count: c, sum: s}, err
}

// deviceWallets adds a new wallet to its device's item and returns how many
// new wallets the device has seen in the coupon-farm window.
func (s *DynamoStore) deviceWallets(ctx context.Context, w write, walletHash string) (int64, error) {
	key := map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: devicePrefix + w.deviceHash},
		"sk": &types.AttributeValueMemberS{Value: deviceSK},
	}
	wl, exp := expression.Name(attrWallets), expression.Name(attrExpires)
	upd := expression.
		Add(wl, expression.Value(stringSet{walletHash})).
		Set(exp, expression.Value(w.now+int64(deviceTTL.Seconds()))).
		Set(expression.Name(attrKind), expression.Value(kindDevice))
	// Live (not past its TTL: DynamoDB deletes expired items late) and not
	// full; otherwise the old image decides below.
	cond := expression.Or(expression.AttributeNotExists(expression.Name("pk")),
		expression.And(exp.GreaterThanEqual(expression.Value(w.now)),
			expression.Or(wl.Size().LessThan(expression.Value(deviceWalletsMax)), expression.Contains(wl, walletHash))))
	expr, err := expression.NewBuilder().WithUpdate(upd).WithCondition(cond).Build()
	if err != nil {
		panic(err)
	}
	out, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: key,
		UpdateExpression: expr.Update(), ConditionExpression: expr.Condition(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
		ReturnValues:                        types.ReturnValueUpdatedNew,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if err == nil {
		if ss, ok := out.Attributes[attrWallets].(*types.AttributeValueMemberSS); ok {
			return int64(len(ss.Value)), nil
		}
		return 1, nil
	}
	var ccf *types.ConditionalCheckFailedException
	if !errors.As(err, &ccf) {
		return 0, table.Classify(err)
	}
	old := ccf.Item
	if len(old) == 0 {
		got, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.table), Key: key, ConsistentRead: aws.Bool(true)})
		if err != nil {
			return 0, table.Classify(err)
		}
		old = got.Item
	}
	var d struct {
		Wallets   []string `dynamodbav:"wl,stringset"`
		ExpiresAt int64    `dynamodbav:"expires_at"`
	}
	if err := attributevalue.UnmarshalMap(old, &d); err != nil {
		return 0, fault.Transient("corrupt_device_wallets", err)
	}
	if d.ExpiresAt >= w.now {
		return int64(len(d.Wallets)), nil // full: count saturates
	}
	// Expired but not yet deleted: start the window again, unless another
	// payment already did.
	reset, err := expression.NewBuilder().
		WithUpdate(expression.
			Set(wl, expression.Value(stringSet{walletHash})).
			Set(exp, expression.Value(w.now+int64(deviceTTL.Seconds()))).
			Set(expression.Name(attrKind), expression.Value(kindDevice))).
		WithCondition(exp.Equal(expression.Value(d.ExpiresAt))).
		Build()
	if err != nil {
		panic(err)
	}
	_, err = s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: key,
		UpdateExpression: reset.Update(), ConditionExpression: reset.Condition(),
		ExpressionAttributeNames: reset.Names(), ExpressionAttributeValues: reset.Values(),
	})
	if errors.As(err, &ccf) {
		return 0, fault.Transient("velocity_contention", errors.New("device item changed during its reset"))
	}
	if err != nil {
		return 0, table.Classify(err)
	}
	return 1, nil
}
