package render

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"text/template"
	"text/template/parse"
)

// Substitution syntax for plain YAML and Kustomize output:
//
//	${cluster.name}          the cluster's name
//	${cluster.labels.KEY}    a label, e.g. ${cluster.labels.region}
//	${cluster.vars.KEY}      a declared variable
//	$${cluster.name}         the literal text ${cluster.name}
//
// Any other ${...} is left alone, so shell scripts and other templating in
// ConfigMaps pass through.
var substRE = regexp.MustCompile(`\$?\$\{cluster\.([^}]*)\}`)

var keyRE = regexp.MustCompile(`^[A-Za-z0-9_./-]+$`)

// ref is one variable a render depends on: "name", "labels.KEY",
// "vars.KEY", "labels.*", "vars.*" (the whole map) or "*" (everything).
type ref = string

// parseRef checks the inside of ${cluster....}.
func parseRef(s string) (ref, error) {
	switch {
	case s == "name":
		return "name", nil
	case strings.HasPrefix(s, "labels.") && keyRE.MatchString(s[len("labels."):]):
		return s, nil
	case strings.HasPrefix(s, "vars.") && keyRE.MatchString(s[len("vars."):]):
		return s, nil
	}
	return "", fmt.Errorf("%w: ${cluster.%s}: want ${cluster.name}, ${cluster.labels.KEY} or ${cluster.vars.KEY}", ErrVariable, s)
}

// substRefs returns the variables one string refers to.
func substRefs(s string) ([]ref, error) {
	if !strings.Contains(s, "${cluster.") {
		return nil, nil
	}
	var refs []ref
	for _, m := range substRE.FindAllStringSubmatch(s, -1) {
		if strings.HasPrefix(m[0], "$$") {
			continue
		}
		r, err := parseRef(m[1])
		if err != nil {
			return nil, err
		}
		refs = append(refs, r)
	}
	return refs, nil
}

// substituter returns the function that replaces ${cluster....} in one string.
func substituter(c ClusterVars) func(string) (string, bool, error) {
	return func(s string) (string, bool, error) {
		if !strings.Contains(s, "${cluster.") {
			return s, false, nil
		}
		var err error
		out := substRE.ReplaceAllStringFunc(s, func(m string) string {
			if strings.HasPrefix(m, "$$") {
				return m[1:]
			}
			r, perr := parseRef(m[len("${cluster.") : len(m)-1])
			if perr != nil {
				err = perr
				return m
			}
			v, ok := lookup(c, r)
			if !ok && err == nil {
				err = fmt.Errorf("%w: %s: cluster %q has no %s", ErrVariable, m, c.Name, r)
			}
			return v
		})
		return out, true, err
	}
}

func lookup(c ClusterVars, r ref) (string, bool) {
	switch {
	case r == "name":
		return c.Name, true
	case strings.HasPrefix(r, "labels."):
		v, ok := c.Labels[r[len("labels."):]]
		return v, ok
	case strings.HasPrefix(r, "vars."):
		v, ok := c.Vars[r[len("vars."):]]
		return v, ok
	}
	return "", false
}

// refSet is the set of variables a render depends on.
type refSet map[ref]bool

// projection keeps only what refs names of a cluster's variables, so that
// clusters which differ only in unreferenced variables get one key. A
// missing label or variable is recorded as null: it is a value too (the
// render fails the same way for every cluster that lacks it).
type projection struct {
	Name   *string            `json:"name,omitempty"`
	Labels map[string]*string `json:"labels,omitempty"`
	Vars   map[string]*string `json:"vars,omitempty"`
}

func project(c ClusterVars, refs refSet) projection {
	if refs["*"] {
		refs = refSet{"name": true, "labels.*": true, "vars.*": true}
	}
	var p projection
	sub := func(all bool, prefix string, m map[string]string) map[string]*string {
		out := map[string]*string{}
		if all {
			for k, v := range m {
				out[k] = &v
			}
			return out
		}
		for r := range refs {
			if k, ok := strings.CutPrefix(r, prefix); ok {
				if v, ok := m[k]; ok {
					out[k] = &v
				} else {
					out[k] = nil
				}
			}
		}
		return out
	}
	if refs["name"] {
		n := c.Name
		p.Name = &n
	}
	p.Labels = sub(refs["labels.*"], "labels.", c.Labels)
	p.Vars = sub(refs["vars.*"], "vars.", c.Vars)
	if refs["labels.*"] {
		p.Labels["*"] = nil // distinguishes "all labels" from "no labels"
	}
	if refs["vars.*"] {
		p.Vars["*"] = nil
	}
	return p
}

