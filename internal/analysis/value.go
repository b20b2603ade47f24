package analysis

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
)

// noDataError marks a provider answer that says nothing about the release
// (an empty query result, NaN, a cluster whose agent is not reporting): the
// measurement is Inconclusive, not an Error, and the reason is recorded.
type noDataError struct{ reason string }

func (e *noDataError) Error() string { return e.reason }

// noData returns a noDataError with a formatted reason.
func noData(format string, args ...any) error {
	return &noDataError{reason: fmt.Sprintf(format, args...)}
}

// isNoData reports whether err says "no data" and returns the reason.
func isNoData(err error) (string, bool) {
	var nd *noDataError
	if errors.As(err, &nd) {
		return nd.reason, true
	}
	return "", false
}

// noted is a result with a note for people (the health word behind a
// health number, Prometheus' warnings); conditions see only value.
type noted struct {
	value any
	note  string
}

// maxRawLen bounds Measurement.Raw so that a large webhook answer does not
// bloat the rollout's stored status.
const maxRawLen = 512

// describe returns the measurement's numeric value (when the result is a
// finite number) and its JSON form, cut to maxRawLen.
func describe(result any) (*float64, string) {
	var val *float64
	if f, ok := result.(float64); ok && !math.IsNaN(f) && !math.IsInf(f, 0) {
		val = &f
	}
	raw, err := json.Marshal(jsonSafe(result))
	s := string(raw)
	if err != nil {
		s = fmt.Sprint(result)
	}
	if len(s) > maxRawLen {
		s = s[:maxRawLen] + "..."
	}
	return val, s
}

// jsonSafe replaces non-finite floats, which JSON cannot carry, by strings.
func jsonSafe(v any) any {
	switch x := v.(type) {
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return fmt.Sprint(x)
		}
		return x
	case []float64:
		out := make([]any, len(x))
		for i, f := range x {
			out[i] = jsonSafe(f)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = jsonSafe(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = jsonSafe(e)
		}
		return out
	}
	return v
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
