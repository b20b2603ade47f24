package deploy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/internal/source/gittest"
	"flotilla.dev/flotilla/internal/store"
)

// copyChart copies the render package's test chart into the repository.
func copyChart(tb testing.TB, repo *gittest.Repo) map[string]string {
	tb.Helper()
	files := map[string]string{}
	src := filepath.Join("..", "render", "testdata", "repo", "helm", "web")
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		files["deploy/web/"+filepath.ToSlash(rel)] = string(data)
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return files
}

// BenchmarkRelease10kClusters measures a new commit becoming a release for
// 10,000 clusters with 10 distinct variable sets on SQLite, end to end:
// ls-remote and shallow fetch (file://), listing the 10,000 Cluster objects,
// checkout, one chart load and 10 Helm renders, 10 bundles stored, the
// Release (10,000 cluster names) created and the service's status written.
// "rollout" hands over to a Pending Rollout (the release is stored and the
// runner takes over); "assign" also assigns it to all 10,000 clusters in
// one transaction, as for a service without a strategy.
func BenchmarkRelease10kClusters(b *testing.B) {
	for _, mode := range []string{"rollout", "assign"} {
		b.Run(mode, func(b *testing.B) {
			repo := gittest.NewRepo(b, "shop.git")
			repo.Commit(b, "Add chart", copyChart(b, repo))
			e := newEnv(b, false)
			ctx := context.Background()
			var objs []*store.Object
			for i := range 10_000 {
				spec, _ := json.Marshal(v1.ClusterSpec{Vars: map[string]string{"replicas": fmt.Sprint(i%10 + 1)}})
				objs = append(objs, &store.Object{Kind: v1.KindCluster, Name: fmt.Sprintf("c-%05d", i),
					Labels: map[string]string{"env": "prod", "region": fmt.Sprintf("r%d", i%10)}, Spec: spec})
			}
			if _, err := e.st.Apply(ctx, objs, tester); err != nil {
				b.Fatal(err)
			}
			e.put(gitSource("shop", repo.FileURL()))
			svc := service("web", "shop", "deploy/web", map[string]string{"env": "prod"})
			svc.Spec.Helm = &v1.HelmOptions{ValuesFiles: []string{"values-prod.yaml"},
				Values: json.RawMessage(`{"replicas":"{{ .Cluster.Vars.replicas }}","region":"{{ .Cluster.Labels.region }}"}`)}
			if mode == "rollout" {
				svc.Spec.Strategy = "canary"
			}
			e.put(svc)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				want := repo.Commit(b, fmt.Sprintf("Release 3.%d", i), map[string]string{"deploy/web/values-prod.yaml": fmt.Sprintf("image: example.com/web:3.%d\n", i)})
				b.StartTimer()
				rel, created, err := e.c.CreateRelease(ctx, "web", "", tester)
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				n := 0
				for _, rb := range rel.Status.Bundles {
					n += len(rb.Clusters)
				}
				if !created || rel.Spec.Commit.SHA != want || len(rel.Status.Bundles) != 10 || n != 10_000 {
					b.Fatalf("release %s of %s: created=%v, %d bundles, %d clusters", rel.Metadata.Name, rel.Spec.Commit.SHA, created, len(rel.Status.Bundles), n)
				}
				if mode == "assign" {
					if r, _ := e.assigned("c-09999", "web"); r != rel.Metadata.Name {
						b.Fatalf("c-09999 runs %q", r)
					}
				}
				b.StartTimer()
			}
		})
	}
}
