package fraud

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strings"

	"cel.dev/cel-go/checker"
	"cel.dev/cel-go/common"
	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/containers"
	"cel.dev/cel-go/common/decls"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/stdlib"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/interpreter"
	"cel.dev/cel-go/parser"
	"go.yaml.in/yaml/v3"

	"github.com/sebelas/sebelas/events"
	"github.com/sebelas/sebelas/internal/market"
)

// A rule set is written by the risk team as YAML (the data of the ConfigMap
// fraud-rules, see infra/knative/fraud-rules.yaml and docs/fraud.md):
//
//	version: "2026.11.1"          # becomes screening.rules_version
//	markets:                      # thresholds, by market; "default" for all
//	  default: {review_score: 400, deny_score: 700, large_amount: 5000000}
//	  PH:      {large_amount: 2000000}
//	lists:                        # named lists, tested with `x in lists.name`
//	  blocked_wallets: [w-123]
//	rules:
//	  - name: large_new_device    # unique
//	    reason: new_device_large  # reported when it fires
//	    score: 350                # added when it fires (may be negative)
//	    when: new_device && amount >= t.large_amount   # CEL, bool
//	    kinds: [charge]           # optional: charge, topup
//	    markets: [ID, PH]         # optional
//
// The score of a payment is the sum of the scores of the rules that fire,
// clamped to 0..1000; at or above the market's deny_score it is denied, at
// or above review_score it is held for review.

// Limits on a rule set: it comes from a file people edit at midnight.
const (
	rulesBytesMax      = 256 << 10
	rulesMax           = 256
	whenBytesMax       = 2048
	listsMax           = 32
	listEntriesMax     = 10_000
	listEntryBytesMax  = 64
	thresholdsMax      = 128
	nameBytesMax       = 64
	reasonsPerEventMax = 32 // the schema's maxItems for screening.reasons
	// whenNodesMax and whenDepthMax bound a rule's syntax tree. Rules have
	// no loops (the comprehension macros exists, all, map, filter are not
	// enabled: only has()), so a rule's evaluation costs at most one step
	// per node; these bounds are its cost limit.
	whenNodesMax = 512
	whenDepthMax = 32
)

// Thresholds every market must have, after defaults.
const (
	thresholdReview       = "review_score"
	thresholdDeny         = "deny_score"
	thresholdBalanceCheck = "balance_check_min" // optional: read the balance at or above
	marketDefault         = "default"
)

// ReasonRuleError is added when a rule fails to evaluate: the rule counts as
// not fired (one broken rule must not decline every payment at midnight),
// and the reason makes it visible in every screened event and in the logs.
const ReasonRuleError = "rule_error"

var (
	namePattern   = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)
	reasonPattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`) // events' reasonCode
	idPattern     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$`)
)

// ruleFile is the YAML document.
type ruleFile struct {
	Version string                        `yaml:"version"`
	Markets map[string]map[string]float64 `yaml:"markets"`
	Lists   map[string][]string           `yaml:"lists"`
	Rules   []ruleSpec                    `yaml:"rules"`
}

type ruleSpec struct {
	Name    string   `yaml:"name"`
	Reason  string   `yaml:"reason"`
	Score   int      `yaml:"score"`
	When    string   `yaml:"when"`
	Kinds   []string `yaml:"kinds"`
	Markets []string `yaml:"markets"`
}

// configMap is the shape of a Kubernetes ConfigMap file; the rules are its
// data key RulesKey. A bare rule document is accepted too.
type configMap struct {
	APIVersion string            `yaml:"apiVersion"`
	Kind       string            `yaml:"kind"`
	Data       map[string]string `yaml:"data"`
}

// RulesKey is the ConfigMap data key (and mounted file name) of the rules.
const RulesKey = "rules.yaml"

type rule struct {
	spec    ruleSpec
	program interpreter.Interpretable
	ast     *celast.AST
}

