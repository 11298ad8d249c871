package table_test

import (
	"testing"

	"github.com/sebelas/sebelas/internal/ddbtest"
)

func TestMain(m *testing.M) { ddbtest.Main(m) }
