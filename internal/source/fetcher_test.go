package source

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func newFetcher(t testing.TB, opts Options) *Fetcher {
	t.Helper()
	if opts.CacheDir == "" {
		opts.CacheDir = t.TempDir()
	}
	f, err := NewFetcher(opts)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestFetchFileURLAndCheckout(t *testing.T) {
	r := newRepo(t)
	f := newFetcher(t, Options{AllowLocal: true})
	ctx := context.Background()
	c, err := f.Fetch(ctx, Request{URL: r.fileURL(), Ref: Ref{Branch: "main"}})
	if err != nil {
		t.Fatal(err)
	}
	want := &Commit{
		SHA: r.head(t), Ref: "refs/heads/main", Message: "Add web\n\nFirst release.\n",
		Author: "Ada Lovelace", AuthorEmail: "ada@example.com", Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
	}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Fatalf("commit (-want +got):\n%s", diff)
	}
	dst := filepath.Join(t.TempDir(), "tree")
	if err := f.Checkout(ctx, r.fileURL(), c.SHA, dst); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { RemoveCheckout(dst) })
	data, err := os.ReadFile(filepath.Join(dst, "deploy", "web", "link.yaml"))
	if err != nil || string(data) != "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\n" {
		t.Fatalf("checked-out symlink: %q, %v", data, err)
	}
	if target, err := os.Readlink(filepath.Join(dst, "deploy", "web", "link.yaml")); err != nil || target != "cm.yaml" {
		t.Fatalf("symlink target %q, %v", target, err)
	}
	st, err := os.Stat(filepath.Join(dst, "deploy", "web", "cm.yaml"))
	if err != nil || st.Mode().Perm()&0o222 != 0 {
		t.Fatalf("checked-out file is writable: %v %v", st.Mode(), err)
	}
	if err := os.WriteFile(filepath.Join(dst, "new.yaml"), nil, 0o644); err == nil && os.Geteuid() != 0 {
		t.Fatal("checkout directory is writable")
	}
	if err := f.Checkout(ctx, r.fileURL(), c.SHA, dst); err == nil {
		t.Fatal("checkout over an existing directory succeeded")
	}
	// Only the tree appears next to dst, no leftovers.
	ents, _ := os.ReadDir(filepath.Dir(dst))
	if len(ents) != 1 {
		t.Fatalf("checkout left %d entries beside it", len(ents))
	}
}

