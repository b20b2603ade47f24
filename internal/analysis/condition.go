package analysis

import (
	"context"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"sync"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"

	v1 "flotilla.dev/flotilla/api/v1"
)

// Limits on condition text and evaluation. A condition is a short
// comparison; these stop a hostile template from costing the server much.
const (
	maxConditionLen = 4096
	// evalCostLimit bounds one evaluation (CEL's cost units, roughly one per
	// operation and per list element visited).
	evalCostLimit = 100_000
)

// conditions are a metric's compiled success and failure conditions.
type conditions struct {
	success, failure cel.Program
	// successText and failureText are the sources, for messages.
	successText, failureText string
}

// verdict is what the conditions say about one result.
type verdict struct {
	phase   string // v1.Measurement* phase
	message string
}

var celEnv = sync.OnceValues(func() (*cel.Env, error) {
	return cel.NewEnv(
		cel.Variable("result", cel.DynType),
		// result is a double; users write `result > 0` with an int literal.
		cel.CrossTypeNumericComparisons(true),
		cel.ParserExpressionSizeLimit(maxConditionLen),
		cel.ParserRecursionLimit(50),
	)
})

// compileCondition compiles one boolean CEL expression over result.
func compileCondition(expr string) (cel.Program, error) {
	if len(expr) > maxConditionLen {
		return nil, fmt.Errorf("longer than %d characters", maxConditionLen)
	}
	env, err := celEnv()
	if err != nil {
		return nil, err
	}
	ast, iss := env.Compile(expr)
	if iss != nil && iss.Err() != nil {
		return nil, iss.Err()
	}
	if t := ast.OutputType(); !t.IsExactType(types.BoolType) && !t.IsExactType(types.DynType) {
		return nil, fmt.Errorf("must be a boolean expression, is %s", t)
	}
	prg, err := env.Program(ast, cel.CostLimit(evalCostLimit), cel.InterruptCheckFrequency(100))
	if err != nil {
		return nil, err
	}
	return prg, nil
}

// compileConditions compiles a metric's conditions; def gives the defaults
// of providers whose result has a natural verdict (health, job).
func compileConditions(m v1.Metric) (*conditions, error) {
	succ, fail := m.SuccessCondition, m.FailureCondition
	if succ == "" && fail == "" {
		succ, fail = defaultConditions(m.Provider)
	}
	c := &conditions{successText: succ, failureText: fail}
	var err error
	if succ != "" {
		if c.success, err = compileCondition(succ); err != nil {
			return nil, fmt.Errorf("successCondition %q: %w", succ, err)
		}
	}
	if fail != "" {
		if c.failure, err = compileCondition(fail); err != nil {
			return nil, fmt.Errorf("failureCondition %q: %w", fail, err)
		}
	}
	if c.success == nil && c.failure == nil {
		return nil, errors.New("needs a successCondition or a failureCondition")
	}
	return c, nil
}

// defaultConditions are used when a metric sets none: a health result
// passes at 1 (Healthy) and fails at 0 (Degraded or Failed), anything in
// between (Progressing) is inconclusive; a Job passes when it succeeded.
func defaultConditions(p v1.MetricProvider) (success, failure string) {
	switch {
	case p.Health != nil:
		return "result == 1.0", "result == 0.0"
	case p.Job != nil:
		return "result == 1.0", ""
	}
	return "", ""
}

// evaluate judges one result the way Argo Rollouts does: the failure
// condition true fails; with a success condition only, false fails; with
// both, neither true is inconclusive; with a failure condition only, false
// succeeds.
func (c *conditions) evaluate(ctx context.Context, result any) (verdict, error) {
	vars := map[string]any{"result": result}
	eval := func(p cel.Program, text string) (bool, error) {
		out, _, err := p.ContextEval(ctx, vars)
		if err != nil {
			return false, fmt.Errorf("condition %q: %w", text, err)
		}
		b, ok := out.Value().(bool)
		if !ok {
			return false, fmt.Errorf("condition %q: gave %v (%s), not a boolean", text, out.Value(), out.Type().TypeName())
		}
		return b, nil
	}
	if c.failure != nil {
		f, err := eval(c.failure, c.failureText)
		if err != nil {
			return verdict{}, err
		}
		if f {
			return verdict{v1.MeasurementFailed, "failureCondition " + c.failureText + " is true"}, nil
		}
	}
	if c.success == nil {
		return verdict{v1.MeasurementSuccessful, ""}, nil
	}
	s, err := eval(c.success, c.successText)
	if err != nil {
		return verdict{}, err
	}
	switch {
	case s:
		return verdict{v1.MeasurementSuccessful, ""}, nil
	case c.failure != nil:
		return verdict{v1.MeasurementInconclusive, "neither condition is true"}, nil
	default:
		return verdict{v1.MeasurementFailed, "successCondition " + c.successText + " is false"}, nil
	}
}

// display is the condition recorded in MetricResult.Condition: the success
// condition, or the negated failure condition.
func (c *conditions) display() string {
	if c.successText != "" {
		return c.successText
	}
	return "!(" + c.failureText + ")"
}

var comparisonRE = regexp.MustCompile(`^\s*(?:result\s*(<=|>=|<|>|==)\s*([-+]?[0-9][0-9.eE+-]*)|([-+]?[0-9][0-9.eE+-]*)\s*(<=|>=|<|>|==)\s*result)\s*$`)

// threshold returns the number a simple comparison such as `result < 0.01`
// (or `0.01 > result`) compares with, so dashboards can draw it; nil for
// anything else.
func threshold(cond string) *float64 {
	m := comparisonRE.FindStringSubmatch(cond)
	if m == nil {
		return nil
	}
	num := m[2]
	if num == "" {
		num = m[3]
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return nil
	}
	return &f
}
