package analysis

import (
	"context"
	"strings"
	"testing"

	v1 "flotilla.dev/flotilla/api/v1"
)

func TestConditionVerdicts(t *testing.T) {
	cases := []struct {
		name             string
		success, failure string
		result           any
		want             string
	}{
		{"success only, true", "result < 0.01", "", 0.001, v1.MeasurementSuccessful},
		{"success only, false", "result < 0.01", "", 0.2, v1.MeasurementFailed},
		{"failure only, true", "", "result > 0.05", 0.2, v1.MeasurementFailed},
		{"failure only, false", "", "result > 0.05", 0.01, v1.MeasurementSuccessful},
		{"both, success", "result < 0.01", "result > 0.05", 0.001, v1.MeasurementSuccessful},
		{"both, failure", "result < 0.01", "result > 0.05", 0.1, v1.MeasurementFailed},
		{"both, neither", "result < 0.01", "result > 0.05", 0.03, v1.MeasurementInconclusive},
		{"both true, failure wins", "result > 0", "result > 0", 1.0, v1.MeasurementFailed},
		{"int literal against double", "result >= 1", "", 1.0, v1.MeasurementSuccessful},
		{"int equality against double", "result == 1", "", 1.0, v1.MeasurementSuccessful},
		{"list of doubles", "result.all(x, x < 0.01)", "", []float64{0.001, 0.002}, v1.MeasurementSuccessful},
		{"list of doubles, one bad", "result.all(x, x < 0.01)", "", []float64{0.001, 0.5}, v1.MeasurementFailed},
		{"map from JSON", "result.status == 'ok' && result.count > 3", "", map[string]any{"status": "ok", "count": 5.0}, v1.MeasurementSuccessful},
		{"bool result", "result", "", true, v1.MeasurementSuccessful},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cond, err := compileConditions(v1.Metric{SuccessCondition: c.success, FailureCondition: c.failure})
			if err != nil {
				t.Fatal(err)
			}
			v, err := cond.evaluate(context.Background(), c.result)
			if err != nil {
				t.Fatal(err)
			}
			if v.phase != c.want {
				t.Errorf("phase = %s (%s), want %s", v.phase, v.message, c.want)
			}
		})
	}
}

func TestConditionCompileErrorsNameTheCondition(t *testing.T) {
	cases := []struct {
		success, failure string
		want             []string
	}{
		{"result <", "", []string{"successCondition", "result <", "Syntax error"}},
		{"result + 1.0", "", []string{"successCondition", "must be a boolean expression"}},
		{"", "rezult > 1", []string{"failureCondition", "undeclared reference to 'rezult'"}},
		{"'a' < 1", "", []string{"successCondition", "no matching overload"}},
		{strings.Repeat("result < 1 && ", 400) + "true", "", []string{"successCondition", "longer than 4096"}},
		{"", "", []string{"needs a successCondition or a failureCondition"}},
	}
	for _, c := range cases {
		_, err := compileConditions(v1.Metric{SuccessCondition: c.success, FailureCondition: c.failure})
		if err == nil {
			t.Errorf("compile(%q, %q): no error", c.success, c.failure)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("compile(%q, %q) = %q, want it to contain %q", c.success, c.failure, err, w)
			}
		}
	}
}

func TestConditionRuntimeTypeErrorIsClear(t *testing.T) {
	cond, err := compileConditions(v1.Metric{SuccessCondition: "result < 0.01"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = cond.evaluate(context.Background(), []float64{0.1, 0.2})
	if err == nil || !strings.Contains(err.Error(), `condition "result < 0.01"`) || !strings.Contains(err.Error(), "no such overload") {
		t.Errorf("evaluate(list) error = %v, want one naming the condition and the overload", err)
	}
}

func TestConditionCostIsLimited(t *testing.T) {
	cond, err := compileConditions(v1.Metric{SuccessCondition: "result.all(x, result.all(y, x <= y || x > y))"})
	if err != nil {
		t.Fatal(err)
	}
	big := make([]float64, 2000)
	_, err = cond.evaluate(context.Background(), big)
	if err == nil || !strings.Contains(err.Error(), "cost limit") {
		t.Errorf("evaluate over 2000x2000 = %v, want a cost limit error", err)
	}
	if _, err := cond.evaluate(context.Background(), big[:10]); err != nil {
		t.Errorf("evaluate over 10x10: %v", err)
	}
}

func TestDefaultConditions(t *testing.T) {
	health, err := compileConditions(v1.Metric{Provider: v1.MetricProvider{Health: &v1.HealthMetric{}}})
	if err != nil {
		t.Fatal(err)
	}
	for res, want := range map[float64]string{1: v1.MeasurementSuccessful, 0.5: v1.MeasurementInconclusive, 0: v1.MeasurementFailed} {
		if v, _ := health.evaluate(context.Background(), res); v.phase != want {
			t.Errorf("health default on %v = %s, want %s", res, v.phase, want)
		}
	}
	job, err := compileConditions(v1.Metric{Provider: v1.MetricProvider{Job: &v1.JobMetric{}}})
	if err != nil {
		t.Fatal(err)
	}
	for res, want := range map[float64]string{1: v1.MeasurementSuccessful, 0: v1.MeasurementFailed} {
		if v, _ := job.evaluate(context.Background(), res); v.phase != want {
			t.Errorf("job default on %v = %s, want %s", res, v.phase, want)
		}
	}
}

func TestThreshold(t *testing.T) {
	cases := map[string]*float64{
		"result < 0.01":         ptr(0.01),
		"  result>=5 ":          ptr(5),
		"0.5 > result":          ptr(0.5),
		"result == -1e-3":       ptr(-0.001),
		"result < 0.01 && true": nil,
		"result.x < 1":          nil,
		"size(result) > 2":      nil,
		"result < 1.2.3":        nil,
	}
	for cond, want := range cases {
		got := threshold(cond)
		switch {
		case want == nil && got != nil:
			t.Errorf("threshold(%q) = %v, want none", cond, *got)
		case want != nil && (got == nil || *got != *want):
			t.Errorf("threshold(%q) = %v, want %v", cond, got, *want)
		}
	}
}

func ptr(f float64) *float64 { return &f }
