package table

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

func TestItemBytesAndWCU(t *testing.T) {
	item := map[string]types.AttributeValue{
		"pk":      &types.AttributeValueMemberS{Value: "W#w-1"},              // 2+5
		"balance": &types.AttributeValueMemberN{Value: "1250000"},            // 7 + (7+1)/2+1 = 12
		"ok":      &types.AttributeValueMemberBOOL{Value: true},              // 2+1
		"tags":    &types.AttributeValueMemberSS{Value: []string{"ab", "c"}}, // 4+3
	}
	if got, want := ItemBytes(item), 7+12+3+7; got != want {
		t.Errorf("ItemBytes = %d, want %d", got, want)
	}
	tests := []struct {
		sizes []int
		want  int
	}{
		{[]int{300, 150}, 4},
		{[]int{1024, 1}, 4},
		{[]int{1025, 150}, 6},
		{[]int{0}, 2},
	}
	for _, tt := range tests {
		if got := TransactWriteWCU(tt.sizes...); got != tt.want {
			t.Errorf("TransactWriteWCU(%v) = %d, want %d", tt.sizes, got, tt.want)
		}
	}
}
