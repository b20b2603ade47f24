package source

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkFetchNewCommit measures what a poll or webhook costs when the
// branch has one new commit: ls-remote plus a shallow fetch of that commit
// into a warm cache, from a 3,000-commit repository served over HTTP by git
// http-backend.
func BenchmarkFetchNewCommit(b *testing.B) {
	r := newRepo(b)
	r.manyCommits(b, 3000)
	srv := serveRepos(b, r.root)
	url := srv.URL + "/" + r.name
	f := newFetcher(b, Options{AllowLocal: true})
	ctx := context.Background()
	if _, err := f.Fetch(ctx, Request{URL: url, Ref: Ref{Branch: "main"}}); err != nil {
		b.Fatal(err)
	}
	if n := runGit(b, r.dir, "rev-list", "--count", "HEAD"); n != "3001" {
		b.Fatalf("repository has %s commits", n)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		want := r.commit(b, "deploy/web/n.yaml", fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: n}\ndata: {i: \"%d\"}\n", i), fmt.Sprintf("Bump %d", i))
		b.StartTimer()
		c, err := f.Fetch(ctx, Request{URL: url, Ref: Ref{Branch: "main"}})
		if err != nil {
			b.Fatal(err)
		}
		if c.SHA != want {
			b.Fatalf("fetched %s, want %s", c.SHA, want)
		}
	}
}

// BenchmarkFetchCold measures a first fetch (empty cache) of the head of a
// 3,000-commit repository: shallow, so its cost does not grow with history.
func BenchmarkFetchCold(b *testing.B) {
	r := newRepo(b)
	r.manyCommits(b, 3000)
	srv := serveRepos(b, r.root)
	url := srv.URL + "/" + r.name
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		f := newFetcher(b, Options{AllowLocal: true})
		b.StartTimer()
		if _, err := f.Fetch(ctx, Request{URL: url, Ref: Ref{Branch: "main"}}); err != nil {
			b.Fatal(err)
		}
	}
}
