package manifest

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestDecodeMultiDocument(t *testing.T) {
	src := `# leading comment
apiVersion: v1
kind: ConfigMap
metadata: {name: a}
data:
  n: "1"
  when: 2024-01-02
---
---
defaults: &d {replicas: 2, paused: false}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: b
spec:
  <<: *d
  replicas: 3
  ratio: 0.5
  empty: ~
`
	docs, err := Decode("deploy/app.yaml", []byte(src), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	want := []Document{
		{Line: 2, Object: map[string]any{
			"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": "a"},
			"data": map[string]any{"n": "1", "when": "2024-01-02"},
		}},
		{Line: 10, Object: map[string]any{
			"defaults":   map[string]any{"replicas": int64(2), "paused": false},
			"apiVersion": "apps/v1", "kind": "Deployment", "metadata": map[string]any{"name": "b"},
			"spec": map[string]any{"replicas": int64(3), "paused": false, "ratio": 0.5, "empty": nil},
		}},
	}
	if diff := cmp.Diff(want, docs); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
}

func TestDecodeJSON(t *testing.T) {
	docs, err := Decode("x.json", []byte(`{"apiVersion":"v1","kind":"Secret","metadata":{"name":"s"},"data":{"k":"dg=="}}`), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) != 1 || docs[0].Object["kind"] != "Secret" {
		t.Fatalf("got %#v", docs)
	}
}

func TestDecodeErrorsNameFileAndLine(t *testing.T) {
	tests := []struct {
		name     string
		src      string
		want     error
		wantText string
	}{
		{"syntax", "a: b\nc: [d\n", ErrSyntax, "app.yaml:"},
		{"tab indent", "a:\n\tb: c\n", ErrSyntax, "app.yaml:2:"},
		{"duplicate key", "kind: A\nmetadata: {}\nkind: B\n", ErrNotObject, `app.yaml:3: not a manifest object: key "kind" repeated`},
		{"scalar document", "hello\n", ErrNotObject, "app.yaml:1: not a manifest object: document is a scalar"},
		{"sequence document", "- a\n- b\n", ErrNotObject, "app.yaml:1:"},
		{"complex key", "? [a]\n: b\n", ErrNotObject, "app.yaml:1:"},
		{"infinite", "a: .inf\n", ErrNotObject, "app.yaml:1:"},
		{"second document", "a: 1\n---\nb: [\n", ErrSyntax, "app.yaml:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode("app.yaml", []byte(tt.src), Limits{})
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			var e *Error
			if !errors.As(err, &e) || e.File != "app.yaml" {
				t.Fatalf("error %v is not a located *Error", err)
			}
			if !strings.HasPrefix(err.Error(), tt.wantText) {
				t.Fatalf("got %q, want prefix %q", err, tt.wantText)
			}
		})
	}
}

// billionLaughs builds the classic alias bomb: levels of ten references each.
func billionLaughs(levels int) string {
	var b strings.Builder
	b.WriteString("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n")
	for i := 1; i <= levels; i++ {
		fmt.Fprintf(&b, "a%d: &a%d [", i, i)
		for j := 0; j < 10; j++ {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "*a%d", i-1)
		}
		b.WriteString("]\n")
	}
	return b.String()
}

func TestDecodeRefusesYAMLBomb(t *testing.T) {
	start := time.Now()
	_, err := Decode("bomb.yaml", []byte(billionLaughs(9)), Limits{})
	if err == nil {
		t.Fatal("billion laughs decoded")
	}
	if !errors.Is(err, ErrTooLarge) && !strings.Contains(err.Error(), "excessive aliasing") {
		t.Fatalf("got %v, want a size error", err)
	}
	if !strings.HasPrefix(err.Error(), "bomb.yaml") {
		t.Fatalf("error %q does not name the file", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("refusing the bomb took %s", d)
	}
}

func TestDecodeAliasBudget(t *testing.T) {
	// Few aliases but each large: within the parser's ratio, caught by MaxNodes.
	_, err := Decode("big.yaml", []byte(billionLaughs(3)), Limits{MaxNodes: 1000})
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("got %v, want ErrTooLarge", err)
	}
	if _, err := Decode("big.yaml", []byte(billionLaughs(3)), Limits{}); err != nil {
		t.Fatalf("a modest alias use was refused: %v", err)
	}
}

func TestDecodeRefusesDeepNesting(t *testing.T) {
	flow := "a: " + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + "\n"
	var block strings.Builder
	block.WriteString("root:\n")
	for i := 1; i <= 150; i++ {
		fmt.Fprintf(&block, "%sk:\n", strings.Repeat(" ", i))
	}
	for name, src := range map[string]string{"flow": flow, "block": block.String()} {
		t.Run(name, func(t *testing.T) {
			_, err := Decode("deep.yaml", []byte(src), Limits{})
			if !errors.Is(err, ErrTooDeep) {
				t.Fatalf("got %v, want ErrTooDeep", err)
			}
		})
	}
	parserLimit := "a: " + strings.Repeat("[", 20000) + "\n"
	if _, err := Decode("deeper.yaml", []byte(parserLimit), Limits{}); !errors.Is(err, ErrTooDeep) {
		t.Fatalf("parser depth: got %v, want ErrTooDeep", err)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n"))
	f.Add([]byte("a: &x [1, 2]\nb: *x\nc: {<<: {d: 1}}\n---\n{\"j\": [true, null, 1.5]}\n"))
	f.Add([]byte(billionLaughs(4)))
	f.Fuzz(func(t *testing.T, data []byte) {
		lim := Limits{MaxDepth: 50, MaxNodes: 10000}
		docs, err := Decode("f.yaml", data, lim)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v is not an *Error", err)
			}
			return
		}
		for _, d := range docs {
			if d.Object == nil {
				t.Fatal("nil object decoded")
			}
			if depth(d.Object) > lim.MaxDepth+1 {
				t.Fatalf("decoded depth %d over limit", depth(d.Object))
			}
		}
	})
}

func depth(v any) int {
	max := 0
	switch x := v.(type) {
	case map[string]any:
		for _, e := range x {
			max = maxInt(max, depth(e))
		}
		return max + 1
	case []any:
		for _, e := range x {
			max = maxInt(max, depth(e))
		}
		return max + 1
	}
	return 0
}

func maxInt(a, b int) int {
	if a > b {
		return a
	}
	return b
}

func TestObjectSubstitutes(t *testing.T) {
	src := "a: ${n}\nb: \"${n}\"\nc: x-${n}\nd: !!str ${n}\ne: ${t}\n"
	srcs, err := Parse("s.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	sub := func(s string) (string, bool, error) {
		r := strings.NewReplacer("${n}", "3", "${t}", "true").Replace(s)
		return r, r != s, nil
	}
	got, err := srcs[0].Object(Limits{}, nil, sub)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"a": int64(3), "b": "3", "c": "x-3", "d": "3", "e": true}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	_, err = srcs[0].Object(Limits{}, nil, func(string) (string, bool, error) { return "", false, errors.New("boom") })
	if err == nil || !strings.HasPrefix(err.Error(), "s.yaml:1: boom") {
		t.Fatalf("substitution error %v does not carry file and line", err)
	}
}
