package v1

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Duration is a length of time written in Go's time.ParseDuration syntax,
// such as "30s", "2m" or "1h30m". The empty string means "not set".
type Duration string

// Parse returns the duration; the empty Duration parses as 0.
func (d Duration) Parse() (time.Duration, error) {
	if d == "" {
		return 0, nil
	}
	x, err := time.ParseDuration(string(d))
	if err != nil {
		return 0, fmt.Errorf("duration %q: %w", string(d), err)
	}
	return x, nil
}

// IntOrPercent is a count ("2", written as the number 2) or a percentage
// ("25%") of some total. The empty value means "not set".
type IntOrPercent string

// UnmarshalJSON accepts a JSON number or a JSON string.
func (p *IntOrPercent) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*p = IntOrPercent(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("must be a number or a percentage string such as \"25%%\"")
	}
	*p = IntOrPercent(n.String())
	return nil
}

// MarshalJSON writes counts as numbers and percentages as strings.
func (p IntOrPercent) MarshalJSON() ([]byte, error) {
	if n, err := strconv.Atoi(string(p)); err == nil && strconv.Itoa(n) == string(p) {
		return []byte(string(p)), nil
	}
	return json.Marshal(string(p))
}

// parse returns the number and whether it is a percentage.
func (p IntOrPercent) parse() (n int, percent bool, err error) {
	s := string(p)
	if strings.HasSuffix(s, "%") {
		n, err = strconv.Atoi(strings.TrimSuffix(s, "%"))
		if err != nil || n < 1 || n > 100 {
			return 0, true, fmt.Errorf("%q is not a percentage from 1%% to 100%%", s)
		}
		return n, true, nil
	}
	n, err = strconv.Atoi(s)
	if err != nil {
		return 0, false, fmt.Errorf("%q is neither a whole number nor a percentage such as \"25%%\"", s)
	}
	if n <= 0 {
		return 0, false, fmt.Errorf("must be greater than 0, got %d", n)
	}
	return n, false, nil
}

// Resolve turns the value into a count out of total: percentages round up
// and are at least 1 when total is positive; counts are capped at total.
func (p IntOrPercent) Resolve(total int) (int, error) {
	n, percent, err := p.parse()
	if err != nil {
		return 0, err
	}
	if percent {
		n = (total*n + 99) / 100
		if n < 1 && total > 0 {
			n = 1
		}
	}
	return min(n, total), nil
}

// LabelSelector picks objects (usually clusters) by their labels. An empty
// selector matches everything; a nil one is "not set".
type LabelSelector struct {
	MatchLabels      map[string]string          `json:"matchLabels,omitempty"`
	MatchExpressions []LabelSelectorRequirement `json:"matchExpressions,omitempty"`
}

// LabelSelectorRequirement is one expression of a LabelSelector.
type LabelSelectorRequirement struct {
	Key      string   `json:"key"`
	Operator string   `json:"operator"` // In | NotIn | Exists | DoesNotExist
	Values   []string `json:"values,omitempty"`
}

// Selector operators.
const (
	OpIn           = "In"
	OpNotIn        = "NotIn"
	OpExists       = "Exists"
	OpDoesNotExist = "DoesNotExist"
)

// Selector converts s into a labels.Selector; a nil s selects nothing and an
// empty one everything.
func (s *LabelSelector) Selector() (labels.Selector, error) {
	if s == nil {
		return labels.Nothing(), nil
	}
	sel := labels.NewSelector()
	for _, k := range sortedKeys(s.MatchLabels) {
		r, err := labels.NewRequirement(k, selection.Equals, []string{s.MatchLabels[k]})
		if err != nil {
			return nil, fmt.Errorf("matchLabels[%s]: %w", k, err)
		}
		sel = sel.Add(*r)
	}
	for i, e := range s.MatchExpressions {
		var op selection.Operator
		switch e.Operator {
		case OpIn:
			op = selection.In
		case OpNotIn:
			op = selection.NotIn
		case OpExists:
			op = selection.Exists
		case OpDoesNotExist:
			op = selection.DoesNotExist
		default:
			return nil, fmt.Errorf("matchExpressions[%d].operator: unsupported value %q", i, e.Operator)
		}
		r, err := labels.NewRequirement(e.Key, op, e.Values)
		if err != nil {
			return nil, fmt.Errorf("matchExpressions[%d]: %w", i, err)
		}
		sel = sel.Add(*r)
	}
	return sel, nil
}

// Matches reports whether the labels satisfy s; a nil s matches nothing.
func (s *LabelSelector) Matches(set map[string]string) bool {
	sel, err := s.Selector()
	if err != nil {
		return false
	}
	return sel.Matches(labels.Set(set))
}

func (v *validator) selector(path string, s *LabelSelector, required bool) {
	if s == nil {
		if required {
			v.add(path, "required (use {} to select every cluster)")
		}
		return
	}
	v.labels(path+".matchLabels", s.MatchLabels)
	for i, e := range s.MatchExpressions {
		p := index(path+".matchExpressions", i)
		for _, msg := range validation.IsQualifiedName(e.Key) {
			v.add(p+".key", "invalid label key %q: %s", e.Key, msg)
		}
		switch e.Operator {
		case OpIn, OpNotIn:
			if len(e.Values) == 0 {
				v.add(p+".values", "must not be empty for operator %s", e.Operator)
			}
			for j, val := range e.Values {
				for _, msg := range validation.IsValidLabelValue(val) {
					v.add(index(p+".values", j), "invalid label value %q: %s", val, msg)
				}
			}
		case OpExists, OpDoesNotExist:
			if len(e.Values) > 0 {
				v.add(p+".values", "must be empty for operator %s", e.Operator)
			}
		default:
			v.oneOf(p+".operator", e.Operator, OpIn, OpNotIn, OpExists, OpDoesNotExist)
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// boolPtr returns a pointer to b, for defaults of optional booleans.
func boolPtr(b bool) *bool { return &b }
