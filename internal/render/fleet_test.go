package render

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// fleet returns n clusters spread over sets distinct variable sets; every
// cluster has its own name and an unreferenced label that differs.
func fleet(n, sets int) []ClusterVars {
	cs := make([]ClusterVars, n)
	for i := range cs {
		s := i % sets
		cs[i] = ClusterVars{
			Name:   fmt.Sprintf("cluster-%05d", i),
			Labels: map[string]string{"region": fmt.Sprintf("region-%d", s), "rack": fmt.Sprint(i)},
			Vars:   map[string]string{"replicas": fmt.Sprint(s + 1)},
		}
	}
	return cs
}

func helmFleetRequest(t testing.TB) Request {
	t.Helper()
	return Request{FS: testRepo(t).FS(), Commit: "c1", Path: "helm/web", Namespace: "web", Helm: Helm{Values: map[string]any{
		"replicas": "{{ .Cluster.Vars.replicas }}",
		"region":   "{{ .Cluster.Labels.region }}",
	}}}
}

func TestRenderFleetSharesRenders(t *testing.T) {
	clusters := fleet(10_000, 10)
	repo := testRepo(t)
	t.Run("helm", func(t *testing.T) {
		r := NewRenderer(Options{})
		req := helmFleetRequest(t)
		res, err := r.RenderFleet(context.Background(), req, clusters)
		if err != nil {
			t.Fatal(err)
		}
		if res.Renders != 10 || len(res.Bundles) != 10 {
			t.Fatalf("renders %d, bundles %d; want 10 and 10", res.Renders, len(res.Bundles))
		}
		for i, c := range res.Clusters {
			if c.Err != nil || c.Cluster != clusters[i].Name {
				t.Fatalf("cluster %d: %+v", i, c)
			}
			if c.Digest != res.Clusters[i%10].Digest {
				t.Fatalf("cluster %d got %s, want the digest of its variable set %s", i, c.Digest, res.Clusters[i%10].Digest)
			}
		}
		// A second call for the same commit renders nothing.
		again, err := r.RenderFleet(context.Background(), req, clusters[:100])
		if err != nil {
			t.Fatal(err)
		}
		if again.Renders != 0 {
			t.Fatalf("cached fleet render did %d renders", again.Renders)
		}
		if s := r.Stats(); s.Builds != 1 || s.Renders != 10 {
			t.Fatalf("stats %+v, want 1 build and 10 renders", s)
		}
	})
	t.Run("kustomize by name", func(t *testing.T) {
		// The base refers to ${cluster.name}: every cluster is its own set.
		r := NewRenderer(Options{})
		req := Request{FS: repo.FS(), Commit: "c1", Path: "kustomize/base", Namespace: "web"}
		res, err := r.RenderFleet(context.Background(), req, clusters[:50])
		if err != nil {
			t.Fatal(err)
		}
		if res.Renders != 50 || len(res.Bundles) != 50 || r.Stats().Builds != 1 {
			t.Fatalf("renders %d, bundles %d, builds %d; want 50, 50, 1", res.Renders, len(res.Bundles), r.Stats().Builds)
		}
	})
	t.Run("overlay by vars", func(t *testing.T) {
		r := NewRenderer(Options{})
		req := Request{FS: repo.FS(), Commit: "c1", Path: "kustomize/overlays/prod", Namespace: "web"}
		// Same region and replicas, different names: the overlay still
		// refers to the base's ${cluster.name}, so 3 clusters are 3 renders;
		// two clusters with one name share.
		cs := []ClusterVars{prodEU, prodEU, {Name: "x", Labels: prodEU.Labels, Vars: prodEU.Vars}}
		res, err := r.RenderFleet(context.Background(), req, cs)
		if err != nil {
			t.Fatal(err)
		}
		if res.Renders != 2 {
			t.Fatalf("renders %d, want 2", res.Renders)
		}
	})
}

func TestRenderFleetPerClusterErrors(t *testing.T) {
	repo := testRepo(t)
	clusters := []ClusterVars{prodEU, {Name: "bare"}}
	res, err := NewRenderer(Options{}).RenderFleet(context.Background(), Request{FS: repo.FS(), Path: "raw/app"}, clusters)
	if err != nil {
		t.Fatal(err)
	}
	if res.Clusters[0].Err != nil || res.Clusters[0].Digest == "" {
		t.Fatalf("prod-eu-1: %+v", res.Clusters[0])
	}
	if !errors.Is(res.Clusters[1].Err, ErrVariable) {
		t.Fatalf("bare cluster: got %v, want ErrVariable", res.Clusters[1].Err)
	}
	want := "raw/app/configmap.yaml:7:"
	if got := res.Clusters[1].Err.Error(); !strings.Contains(got, want) {
		t.Fatalf("error %q does not name %s", got, want)
	}
}
