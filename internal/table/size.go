package table

import (
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// ItemBytes is DynamoDB's size of an item as it bills it: for each attribute
// the UTF-8 length of its name plus the size of its value. Numbers count as
// one byte per two significant digits plus one, which is DynamoDB's published
// upper bound; the result is therefore never below the billed size.
func ItemBytes(item map[string]types.AttributeValue) int {
	n := 0
	for name, v := range item {
		n += len(name) + valueBytes(v)
	}
	return n
}

func valueBytes(v types.AttributeValue) int {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return len(v.Value)
	case *types.AttributeValueMemberN:
		digits := 0
		for _, c := range v.Value {
			if c >= '0' && c <= '9' {
				digits++
			}
		}
		return (digits+1)/2 + 1
	case *types.AttributeValueMemberB:
		return len(v.Value)
	case *types.AttributeValueMemberBOOL, *types.AttributeValueMemberNULL:
		return 1
	case *types.AttributeValueMemberSS:
		n := 0
		for _, s := range v.Value {
			n += len(s)
		}
		return n
	case *types.AttributeValueMemberNS:
		n := 0
		for _, s := range v.Value {
			n += valueBytes(&types.AttributeValueMemberN{Value: s})
		}
		return n
	case *types.AttributeValueMemberBS:
		n := 0
		for _, b := range v.Value {
			n += len(b)
		}
		return n
	case *types.AttributeValueMemberL:
		n := 3 // list overhead
		for _, e := range v.Value {
			n += 1 + valueBytes(e)
		}
		return n
	case *types.AttributeValueMemberM:
		n := 3 // map overhead
		for k, e := range v.Value {
			n += 1 + len(k) + valueBytes(e)
		}
		return n
	}
	return 0
}

// TransactWriteWCU is what real DynamoDB bills for a TransactWriteItems on
// items of these sizes: two write capacity units per started kilobyte of
// each item (transactions cost twice a plain write).
func TransactWriteWCU(itemBytes ...int) int {
	wcu := 0
	for _, b := range itemBytes {
		kb := (b + 1023) / 1024
		if kb == 0 {
			kb = 1
		}
		wcu += 2 * kb
	}
	return wcu
}

// WriteWCU is what real DynamoDB bills for plain writes (PutItem,
// UpdateItem, DeleteItem) of items of these sizes: one write capacity unit
// per started kilobyte of each (for an update, of the larger of the item
// before and after).
func WriteWCU(itemBytes ...int) int {
	return TransactWriteWCU(itemBytes...) / 2
}