// digest returns a stable digest of the projection (encoding/json sorts map keys).
func (p projection) digest() string {
	b, _ := json.Marshal(p)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// templateData is what a Helm value template sees.
type templateData struct {
	Cluster ClusterVars
}

const templateOption = "missingkey=error"

// valueRefs returns the cluster variables the templates in Helm inline
// values refer to. References it cannot follow exactly (range, with, whole
// maps passed to functions) count as the enclosing map or as everything.
func valueRefs(values map[string]any) (refSet, error) {
	refs := refSet{}
	err := walkStrings(values, "", func(p, s string) (string, error) {
		if !strings.Contains(s, "{{") {
			return s, nil
		}
		t, err := template.New(p).Option(templateOption).Parse(s)
		if err != nil {
			return "", fmt.Errorf("helm value %s: %w", p, err)
		}
		for _, tt := range t.Templates() {
			if tt.Tree != nil {
				collectRefs(tt.Tree.Root, refs)
			}
		}
		return s, nil
	})
	return refs, err
}

func collectRefs(n parse.Node, refs refSet) {
	if n == nil {
		return
	}
	field := func(ident []string) {
		if len(ident) == 0 || ident[0] != "Cluster" {
			return
		}
		switch {
		case len(ident) == 1:
			refs["*"] = true
		case ident[1] == "Name":
			refs["name"] = true
		case ident[1] == "Labels" && len(ident) == 2:
			refs["labels.*"] = true
		case ident[1] == "Labels":
			refs["labels."+ident[2]] = true
		case ident[1] == "Vars" && len(ident) == 2:
			refs["vars.*"] = true
		case ident[1] == "Vars":
			refs["vars."+ident[2]] = true
		default:
			refs["*"] = true
		}
	}
	switch x := n.(type) {
	case *parse.ListNode:
		if x == nil {
			return
		}
		for _, c := range x.Nodes {
			collectRefs(c, refs)
		}
	case *parse.ActionNode:
		collectRefs(x.Pipe, refs)
	case *parse.PipeNode:
		if x == nil {
			return
		}
		for _, c := range x.Cmds {
			collectRefs(c, refs)
		}
	case *parse.CommandNode:
		for _, a := range x.Args {
			collectRefs(a, refs)
		}
	case *parse.FieldNode:
		field(x.Ident)
	case *parse.VariableNode:
		if len(x.Ident) > 0 && x.Ident[0] == "$" {
			if len(x.Ident) == 1 {
				refs["*"] = true
			} else {
				field(x.Ident[1:])
			}
		} else {
			// A variable bound inside the template may hold any part of the data.
			refs["*"] = true
		}
	case *parse.DotNode, *parse.ChainNode, *parse.TemplateNode:
		refs["*"] = true
	case *parse.IfNode:
		collectRefs(x.Pipe, refs)
		collectRefs(x.List, refs)
		collectRefs(x.ElseList, refs)
	case *parse.RangeNode, *parse.WithNode:
		// The body's dot is something else; follow nothing and take everything.
		refs["*"] = true
	}
}

// templateValues returns a copy of values with every template string
// executed for cluster c.
func templateValues(values map[string]any, c ClusterVars) (map[string]any, error) {
	data := templateData{Cluster: ClusterVars{Name: c.Name, Labels: nonNil(c.Labels), Vars: nonNil(c.Vars)}}
	out, err := mapStrings(values, "", func(p, s string) (string, error) {
		if !strings.Contains(s, "{{") {
			return s, nil
		}
		t, err := template.New(p).Option(templateOption).Parse(s)
		if err != nil {
			return "", fmt.Errorf("helm value %s: %w", p, err)
		}
		var b strings.Builder
		if err := t.Execute(&b, data); err != nil {
			return "", fmt.Errorf("helm value %s: %w: %w", p, ErrVariable, err)
		}
		return b.String(), nil
	})
	if err != nil {
		return nil, err
	}
	m, _ := out.(map[string]any)
	return m, nil
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

func walkStrings(v any, p string, fn func(p, s string) (string, error)) error {
	_, err := mapStrings(v, p, fn)
	return err
}

// mapStrings deep-copies v, replacing every string leaf by fn's result. p
// is the dotted path of v, used in errors.
func mapStrings(v any, p string, fn func(p, s string) (string, error)) (any, error) {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			e, err := mapStrings(x[k], dotted(p, k), fn)
			if err != nil {
				return nil, err
			}
			out[k] = e
		}
		return out, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			n, err := mapStrings(e, fmt.Sprintf("%s[%d]", p, i), fn)
			if err != nil {
				return nil, err
			}
			out[i] = n
		}
		return out, nil
	case string:
		return fn(p, x)
	default:
		return v, nil
	}
}

func dotted(p, k string) string {
	if p == "" {
		return k
	}
	return p + "." + k
}