// Ruleset is one compiled, validated rule set. It is immutable and safe for
// concurrent use.
type Ruleset struct {
	Version string
	// Hash is the SHA-256 of the rule document, to tell reloads apart.
	Hash string
	// byMarket[i][k] are the rules applying to market i (market.All order)
	// and kind k (0 charge, 1 topup), in file order.
	byMarket   [][2][]*rule
	thresholds []map[string]float64 // by market index
	tVals      []ref.Val            // the same, as CEL values
	lists      ref.Val
	codes      map[string]int // market code -> index
	rules      int
}

// RuleError is a rule set refused at load, with every problem found.
type RuleError struct {
	Problems []string
}

func (e *RuleError) Error() string {
	return "fraud rules rejected: " + strings.Join(e.Problems, "; ")
}

// ParseRules reads and compiles a rule set from a YAML document, either the
// rules themselves or a ConfigMap whose data[RulesKey] holds them.
func ParseRules(data []byte) (*Ruleset, error) { return ParseRulesWithLists(data, nil) }

// ParseRulesWithLists is ParseRules with entries added to named lists (the
// operator's emergency blocklists from the environment, see ListsFromEnv).
func ParseRulesWithLists(data []byte, extra map[string][]string) (*Ruleset, error) {
	if len(data) > rulesBytesMax {
		return nil, &RuleError{[]string{fmt.Sprintf("file is %d bytes, at most %d", len(data), rulesBytesMax)}}
	}
	var probe configMap
	if err := yaml.Unmarshal(data, &probe); err == nil && probe.Kind == "ConfigMap" {
		doc, ok := probe.Data[RulesKey]
		if !ok {
			return nil, &RuleError{[]string{fmt.Sprintf("ConfigMap has no data key %q", RulesKey)}}
		}
		data = []byte(doc)
	}
	var f ruleFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true) // a typo in a field name must not silently drop a rule
	if err := dec.Decode(&f); err != nil {
		return nil, &RuleError{[]string{"YAML: " + err.Error()}}
	}
	if len(extra) > 0 && f.Lists == nil {
		f.Lists = map[string][]string{}
	}
	for name, entries := range extra {
		f.Lists[name] = append(f.Lists[name], entries...)
	}
	sum := sha256.Sum256(data)
	return compileRules(f, hex.EncodeToString(sum[:]))
}

// celEnvironment compiles rules: the parser, the type checker with the
// features, t and lists declared, and the interpreter with CEL's standard
// functions. It uses cel-go's parser, checker and interpreter packages
// directly rather than the cel package, which links text/template and
// protobuf's reflective formatting and with them switches off the linker's
// dead-method elimination: that alone made the fraud binary 27 MB against
// the 25 MB budget of a function image.
type celEnvironment struct {
	parser  *parser.Parser
	checker *checker.Env
	interp  interpreter.Interpreter
}

// celEnv is built once; compiling against it is safe concurrently.
var celEnv = func() *celEnvironment {
	must := func(err error) {
		if err != nil {
			panic(fmt.Sprintf("fraud: CEL environment: %v", err))
		}
	}
	reg, err := types.NewRegistry()
	must(err)
	p, err := parser.NewParser(
		parser.Macros(parser.HasMacro),
		parser.ExpressionSizeCodePointLimit(whenBytesMax),
		parser.MaxExpressionNodeCount(whenNodesMax),
		parser.MaxRecursionDepth(whenDepthMax),
	)
	must(err)
	// amount >= t.large_amount compares an int with a double.
	chk, err := checker.NewEnv(containers.DefaultContainer, reg, checker.CrossTypeNumericComparisons(true))
	must(err)
	vars := []*decls.VariableDecl{
		decls.NewVariable(varThresholds, types.NewMapType(types.StringType, types.DoubleType)),
		decls.NewVariable(varLists, types.NewMapType(types.StringType, types.NewMapType(types.StringType, types.BoolType))),
	}
	for _, v := range featureVars {
		vars = append(vars, decls.NewVariable(v.name, v.typ))
	}
	must(chk.AddIdents(append(vars, stdlib.Types()...)...))
	must(chk.AddFunctions(stdlib.Functions()...))
	disp := interpreter.NewDispatcher()
	for _, fn := range stdlib.Functions() {
		overloads, err := fn.Bindings()
		must(err)
		must(disp.Add(overloads...))
	}
	attrs := interpreter.NewAttributeFactory(containers.DefaultContainer, reg, reg)
	return &celEnvironment{parser: p, checker: chk, interp: interpreter.NewInterpreter(disp, containers.DefaultContainer, reg, reg, attrs)}
}()

