// Package tabledef is the single definition of sebelas's DynamoDB table.
//
// table.json is in the shape of the CreateTable request without TableName, so
// the same file feeds `aws dynamodb create-table --table-name sebelas
// --cli-input-json file://table.json`, internal/table.Create and anything
// else that needs the keys. The TTL attribute is not part of CreateTable (it
// is set with UpdateTimeToLive), so it lives here as TTLAttribute.
package tabledef

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
)

//go:embed table.json
var raw []byte

// Names of the keys, the index and the TTL attribute. Tests check that
// table.json agrees with them.
const (
	PartitionKey = "pk"
	SortKey      = "sk"
	GSI1         = "gsi1"
	GSI1PK       = "gsi1pk"
	GSI1SK       = "gsi1sk"
	TTLAttribute = "expires_at"
)

// Table is the parsed table.json: the fields of a CreateTable request that
// sebelas uses.
type Table struct {
	AttributeDefinitions   []AttributeDefinition
	KeySchema              []KeyElement
	GlobalSecondaryIndexes []GlobalSecondaryIndex
	BillingMode            string
}

// AttributeDefinition names a key attribute and its scalar type (S, N, B).
type AttributeDefinition struct {
	AttributeName string
	AttributeType string
}

// KeyElement is one element of a key schema; KeyType is HASH or RANGE.
type KeyElement struct {
	AttributeName string
	KeyType       string
}

// GlobalSecondaryIndex is a GSI of the table.
type GlobalSecondaryIndex struct {
	IndexName  string
	KeySchema  []KeyElement
	Projection Projection
}

// Projection says which attributes a GSI copies; ProjectionType is ALL,
// KEYS_ONLY or INCLUDE.
type Projection struct {
	ProjectionType   string
	NonKeyAttributes []string `json:",omitempty"`
}

var parsed = mustParse(raw)

// Definition returns a copy of the parsed table definition.
func Definition() Table { return parsed.clone() }

// JSON returns a copy of table.json as embedded.
func JSON() []byte { return bytes.Clone(raw) }

// Parse decodes a table definition strictly (unknown fields are errors) and
// checks that it is internally consistent.
func Parse(b []byte) (Table, error) {
	var t Table
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&t); err != nil {
		return Table{}, fmt.Errorf("tabledef: %w", err)
	}
	if err := t.validate(); err != nil {
		return Table{}, fmt.Errorf("tabledef: %w", err)
	}
	return t, nil
}

func mustParse(b []byte) Table {
	t, err := Parse(b)
	if err != nil {
		panic(err)
	}
	return t
}

func (t Table) validate() error {
	defined := map[string]bool{}
	for _, a := range t.AttributeDefinitions {
		switch a.AttributeType {
		case "S", "N", "B":
		default:
			return fmt.Errorf("attribute %q: bad type %q", a.AttributeName, a.AttributeType)
		}
		defined[a.AttributeName] = true
	}
	check := func(what string, ks []KeyElement) error {
		if len(ks) == 0 || len(ks) > 2 || ks[0].KeyType != "HASH" || (len(ks) == 2 && ks[1].KeyType != "RANGE") {
			return fmt.Errorf("%s: key schema must be HASH [RANGE], got %+v", what, ks)
		}
		for _, k := range ks {
			if !defined[k.AttributeName] {
				return fmt.Errorf("%s: key %q has no attribute definition", what, k.AttributeName)
			}
		}
		return nil
	}
	if err := check("table", t.KeySchema); err != nil {
		return err
	}
	for _, g := range t.GlobalSecondaryIndexes {
		if g.IndexName == "" {
			return fmt.Errorf("index without a name")
		}
		if err := check("index "+g.IndexName, g.KeySchema); err != nil {
			return err
		}
	}
	switch t.BillingMode {
	case "PAY_PER_REQUEST", "PROVISIONED":
	default:
		return fmt.Errorf("bad billing mode %q", t.BillingMode)
	}
	return nil
}

func (t Table) clone() Table {
	c := t
	c.AttributeDefinitions = append([]AttributeDefinition(nil), t.AttributeDefinitions...)
	c.KeySchema = append([]KeyElement(nil), t.KeySchema...)
	c.GlobalSecondaryIndexes = make([]GlobalSecondaryIndex, len(t.GlobalSecondaryIndexes))
	for i, g := range t.GlobalSecondaryIndexes {
		g.KeySchema = append([]KeyElement(nil), g.KeySchema...)
		g.Projection.NonKeyAttributes = append([]string(nil), g.Projection.NonKeyAttributes...)
		c.GlobalSecondaryIndexes[i] = g
	}
	return c
}
