package source

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// runGit runs the git command in dir and returns its trimmed output.
func runGit(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"GIT_AUTHOR_NAME=Ada Lovelace", "GIT_AUTHOR_EMAIL=ada@example.com",
		"GIT_COMMITTER_NAME=Ada Lovelace", "GIT_COMMITTER_EMAIL=ada@example.com",
		"GIT_AUTHOR_DATE=2026-01-02T03:04:05Z", "GIT_COMMITTER_DATE=2026-01-02T03:04:05Z",
		"GIT_CONFIG_NOSYSTEM=1", "HOME="+dir,
	)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

func writeFile(t testing.TB, path, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// testRepo is a working repository under a directory that an HTTP server
// can export.
type testRepo struct {
	root string // GIT_PROJECT_ROOT
	dir  string // the repository
	name string
}

// newRepo makes a repository "shop.git" (non-bare, exported) with one
// commit on main holding a manifest and a symlink.
func newRepo(t testing.TB) *testRepo {
	t.Helper()
	root := t.TempDir()
	r := &testRepo{root: root, dir: filepath.Join(root, "shop.git"), name: "shop.git"}
	if err := os.MkdirAll(r.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	runGit(t, r.dir, "init", "-q", "-b", "main")
	runGit(t, r.dir, "config", "uploadpack.allowReachableSHA1InWant", "true")
	runGit(t, r.dir, "config", "uploadpack.allowAnySHA1InWant", "true")
	runGit(t, r.dir, "config", "http.receivepack", "false")
	writeFile(t, filepath.Join(r.dir, "deploy", "web", "cm.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\n")
	if err := os.Symlink("cm.yaml", filepath.Join(r.dir, "deploy", "web", "link.yaml")); err != nil {
		t.Fatal(err)
	}
	runGit(t, r.dir, "add", ".")
	runGit(t, r.dir, "commit", "-q", "-m", "Add web\n\nFirst release.")
	return r
}

func (r *testRepo) commit(t testing.TB, file, body, msg string) string {
	t.Helper()
	writeFile(t, filepath.Join(r.dir, file), body)
	runGit(t, r.dir, "add", ".")
	runGit(t, r.dir, "commit", "-q", "-m", msg)
	return runGit(t, r.dir, "rev-parse", "HEAD")
}

func (r *testRepo) head(t testing.TB) string { return runGit(t, r.dir, "rev-parse", "HEAD") }

func (r *testRepo) fileURL() string { return "file://" + r.dir }

// gitServer serves a directory of repositories with git http-backend.
type gitServer struct {
	*httptest.Server
	uploads  atomic.Int64 // POSTs to git-upload-pack
	infoRefs atomic.Int64
	token    string // when set, Basic auth with this password is required
	delay    time.Duration
	mu       sync.Mutex
	authSeen []string
}

func serveRepos(t testing.TB, root string) *gitServer {
	t.Helper()
	backend := "/usr/lib/git-core/git-http-backend"
	if _, err := os.Stat(backend); err != nil {
		t.Fatalf("git http-backend is needed for HTTP tests: %v", err)
	}
	s := &gitServer{}
	h := &cgi.Handler{
		Path: backend,
		Env:  []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1", "GIT_CONFIG_NOSYSTEM=1"},
	}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.authSeen = append(s.authSeen, r.Header.Get("Authorization"))
		s.mu.Unlock()
		if s.token != "" {
			_, pass, ok := r.BasicAuth()
			if !ok || pass != s.token {
				w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
		}
		if strings.HasSuffix(r.URL.Path, "/info/refs") {
			s.infoRefs.Add(1)
			time.Sleep(s.delay)
		}
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/git-upload-pack") {
			s.uploads.Add(1)
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

// manyCommits appends n commits to the repository with git fast-import,
// each changing one file, in well under a second per thousand commits.
func (r *testRepo) manyCommits(t testing.TB, n int) {
	t.Helper()
	parent := r.head(t)
	var b bytes.Buffer
	for i := 0; i < n; i++ {
		body := fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: gen}\ndata: {n: \"%d\"}\n", i)
		fmt.Fprintf(&b, "commit refs/heads/main\nmark :%d\ncommitter Ada Lovelace <ada@example.com> %d +0000\ndata <<EOF\nGenerated commit %d\nEOF\n", i+1, 1767000000+i, i)
		if i == 0 {
			fmt.Fprintf(&b, "from %s\n", parent)
		} else {
			fmt.Fprintf(&b, "from :%d\n", i)
		}
		fmt.Fprintf(&b, "M 100644 inline deploy/gen/cm.yaml\ndata %d\n%s\n", len(body), body)
	}
	cmd := exec.Command("git", "fast-import", "--quiet", "--force")
	cmd.Dir = r.dir
	cmd.Stdin = &b
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git fast-import: %v\n%s", err, out)
	}
	runGit(t, r.dir, "reset", "-q", "--hard", "main")
}
