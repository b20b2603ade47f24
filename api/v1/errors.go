package v1

import (
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
)

// FieldError is one problem with one field; Path looks like
// "spec.waves[2].maxParallel".
type FieldError struct {
	Path    string `json:"path"`
	Message string `json:"message"`
}

// String renders the problem as "path: message".
func (f FieldError) String() string { return f.Path + ": " + f.Message }

// ValidationError lists every problem found in one object.
type ValidationError struct {
	Kind   string
	Name   string
	Fields []FieldError
}

// Error renders "Service web: spec.x: must ...; spec.y: ...".
func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString(e.Kind)
	if e.Name != "" {
		b.WriteString(" ")
		b.WriteString(e.Name)
	}
	b.WriteString(": ")
	for i, f := range e.Fields {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(f.String())
	}
	return b.String()
}

// validator collects field errors for one object.
type validator struct {
	kind, name string
	fields     []FieldError
}

func newValidator(kind string, meta *ObjectMeta) *validator {
	return &validator{kind: kind, name: meta.Name}
}

func (v *validator) add(path, format string, args ...any) {
	v.fields = append(v.fields, FieldError{Path: path, Message: fmt.Sprintf(format, args...)})
}

func (v *validator) err() error {
	if len(v.fields) == 0 {
		return nil
	}
	return &ValidationError{Kind: v.kind, Name: v.name, Fields: v.fields}
}

// dnsLabel requires s to be a non-empty RFC 1123 label.
func (v *validator) dnsLabel(path, s string) {
	if s == "" {
		v.add(path, "required")
		return
	}
	v.optionalDNSLabel(path, s)
}

// optionalDNSLabel checks s only when it is set.
func (v *validator) optionalDNSLabel(path, s string) {
	if s == "" {
		return
	}
	if msgs := validation.IsDNS1123Label(s); len(msgs) > 0 {
		v.add(path, "%q is not a DNS label: %s", s, strings.Join(msgs, "; "))
	}
}

func (v *validator) labels(path string, m map[string]string) {
	for _, k := range sortedKeys(m) {
		for _, msg := range validation.IsQualifiedName(k) {
			v.add(fmt.Sprintf("%s[%s]", path, k), "invalid label key: %s", msg)
		}
		for _, msg := range validation.IsValidLabelValue(m[k]) {
			v.add(fmt.Sprintf("%s[%s]", path, k), "invalid label value %q: %s", m[k], msg)
		}
	}
}

const maxAnnotationsBytes = 256 << 10

func (v *validator) annotations(path string, m map[string]string) {
	total := 0
	for _, k := range sortedKeys(m) {
		for _, msg := range validation.IsQualifiedName(strings.ToLower(k)) {
			v.add(fmt.Sprintf("%s[%s]", path, k), "invalid annotation key: %s", msg)
		}
		total += len(k) + len(m[k])
	}
	if total > maxAnnotationsBytes {
		v.add(path, "must hold at most %d bytes in total, has %d", maxAnnotationsBytes, total)
	}
}

// duration checks that d parses and is positive; an empty d is an error only
// when required.
func (v *validator) duration(path string, d Duration, required bool) {
	if d == "" {
		if required {
			v.add(path, "required")
		}
		return
	}
	x, err := time.ParseDuration(string(d))
	if err != nil {
		v.add(path, "%q is not a duration such as \"90s\" or \"2m\"", string(d))
		return
	}
	if x <= 0 {
		v.add(path, "must be greater than 0, got %q", string(d))
	}
}

func (v *validator) nonNegative(path string, n int) {
	if n < 0 {
		v.add(path, "must be 0 or greater, got %d", n)
	}
}

// oneOf reports an error unless s is one of the allowed values.
func (v *validator) oneOf(path, s string, allowed ...string) {
	for _, a := range allowed {
		if s == a {
			return
		}
	}
	if s == "" {
		v.add(path, "required: one of %s", strings.Join(allowed, ", "))
		return
	}
	v.add(path, "unsupported value %q: must be one of %s", s, strings.Join(allowed, ", "))
}

// optionalOneOf is oneOf for a field that may be empty.
func (v *validator) optionalOneOf(path, s string, allowed ...string) {
	if s != "" {
		v.oneOf(path, s, allowed...)
	}
}

func index(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }
