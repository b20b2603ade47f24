// Package providertest is the conformance suite of traffic providers: the
// same checks, run by each provider's tests against a real router, of what
// the Manager relies on.
package providertest

import (
	"context"
	"testing"
)

// Provider is traffic.Provider, repeated here so that providers' tests can
// use the suite without importing the traffic package.
type Provider interface {
	MaxWeight() int
	SetWeights(ctx context.Context, weights map[string]int) error
	Weights(ctx context.Context, backends []string) (map[string]int, error)
	Ping(ctx context.Context) error
}

// Run checks p, a provider whose router has exactly the backends a and b
// (in p's terms) and no backend named "not-a-backend":
//   - MaxWeight is at least 100, so every percentage maps to a distinct
//     weight and reads back exactly;
//   - Ping succeeds;
//   - weights set read back exactly, and a backend left out keeps its
//     weight;
//   - a change naming an unknown backend or a weight out of range fails and
//     changes nothing.
func Run(t *testing.T, p Provider, a, b string) {
	t.Helper()
	ctx := context.Background()
	max := p.MaxWeight()
	if max < 100 {
		t.Fatalf("MaxWeight %d: want at least 100", max)
	}
	if err := p.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	want := func(step string, w map[string]int) {
		t.Helper()
		got, err := p.Weights(ctx, []string{a, b})
		if err != nil {
			t.Fatalf("%s: Weights: %v", step, err)
		}
		if got[a] != w[a] || got[b] != w[b] || len(got) != 2 {
			t.Fatalf("%s: read back %v, want %v", step, got, w)
		}
	}
	steps := []map[string]int{{a: 0, b: max}, {a: max / 20, b: max - max/20}, {a: max, b: 0}, {a: max / 2, b: max / 2}}
	for _, w := range steps {
		if err := p.SetWeights(ctx, w); err != nil {
			t.Fatalf("SetWeights(%v): %v", w, err)
		}
		want("after a full change", w)
	}
	if err := p.SetWeights(ctx, map[string]int{a: 1}); err != nil {
		t.Fatalf("SetWeights of one backend: %v", err)
	}
	want("after changing one backend", map[string]int{a: 1, b: max / 2})
	for name, bad := range map[string]map[string]int{
		"unknown backend": {a: max, b: 0, "not-a-backend": 3},
		"above MaxWeight": {a: max, b: max + 1},
		"negative":        {a: -1, b: 0},
	} {
		if err := p.SetWeights(ctx, bad); err == nil {
			t.Errorf("%s: SetWeights(%v) succeeded", name, bad)
		}
		want("after a refused change ("+name+")", map[string]int{a: 1, b: max / 2})
	}
	if _, err := p.Weights(ctx, []string{"not-a-backend"}); err == nil {
		t.Error("Weights of an unknown backend: no error")
	}
}
