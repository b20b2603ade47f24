// Package gittest makes real Git repositories for tests and serves them over
// smart HTTP with git http-backend, so that tests of Flotilla's sources fetch
// from the same kind of server a user's Git host is.
//
// Repositories are made with the git command in a temporary directory; every
// commit has a fixed author and date so commit ids are reproducible within a
// test.
package gittest

import (
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// Author is the name every commit made by Repo carries.
const Author = "Ada Lovelace"

// Repo is a working repository inside Root, a directory that Serve can export.
type Repo struct {
	Root string // the directory holding the repository (GIT_PROJECT_ROOT)
	Dir  string // the repository itself
	Name string // Dir's name below Root, e.g. "shop.git"
}

// NewRepo makes an empty repository named name (e.g. "shop.git") on branch
// main. Call Commit to add content.
func NewRepo(t testing.TB, name string) *Repo {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatalf("the git command is needed to make test repositories: %v", err)
	}
	root := t.TempDir()
	r := &Repo{Root: root, Dir: filepath.Join(root, name), Name: name}
	if err := os.MkdirAll(r.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	r.Git(t, "init", "-q", "-b", "main")
	r.Git(t, "config", "uploadpack.allowReachableSHA1InWant", "true")
	r.Git(t, "config", "uploadpack.allowAnySHA1InWant", "true")
	r.Git(t, "config", "http.receivepack", "false")
	return r
}

// Git runs the git command in the repository and returns its trimmed output.
func (r *Repo) Git(t testing.TB, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = r.Dir
	cmd.Env = append(os.Environ(),
		"GIT_AUTHOR_NAME="+Author, "GIT_AUTHOR_EMAIL=ada@example.com",
		"GIT_COMMITTER_NAME="+Author, "GIT_COMMITTER_EMAIL=ada@example.com",
		"GIT_CONFIG_NOSYSTEM=1", "HOME="+r.Root,
	)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// Commit writes files (path relative to the repository -> content; an empty
// content removes the file), commits them all with msg and returns the new
// commit id.
func (r *Repo) Commit(t testing.TB, msg string, files map[string]string) string {
	t.Helper()
	for p, body := range files {
		full := filepath.Join(r.Dir, filepath.FromSlash(p))
		if body == "" {
			if err := os.Remove(full); err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r.Git(t, "add", "-A")
	r.Git(t, "commit", "-q", "--allow-empty", "-m", msg)
	return r.Head(t)
}

// Head returns the commit id of HEAD.
func (r *Repo) Head(t testing.TB) string {
	t.Helper()
	return r.Git(t, "rev-parse", "HEAD")
}

// FileURL returns the repository's file:// URL.
func (r *Repo) FileURL() string { return "file://" + r.Dir }

// Server serves the repositories of one root over smart HTTP.
type Server struct {
	*httptest.Server
	// Uploads counts POSTs to git-upload-pack (fetches that transfer objects).
	Uploads atomic.Int64
	// InfoRefs counts ref advertisements (ls-remote).
	InfoRefs atomic.Int64
}

// Serve exports every repository under root with git http-backend on a
// loopback address until the test ends.
func Serve(t testing.TB, root string) *Server {
	t.Helper()
	out, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		t.Fatalf("git --exec-path: %v", err)
	}
	backend := filepath.Join(strings.TrimSpace(string(out)), "git-http-backend")
	if _, err := os.Stat(backend); err != nil {
		t.Fatalf("git http-backend is needed for HTTP tests: %v", err)
	}
	s := &Server{}
	h := &cgi.Handler{
		Path: backend,
		Env:  []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1", "GIT_CONFIG_NOSYSTEM=1"},
	}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/info/refs") {
			s.InfoRefs.Add(1)
		}
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/git-upload-pack") {
			s.Uploads.Add(1)
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

// RepoURL returns the HTTP URL of repo on s.
func (s *Server) RepoURL(repo *Repo) string { return s.Server.URL + "/" + repo.Name }