func compileRules(f ruleFile, hash string) (*Ruleset, error) {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	if !idPattern.MatchString(f.Version) {
		bad("version %.64q: want 1..64 characters of A-Z a-z 0-9 . _ : - (it becomes screening.rules_version)", f.Version)
	}
	all := market.All()
	rs := &Ruleset{Version: f.Version, Hash: hash, codes: map[string]int{}}
	for i, m := range all {
		rs.codes[m.Code] = i
	}

	// Thresholds: default, then each market's own.
	for _, name := range sortedKeys(f.Markets) {
		if _, ok := rs.codes[name]; !ok && name != marketDefault {
			bad("markets.%.16s: not a market (want default, ID, PH, MY, TH, BD, PK, IN)", name)
		}
	}
	rs.thresholds = make([]map[string]float64, len(all))
	for i, m := range all {
		t := map[string]float64{}
		for k, v := range f.Markets[marketDefault] {
			t[k] = v
		}
		for k, v := range f.Markets[m.Code] {
			t[k] = v
		}
		if len(t) > thresholdsMax {
			bad("markets.%s: %d thresholds, at most %d", m.Code, len(t), thresholdsMax)
		}
		for _, k := range sortedKeys(t) {
			v := t[k]
			if !namePattern.MatchString(k) {
				bad("markets.%s.%.64s: threshold names are snake_case", m.Code, k)
			}
			if math.IsNaN(v) || math.IsInf(v, 0) {
				bad("markets.%s.%s: not a finite number", m.Code, k)
			}
		}
		review, okR := t[thresholdReview]
		deny, okD := t[thresholdDeny]
		switch {
		case !okR || !okD:
			bad("markets.%s: %s and %s are required (in the market or in default)", m.Code, thresholdReview, thresholdDeny)
		case review < 1 || deny > scoreMax || review > deny:
			bad("markets.%s: want 1 <= %s (%g) <= %s (%g) <= %d", m.Code, thresholdReview, review, thresholdDeny, deny, scoreMax)
		}
		rs.thresholds[i] = t
	}

	// Lists: as sets, so `x in lists.name` is one map lookup.
	if len(f.Lists) > listsMax {
		bad("lists: %d lists, at most %d", len(f.Lists), listsMax)
	}
	lists := map[string]map[string]bool{}
	for _, name := range sortedKeys(f.Lists) {
		entries := f.Lists[name]
		if !namePattern.MatchString(name) {
			bad("lists.%.64s: list names are snake_case", name)
		}
		if len(entries) > listEntriesMax {
			bad("lists.%s: %d entries, at most %d", name, len(entries), listEntriesMax)
		}
		set := make(map[string]bool, len(entries))
		for _, e := range entries {
			if e == "" || len(e) > listEntryBytesMax {
				bad("lists.%s: entries must be 1..%d bytes", name, listEntryBytesMax)
				break
			}
			set[e] = true
		}
		lists[name] = set
	}

	// Rules.
	switch {
	case len(f.Rules) == 0:
		bad("rules: none (an empty rule set would allow everything)")
	case len(f.Rules) > rulesMax:
		bad("rules: %d, at most %d", len(f.Rules), rulesMax)
	}
	rs.byMarket = make([][2][]*rule, len(all))
	seen := map[string]bool{}
	for i, spec := range f.Rules {
		where := fmt.Sprintf("rules[%d]", i)
		if spec.Name != "" {
			where = fmt.Sprintf("rule %.64q", spec.Name)
		}
		if !namePattern.MatchString(spec.Name) {
			bad("%s: name must be snake_case, 1..%d characters", where, nameBytesMax)
		} else if seen[spec.Name] {
			bad("%s: defined twice", where)
		}
		seen[spec.Name] = true
		if !reasonPattern.MatchString(spec.Reason) {
			bad("%s: reason %.64q must be snake_case, 1..64 characters", where, spec.Reason)
		}
		if spec.Score < -scoreMax || spec.Score > scoreMax {
			bad("%s: score %d out of -%d..%d", where, spec.Score, scoreMax, scoreMax)
		}
		kinds := [2]bool{len(spec.Kinds) == 0, len(spec.Kinds) == 0}
		for _, k := range spec.Kinds {
			switch k {
			case KindCharge:
				kinds[0] = true
			case KindTopup:
				kinds[1] = true
			default:
				bad("%s: kind %.16q is not charge or topup", where, k)
			}
		}
		markets := make([]bool, len(all))
		for j := range markets {
			markets[j] = len(spec.Markets) == 0
		}
		for _, code := range spec.Markets {
			j, ok := rs.codes[code]
			if !ok {
				bad("%s: market %.16q is not one of ID, PH, MY, TH, BD, PK, IN", where, code)
				continue
			}
			markets[j] = true
		}
		r, err := compileRule(spec)
		if err != nil {
			bad("%s: %s", where, err)
			continue
		}
		// Every threshold and list the rule names must exist wherever it
		// applies: a missing one would be an error at every evaluation.
		tNames, listNames := references(r)
		for j, m := range all {
			if !markets[j] {
				continue
			}
			for _, name := range tNames {
				if _, ok := rs.thresholds[j][name]; !ok {
					bad("%s: t.%s is not set for market %s (nor in default)", where, name, m.Code)
				}
			}
		}
		for _, name := range listNames {
			if _, ok := lists[name]; !ok {
				bad("%s: lists.%s is not defined", where, name)
			}
		}
		for j := range all {
			for k := range kinds {
				if markets[j] && kinds[k] {
					rs.byMarket[j][k] = append(rs.byMarket[j][k], r)
				}
			}
		}
		rs.rules++
	}
	if len(problems) > 0 {
		return nil, &RuleError{Problems: problems}
	}
	rs.tVals = make([]ref.Val, len(all))
	for i, t := range rs.thresholds {
		rs.tVals[i] = types.DefaultTypeAdapter.NativeToValue(t)
	}
	rs.lists = types.DefaultTypeAdapter.NativeToValue(lists)
	return rs, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func compileRule(spec ruleSpec) (*rule, error) {
	if strings.TrimSpace(spec.When) == "" {
		return nil, errors.New("when is empty")
	}
	if len(spec.When) > whenBytesMax {
		return nil, fmt.Errorf("when is %d bytes, at most %d", len(spec.When), whenBytesMax)
	}
	src := common.NewTextSource(spec.When)
	parsed, errs := celEnv.parser.Parse(src)
	if len(errs.GetErrors()) > 0 {
		return nil, fmt.Errorf("when: %s", oneLine(errs.ToDisplayString()))
	}
	checked, errs := checker.Check(parsed, src, celEnv.checker)
	if len(errs.GetErrors()) > 0 {
		return nil, fmt.Errorf("when: %s", oneLine(errs.ToDisplayString()))
	}
	if out := checked.GetType(checked.Expr().ID()); !out.IsExactType(types.BoolType) {
		return nil, fmt.Errorf("when is %s, want bool", out)
	}
	prg, err := celEnv.interp.NewInterpretable(checked, interpreter.Optimize())
	if err != nil {
		return nil, fmt.Errorf("when: %v", err)
	}
	return &rule{spec: spec, program: prg, ast: checked}, nil
}

func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }

