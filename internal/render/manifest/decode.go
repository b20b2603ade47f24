package manifest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Default limits used when a Limits field is zero.
const (
	DefaultMaxDepth = 100
	DefaultMaxNodes = 1 << 20
)

// Errors wrapped inside *Error; callers branch on them with errors.Is.
var (
	// ErrTooDeep means a document nests deeper than Limits.MaxDepth.
	ErrTooDeep = errors.New("document nested too deeply")
	// ErrTooLarge means alias expansion or the document itself exceeds Limits.MaxNodes.
	ErrTooLarge = errors.New("document expands to too many nodes")
	// ErrSyntax means the text is not valid YAML or JSON.
	ErrSyntax = errors.New("syntax error")
	// ErrNotObject means a document is not a mapping, or has a key that is not a scalar or is repeated.
	ErrNotObject = errors.New("not a manifest object")
)

// Limits bounds the work one Decode call may do. Zero fields take defaults.
type Limits struct {
	// MaxDepth is the deepest nesting of mappings and sequences allowed.
	MaxDepth int
	// MaxNodes is the number of decoded values (after alias expansion) allowed per file.
	MaxNodes int
}

func (l Limits) withDefaults() Limits {
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultMaxDepth
	}
	if l.MaxNodes <= 0 {
		l.MaxNodes = DefaultMaxNodes
	}
	return l
}

// Document is one decoded YAML document.
type Document struct {
	// Object is the decoded mapping.
	Object map[string]any
	// Line is the 1-based line where the document's content starts.
	Line int
}

// Error is a decoding error located in a file.
type Error struct {
	File string
	Line int // 0 when unknown
	Err  error
}

