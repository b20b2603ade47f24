package render_test

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"flotilla.dev/flotilla/internal/render"
	"flotilla.dev/flotilla/internal/source"
)

func runGit(tb testing.TB, dir string, args ...string) string {
	tb.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=a", "GIT_AUTHOR_EMAIL=a@example.com",
		"GIT_COMMITTER_NAME=a", "GIT_COMMITTER_EMAIL=a@example.com", "GIT_CONFIG_NOSYSTEM=1", "HOME="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		tb.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// copyTree copies testdata/repo/<sub> into dst/<sub>.
func copyTree(tb testing.TB, sub, dst string) {
	tb.Helper()
	src := filepath.Join("testdata", "repo", sub)
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(filepath.Join("testdata", "repo"), p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), data, 0o644)
	})
	if err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkCommitToBundles measures a new commit on a branch becoming
// bundles for 10,000 clusters with 10 distinct variable sets: ls-remote,
// shallow fetch, read-only checkout, one chart load and ten Helm renders,
// 10,000 digests. Storing the release is not included (package store).
func BenchmarkCommitToBundles(b *testing.B) {
	repo := filepath.Join(b.TempDir(), "shop")
	runGit(b, b.TempDir(), "init", "-q", "-b", "main", repo)
	copyTree(b, "helm", repo)
	runGit(b, repo, "add", ".")
	runGit(b, repo, "commit", "-q", "-m", "Add chart")
	f, err := source.NewFetcher(source.Options{CacheDir: b.TempDir(), AllowLocal: true})
	if err != nil {
		b.Fatal(err)
	}
	url := "file://" + repo
	clusters := make([]render.ClusterVars, 10_000)
	for i := range clusters {
		clusters[i] = render.ClusterVars{
			Name:   fmt.Sprintf("c-%05d", i),
			Labels: map[string]string{"region": fmt.Sprintf("r%d", i%10)},
			Vars:   map[string]string{"replicas": fmt.Sprint(i%10 + 1)},
		}
	}
	r := render.NewRenderer(render.Options{})
	ctx := context.Background()
	checkouts := b.TempDir()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if err := os.WriteFile(filepath.Join(repo, "helm", "web", "values-prod.yaml"), []byte(fmt.Sprintf("image: example.com/web:3.%d\n", i)), 0o644); err != nil {
			b.Fatal(err)
		}
		runGit(b, repo, "commit", "-q", "-a", "-m", fmt.Sprintf("Release 3.%d", i))
		b.StartTimer()

		c, err := f.Fetch(ctx, source.Request{URL: url, Ref: source.Ref{Branch: "main"}})
		if err != nil {
			b.Fatal(err)
		}
		dst := filepath.Join(checkouts, c.SHA)
		if err := f.Checkout(ctx, url, c.SHA, dst); err != nil {
			b.Fatal(err)
		}
		root, err := os.OpenRoot(dst)
		if err != nil {
			b.Fatal(err)
		}
		res, err := r.RenderFleet(ctx, render.Request{
			FS: root.FS(), Commit: c.SHA, Path: "helm/web", Namespace: "web",
			Helm: render.Helm{ValuesFiles: []string{"values-prod.yaml"}, Values: map[string]any{
				"replicas": "{{ .Cluster.Vars.replicas }}", "region": "{{ .Cluster.Labels.region }}",
			}},
		}, clusters)
		root.Close()
		if err != nil {
			b.Fatal(err)
		}
		if res.Renders != 10 || len(res.Bundles) != 10 {
			b.Fatalf("%d renders, %d bundles", res.Renders, len(res.Bundles))
		}
	}
}