func TestFetchOverHTTP(t *testing.T) {
	r := newRepo(t)
	first := r.head(t)
	runGit(t, r.dir, "tag", "v1.0.0")
	second := r.commit(t, "deploy/web/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web2}\n", "Rename web")
	runGit(t, r.dir, "tag", "-a", "-m", "release 1.2.0", "v1.2.0")
	runGit(t, r.dir, "tag", "v2.0.0-rc.1")
	runGit(t, r.dir, "tag", "not-a-version")
	srv := serveRepos(t, r.root)
	url := srv.URL + "/" + r.name
	f := newFetcher(t, Options{AllowLocal: true})
	ctx := context.Background()

	tests := []struct {
		ref  Ref
		want string
	}{
		{Ref{Branch: "main"}, second},
		{Ref{Tag: "v1.0.0"}, first},
		{Ref{Tag: "v1.2.0"}, second}, // annotated: the commit, not the tag object
		{Ref{Semver: ">=1.0 <2"}, second},
		{Ref{Semver: "~1.0"}, first},
		{Ref{Commit: first}, first},
	}
	for _, tt := range tests {
		c, err := f.Fetch(ctx, Request{URL: url, Ref: tt.ref})
		if err != nil {
			t.Fatalf("%s: %v", tt.ref, err)
		}
		if c.SHA != tt.want {
			t.Fatalf("%s: got %s, want %s", tt.ref, c.SHA, tt.want)
		}
	}
	for _, ref := range []Ref{{Branch: "nope"}, {Tag: "v9"}, {Semver: ">=3"}} {
		if _, err := f.Fetch(ctx, Request{URL: url, Ref: ref}); !errors.Is(err, ErrRefNotFound) {
			t.Fatalf("%s: got %v, want ErrRefNotFound", ref, err)
		}
	}

	// Polling an unchanged branch lists refs but fetches nothing.
	before := f.Stats()
	if _, err := f.Fetch(ctx, Request{URL: url, Ref: Ref{Branch: "main"}}); err != nil {
		t.Fatal(err)
	}
	if after := f.Stats(); after.Fetches != before.Fetches || after.Lists != before.Lists+1 {
		t.Fatalf("unchanged branch: stats %+v -> %+v", before, after)
	}
	// A new commit is fetched once, shallow.
	third := r.commit(t, "deploy/web/extra.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: extra}\n", "Add extra")
	c, err := f.Fetch(ctx, Request{URL: url, Ref: Ref{Branch: "main"}})
	if err != nil || c.SHA != third || c.Message != "Add extra\n" {
		t.Fatalf("new commit: %+v, %v", c, err)
	}
	if f.Stats().Fetches != before.Fetches+1 {
		t.Fatalf("new commit: %d fetches, want %d", f.Stats().Fetches, before.Fetches+1)
	}
	dst := filepath.Join(t.TempDir(), "tree")
	if err := f.Checkout(ctx, url, third, dst); err != nil {
		t.Fatal(err)
	}
	defer RemoveCheckout(dst)
	var files []string
	fs.WalkDir(os.DirFS(dst), ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	if diff := cmp.Diff([]string{"deploy/web/cm.yaml", "deploy/web/extra.yaml", "deploy/web/link.yaml"}, files); diff != "" {
		t.Fatalf("checkout files (-want +got):\n%s", diff)
	}
}

func TestConcurrentFetchesShareOne(t *testing.T) {
	r := newRepo(t)
	srv := serveRepos(t, r.root)
	srv.delay = 200 * time.Millisecond
	f := newFetcher(t, Options{AllowLocal: true})
	url := srv.URL + "/" + r.name
	var wg sync.WaitGroup
	shas := make([]string, 20)
	errs := make([]error, 20)
	for i := range shas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := f.Fetch(context.Background(), Request{URL: url, Ref: Ref{Branch: "main"}})
			errs[i] = err
			if err == nil {
				shas[i] = c.SHA
			}
		}()
	}
	wg.Wait()
	for i := range shas {
		if errs[i] != nil || shas[i] != r.head(t) {
			t.Fatalf("fetch %d: %s, %v", i, shas[i], errs[i])
		}
	}
	if got := srv.uploads.Load(); got != 1 {
		t.Fatalf("server saw %d upload-pack requests, want 1", got)
	}
	if s := f.Stats(); s.Fetches != 1 || s.Lists != 1 {
		t.Fatalf("stats %+v, want one list and one fetch", s)
	}
}

type staticCreds map[string]*Secret

func (c staticCreds) Secret(_ context.Context, ref string) (*Secret, error) {
	s, ok := c[ref]
	if !ok {
		return nil, errors.New("no such secret")
	}
	return s, nil
}

func TestFetchWithToken(t *testing.T) {
	r := newRepo(t)
	srv := serveRepos(t, r.root)
	srv.token = "s3cret"
	url := srv.URL + "/" + r.name
	f := newFetcher(t, Options{AllowLocal: true, Credentials: staticCreds{
		"good": {Token: "s3cret"}, "bad": {Token: "wrong"}, "empty": {},
	}})
	ctx := context.Background()
	if _, err := f.Fetch(ctx, Request{URL: url, Ref: Ref{Branch: "main"}}); err == nil {
		t.Fatal("anonymous fetch of a private repository succeeded")
	}
	if _, err := f.Fetch(ctx, Request{URL: url, Ref: Ref{Branch: "main"}, SecretRef: "bad"}); err == nil {
		t.Fatal("fetch with a wrong token succeeded")
	}
	if _, err := f.Fetch(ctx, Request{URL: url, Ref: Ref{Branch: "main"}, SecretRef: "empty"}); !errors.Is(err, ErrCredentials) {
		t.Fatalf("empty secret: got %v, want ErrCredentials", err)
	}
	if _, err := f.Fetch(ctx, Request{URL: url, Ref: Ref{Branch: "main"}, SecretRef: "missing"}); !errors.Is(err, ErrCredentials) {
		t.Fatalf("missing secret: got %v, want ErrCredentials", err)
	}
	c, err := f.Fetch(ctx, Request{URL: url, Ref: Ref{Branch: "main"}, SecretRef: "good"})
	if err != nil || c.SHA != r.head(t) {
		t.Fatalf("token fetch: %+v, %v", c, err)
	}
}
