package table_test

import (
	"testing"

	"github.com/sebelas/sebelas/internal/devtools/ddbtest"
)

func TestMain(m *testing.M) { ddbtest.Main(m) }