// references lists the threshold and list names a rule selects with a
// constant name: t.x, t["x"], lists.y, lists["y"].
func references(r *rule) (thresholds, lists []string) {
	seen := map[string]bool{}
	add := func(root, name string) {
		if seen[root+"."+name] {
			return
		}
		seen[root+"."+name] = true
		if root == varThresholds {
			thresholds = append(thresholds, name)
		} else {
			lists = append(lists, name)
		}
	}
	rootOf := func(e celast.Expr) string {
		if e.Kind() == celast.IdentKind {
			if n := e.AsIdent(); n == varThresholds || n == varLists {
				return n
			}
		}
		return ""
	}
	celast.PreOrderVisit(r.ast.Expr(), celast.NewExprVisitor(func(e celast.Expr) {
		switch e.Kind() {
		case celast.SelectKind:
			sel := e.AsSelect()
			if root := rootOf(sel.Operand()); root != "" && !sel.IsTestOnly() {
				add(root, sel.FieldName())
			}
		case celast.CallKind:
			call := e.AsCall()
			if call.FunctionName() != operators.Index || len(call.Args()) != 2 {
				return
			}
			root := rootOf(call.Args()[0])
			arg := call.Args()[1]
			if root == "" || arg.Kind() != celast.LiteralKind {
				return
			}
			if s, ok := arg.AsLiteral().(types.String); ok {
				add(root, string(s))
			}
		}
	}))
	return thresholds, lists
}