// Error returns "file:line: message".
func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.File, e.Err)
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): `)

// Source is one parsed, not yet converted YAML document. Converting it is
// where limits apply and where per-cluster substitution happens, so one
// parse can serve many conversions. A Source is safe for concurrent use.
type Source struct {
	// File names where the document came from.
	File string
	// Line is the 1-based line where the document's content starts.
	Line int
	root *yaml.Node
}

// Substituter rewrites a string scalar. It returns the new text and whether
// it changed anything; an error is reported at the scalar's line.
type Substituter func(s string) (string, bool, error)

// Decode decodes every document in data, which was read from file (used
// only in errors). Empty documents are skipped.
func Decode(file string, data []byte, lim Limits) ([]Document, error) {
	srcs, err := Parse(file, data)
	if err != nil {
		return nil, err
	}
	docs := make([]Document, 0, len(srcs))
	budget := &Budget{}
	for _, s := range srcs {
		obj, err := s.Object(lim, budget, nil)
		if err != nil {
			return nil, err
		}
		docs = append(docs, Document{Object: obj, Line: s.Line})
	}
	return docs, nil
}

// Parse parses every document in data without converting it. Syntax errors
// and the parser's own depth limit are reported here.
func Parse(file string, data []byte) ([]*Source, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var srcs []*Source
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return srcs, nil
		}
		if err != nil {
			msg := strings.TrimPrefix(err.Error(), "yaml: ")
			line := 0
			if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
				line, _ = strconv.Atoi(m[1])
				msg = strings.TrimPrefix(err.Error(), m[0])
			}
			if strings.Contains(msg, "max depth") {
				return nil, &Error{File: file, Line: line, Err: fmt.Errorf("%w: %s", ErrTooDeep, msg)}
			}
			return nil, &Error{File: file, Line: line, Err: fmt.Errorf("%w: %s", ErrSyntax, msg)}
		}
		if len(n.Content) == 0 {
			continue
		}
		root := n.Content[0]
		if root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" {
			continue
		}
		srcs = append(srcs, &Source{File: file, Line: root.Line, root: root})
	}
}

// Budget counts decoded nodes across the documents of one file or one
// render, so that MaxNodes bounds the whole, not each document.
type Budget struct{ nodes int }

// Object converts the document to a mapping. budget may be shared by the
// documents of one file; sub, when not nil, rewrites string scalars. A plain
// (unquoted) scalar that sub rewrites is typed again from its new text, so
// "replicas: ${x}" can become an integer while a quoted one stays a string.
func (s *Source) Object(lim Limits, budget *Budget, sub Substituter) (map[string]any, error) {
	if budget == nil {
		budget = &Budget{}
	}
	c := converter{file: s.File, lim: lim.withDefaults(), budget: budget, sub: sub}
	v, err := c.value(s.root, 1)
	if err != nil {
		return nil, err
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, &Error{File: s.File, Line: s.root.Line, Err: fmt.Errorf("%w: document is a %s, want a mapping", ErrNotObject, kindName(s.root))}
	}
	return obj, nil
}

// Strings calls fn for every string scalar (values and keys) in the
// document, without expanding aliases, stopping at the first error.
func (s *Source) Strings(fn func(text string, line int) error) error {
	seen := map[*yaml.Node]bool{}
	var walk func(n *yaml.Node) error
	walk = func(n *yaml.Node) error {
		if n == nil || seen[n] {
			return nil
		}
		seen[n] = true
		if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str" {
			return fn(n.Value, n.Line)
		}
		for _, c := range n.Content {
			if err := walk(c); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(s.root)
}

type converter struct {
	file   string
	lim    Limits
	budget *Budget
	sub    Substituter
}

func (c *converter) fail(n *yaml.Node, err error) error {
	return &Error{File: c.file, Line: n.Line, Err: err}
}

func (c *converter) value(n *yaml.Node, depth int) (any, error) {
	c.budget.nodes++
	if c.budget.nodes > c.lim.MaxNodes {
		return nil, c.fail(n, fmt.Errorf("%w: more than %d", ErrTooLarge, c.lim.MaxNodes))
	}
	if depth > c.lim.MaxDepth {
		return nil, c.fail(n, fmt.Errorf("%w: deeper than %d", ErrTooDeep, c.lim.MaxDepth))
	}
	switch n.Kind {
	case yaml.AliasNode:
		if n.Alias == nil {
			return nil, c.fail(n, fmt.Errorf("%w: unknown alias", ErrSyntax))
		}
		return c.value(n.Alias, depth)
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return c.value(n.Content[0], depth)
	case yaml.SequenceNode:
		s := make([]any, 0, len(n.Content))
		for _, e := range n.Content {
			v, err := c.value(e, depth+1)
			if err != nil {
				return nil, err
			}
			s = append(s, v)
		}
		return s, nil
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		if err := c.mapping(m, n, depth); err != nil {
			return nil, err
		}
		return m, nil
	case yaml.ScalarNode:
		return c.scalar(n)
	}
	return nil, c.fail(n, fmt.Errorf("%w: unexpected node", ErrSyntax))
}

// mapping fills m from n. Keys from merge ("<<") entries never override
// keys written explicitly, as YAML 1.1 merge keys specify.
func (c *converter) mapping(m map[string]any, n *yaml.Node, depth int) error {
	explicit := make(map[string]bool, len(n.Content)/2)
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			merges = append(merges, v)
			continue
		}
		if k.Kind != yaml.ScalarNode {
			return c.fail(k, fmt.Errorf("%w: mapping key is a %s, want a scalar", ErrNotObject, kindName(k)))
		}
		key := k.Value
		if explicit[key] {
			return c.fail(k, fmt.Errorf("%w: key %q repeated", ErrNotObject, key))
		}
		explicit[key] = true
		val, err := c.value(v, depth+1)
		if err != nil {
			return err
		}
		m[key] = val
	}
	for _, mv := range merges {
		c.budget.nodes++
		if c.budget.nodes > c.lim.MaxNodes {
			return c.fail(mv, fmt.Errorf("%w: more than %d", ErrTooLarge, c.lim.MaxNodes))
		}
		target := mv
		if target.Kind == yaml.AliasNode && target.Alias != nil {
			target = target.Alias
		}
		var sources []*yaml.Node
		switch target.Kind {
		case yaml.MappingNode:
			sources = []*yaml.Node{target}
		case yaml.SequenceNode:
			for _, s := range target.Content {
				if s.Kind == yaml.AliasNode && s.Alias != nil {
					s = s.Alias
				}
				sources = append(sources, s)
			}
		}
		for _, s := range sources {
			if s.Kind != yaml.MappingNode {
				return c.fail(mv, fmt.Errorf("%w: merge key needs a mapping", ErrNotObject))
			}
			sub := make(map[string]any)
			if err := c.mapping(sub, s, depth); err != nil {
				return err
			}
			for k, v := range sub {
				if !explicit[k] {
					if _, ok := m[k]; !ok {
						m[k] = v
					}
				}
			}
		}
	}
	return nil
}

func (c *converter) scalar(n *yaml.Node) (any, error) {
	if c.sub != nil && n.ShortTag() == "!!str" {
		out, changed, err := c.sub(n.Value)
		if err != nil {
			return nil, c.fail(n, err)
		}
		if changed {
			if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle|yaml.TaggedStyle) != 0 {
				return out, nil
			}
			plain := *c
			plain.sub = nil
			return plain.scalar(&yaml.Node{Kind: yaml.ScalarNode, Value: out, Line: n.Line})
		}
		return n.Value, nil
	}
	switch n.ShortTag() {
	case "!!null":
		return nil, nil
	case "!!bool", "!!int", "!!float":
		var v any
		if err := n.Decode(&v); err != nil {
			return nil, c.fail(n, fmt.Errorf("%w: %v", ErrSyntax, err))
		}
		switch x := v.(type) {
		case int:
			return int64(x), nil
		case float64:
			if math.IsInf(x, 0) || math.IsNaN(x) {
				return nil, c.fail(n, fmt.Errorf("%w: %q is not a finite number", ErrNotObject, n.Value))
			}
		}
		return v, nil
	default: // !!str, !!timestamp, !!binary and custom tags keep their text
		return n.Value, nil
	}
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "sequence"
	case yaml.MappingNode:
		return "mapping"
	case yaml.AliasNode:
		return "alias"
	default:
		return "scalar"
	}
}

// Node returns the document's parsed YAML tree, for callers that need
// positions (such as checking a kustomization's references). It must not be
// modified.
func (s *Source) Node() *yaml.Node { return s.root }
