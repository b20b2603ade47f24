package analysis

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// maxPathSteps bounds a path; real ones have a handful of steps.
const maxPathSteps = 64

// pathStep is one step of a parsed path: a member name or an array index.
type pathStep struct {
	name  string
	index int
	isIdx bool
}

// parsePath parses the small JSONPath subset webhooks use: an optional
// leading `$`, then steps `.name`, `['name']` or `["name"]`, and `[n]`
// (n < 0 counts from the end). A leading name needs no dot (`data.value`).
// The empty path and `$` select the whole document.
func parsePath(p string) ([]pathStep, error) {
	s := strings.TrimSpace(p)
	s = strings.TrimPrefix(s, "$")
	var steps []pathStep
	first := true
	for i := 0; i < len(s); {
		if len(steps) >= maxPathSteps {
			return nil, fmt.Errorf("path %q: more than %d steps", p, maxPathSteps)
		}
		switch c := s[i]; {
		case c == '[':
			end := strings.IndexByte(s[i:], ']')
			if end < 0 {
				return nil, fmt.Errorf("path %q: unclosed [ at offset %d", p, i)
			}
			inner := s[i+1 : i+end]
			if len(inner) >= 1 && (inner[0] == '\'' || inner[0] == '"') {
				q := inner[0]
				// a quoted name may hold ']': find the closing quote first
				close := strings.IndexByte(s[i+2:], q)
				if close < 0 {
					return nil, fmt.Errorf("path %q: unclosed quote at offset %d", p, i+1)
				}
				nameEnd := i + 2 + close
				if nameEnd+1 >= len(s) || s[nameEnd+1] != ']' {
					return nil, fmt.Errorf("path %q: expected ] after quoted name at offset %d", p, nameEnd+1)
				}
				steps = append(steps, pathStep{name: s[i+2 : nameEnd]})
				i = nameEnd + 2
				break
			}
			n, err := strconv.Atoi(strings.TrimSpace(inner))
			if err != nil {
				return nil, fmt.Errorf("path %q: [%s] at offset %d is neither an index nor a quoted name", p, inner, i)
			}
			steps = append(steps, pathStep{index: n, isIdx: true})
			i += end + 1
		case c == '.' || first:
			if c == '.' {
				i++
			}
			j := i
			for j < len(s) && s[j] != '.' && s[j] != '[' {
				j++
			}
			if j == i {
				return nil, fmt.Errorf("path %q: empty name at offset %d", p, i)
			}
			steps = append(steps, pathStep{name: s[i:j]})
			i = j
		default:
			return nil, fmt.Errorf("path %q: unexpected %q at offset %d", p, c, i)
		}
		first = false
	}
	return steps, nil
}

// errPathMissing says that the document has nothing at the path.
var errPathMissing = errors.New("nothing at path")

// evalPath walks a decoded JSON document (maps, slices, float64, string,
// bool, nil) along steps.
func evalPath(doc any, steps []pathStep) (any, error) {
	cur := doc
	for k, st := range steps {
		where := formatPath(steps[:k+1])
		if st.isIdx {
			arr, ok := cur.([]any)
			if !ok {
				return nil, fmt.Errorf("%s: not an array (%s)", where, jsonKind(cur))
			}
			i := st.index
			if i < 0 {
				i += len(arr)
			}
			if i < 0 || i >= len(arr) {
				return nil, fmt.Errorf("%s: %w (array has %d elements)", where, errPathMissing, len(arr))
			}
			cur = arr[i]
			continue
		}
		obj, ok := cur.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s: not an object (%s)", where, jsonKind(cur))
		}
		v, ok := obj[st.name]
		if !ok {
			return nil, fmt.Errorf("%s: %w", where, errPathMissing)
		}
		cur = v
	}
	return cur, nil
}

// formatPath writes steps back in a canonical form, for messages; it
// parses back to the same steps unless a name holds both kinds of quote.
func formatPath(steps []pathStep) string {
	var b strings.Builder
	b.WriteString("$")
	for _, st := range steps {
		if st.isIdx {
			fmt.Fprintf(&b, "[%d]", st.index)
		} else {
			switch {
			case !strings.Contains(st.name, "'"):
				b.WriteString("['" + st.name + "']")
			case !strings.Contains(st.name, `"`):
				b.WriteString(`["` + st.name + `"]`)
			default: // the subset has no escapes: readable, not re-parseable
				fmt.Fprintf(&b, "[%q]", st.name)
			}
		}
	}
	return b.String()
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case map[string]any:
		return "object"
	case []any:
		return "array"
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "boolean"
	}
	return fmt.Sprintf("%T", v)
}