// Verdict is a scored payment.
type Verdict struct {
	events.Screening
	// Errors names the rules that failed to evaluate (see ReasonRuleError).
	Errors []string
}

// Threshold returns a market's threshold and whether it is set.
func (rs *Ruleset) Threshold(marketCode, name string) (float64, bool) {
	i, ok := rs.codes[marketCode]
	if !ok {
		return 0, false
	}
	v, ok := rs.thresholds[i][name]
	return v, ok
}

// WantsBalance reports whether a payment of amount in marketCode needs the
// payer's balance: at or above the market's balance_check_min.
func (rs *Ruleset) WantsBalance(marketCode string, amount int64) bool {
	min, ok := rs.Threshold(marketCode, thresholdBalanceCheck)
	return ok && float64(amount) >= min
}

// Rules returns the number of rules.
func (rs *Ruleset) Rules() int { return rs.rules }

// Score evaluates the rules applying to f's market and kind.
func (rs *Ruleset) Score(f *Features) Verdict {
	i, ok := rs.codes[f.Market]
	if !ok {
		panic("fraud: Score of a payment without a market") // NewFeatures sets it from market.ByCurrency
	}
	k := 0
	if f.Kind == KindTopup {
		k = 1
	}
	act := &activation{f: f, thresholds: rs.tVals[i], lists: rs.lists}
	score := 0
	v := Verdict{Screening: events.Screening{Reasons: []string{}, RulesVersion: rs.Version}}
	addReason := func(reason string) {
		for _, r := range v.Reasons {
			if r == reason {
				return
			}
		}
		if len(v.Reasons) < reasonsPerEventMax {
			v.Reasons = append(v.Reasons, reason)
		}
	}
	for _, r := range rs.byMarket[i][k] {
		out := r.program.Eval(act)
		if types.IsError(out) {
			v.Errors = append(v.Errors, r.spec.Name+": "+fmt.Sprint(out))
			addReason(ReasonRuleError)
			continue
		}
		if out == types.True {
			score += r.spec.Score
			addReason(r.spec.Reason)
		}
	}
	v.Score = min(max(score, 0), scoreMax)
	t := rs.thresholds[i]
	switch {
	case float64(v.Score) >= t[thresholdDeny]:
		v.Decision = events.DecisionDeny
	case float64(v.Score) >= t[thresholdReview]:
		v.Decision = events.DecisionReview
	default:
		v.Decision = events.DecisionAllow
	}
	return v
}
