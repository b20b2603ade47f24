package analysis

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	v1 "flotilla.dev/flotilla/api/v1"
)

// FuzzCompileCondition feeds arbitrary text to the condition compiler and
// evaluates what compiles against a few results: nothing may panic, and
// every evaluation ends with a verdict or an error (the cost limit holds).
func FuzzCompileCondition(f *testing.F) {
	for _, s := range []string{"result < 0.01", "result >= 1 && result != 2", "result.all(x, x < 0.5)",
		"size(result) > 2", "result.status == 'ok'", "!(result > 0.05)", "result", "[1,2,3].map(x, x * 2)[0] == 2",
		"result < ", "'a' + 1", "has(result.x)"} {
		f.Add(s)
	}
	results := []any{0.5, []float64{0.1, 0.9}, map[string]any{"status": "ok", "x": 1.0}, "text", true}
	f.Fuzz(func(t *testing.T, expr string) {
		c, err := compileConditions(v1.Metric{SuccessCondition: expr})
		if err != nil {
			return
		}
		for _, r := range results {
			v, err := c.evaluate(context.Background(), r)
			if err == nil && v.phase != v1.MeasurementSuccessful && v.phase != v1.MeasurementFailed {
				t.Fatalf("%q on %v: phase %q", expr, r, v.phase)
			}
		}
		_ = threshold(expr)
	})
}

// FuzzJSONPath parses arbitrary paths and walks them over a document:
// no panic, and a path that parses prints back to one that parses to the
// same steps.
func FuzzJSONPath(f *testing.F) {
	for _, s := range []string{"", "$", "$.a", "a.b[0]", "$['x.y'][\"z\"]", "$.a[-1]", "$[", "$..a", "$['a'x]"} {
		f.Add(s)
	}
	var doc any
	_ = json.Unmarshal([]byte(`{"a":[{"b":1},{"b":[true,null]}],"x.y":{"z":"s"}}`), &doc)
	f.Fuzz(func(t *testing.T, p string) {
		steps, err := parsePath(p)
		if err != nil {
			return
		}
		_, _ = evalPath(doc, steps)
		for _, st := range steps {
			if strings.Contains(st.name, "'") && strings.Contains(st.name, `"`) {
				return // not representable without escapes
			}
		}
		again, err := parsePath(formatPath(steps))
		if err != nil {
			t.Fatalf("%q parsed, but its canonical form %q does not: %v", p, formatPath(steps), err)
		}
		if formatPath(again) != formatPath(steps) {
			t.Fatalf("%q: canonical form %q re-parses as %q", p, formatPath(steps), formatPath(again))
		}
	})
}
