package repofs

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestResolve(t *testing.T) {
	tests := []struct {
		dir, ref string
		want     string
		err      error
	}{
		{"deploy/overlay", "../base", "deploy/base", nil},
		{"deploy", "./a/b.yaml", "deploy/a/b.yaml", nil},
		{".", "x", "x", nil},
		{"", "x/../y", "y", nil},
		{"deploy", "../../etc/passwd", "", ErrEscapes},
		{"deploy", "a/../../..", "", ErrEscapes},
		{"deploy", "/etc/passwd", "", ErrAbsolute},
		{"deploy", `\\server\share`, "", ErrAbsolute},
		{"deploy", "C:/x", "", ErrAbsolute},
		{"deploy", "https://example.com/x.yaml", "", ErrRemote},
		{"deploy", "github.com/org/repo//deploy?ref=v1", "", ErrRemote},
		{"deploy", "git@github.com:org/repo.git", "", ErrRemote},
		{"deploy", "git::https://x/y", "", ErrRemote},
		{"deploy", "ssh:host/repo", "", ErrRemote},
		{"deploy", "file:///etc", "", ErrRemote},
		{"deploy", "", "", ErrInvalidPath},
		{"deploy", "a\x00b", "", ErrInvalidPath},
		{"../x", "a", "", ErrEscapes},
	}
	for _, tt := range tests {
		got, err := Resolve(tt.dir, tt.ref)
		if !errors.Is(err, tt.err) || got != tt.want {
			t.Errorf("Resolve(%q, %q) = %q, %v; want %q, %v", tt.dir, tt.ref, got, err, tt.want, tt.err)
		}
		if err != nil && !strings.Contains(err.Error(), "\"") {
			t.Errorf("error %q does not quote the reference", err)
		}
	}
}

func FuzzResolve(f *testing.F) {
	for _, s := range []string{"../base", "/etc/passwd", "a/../../b", "https://x", "git@h:p", "C:/x", "./x/./y", "...", "a/..../b"} {
		f.Add("deploy/app", s)
	}
	f.Fuzz(func(t *testing.T, dir, ref string) {
		got, err := Resolve(dir, ref)
		if err != nil {
			return
		}
		if !fs.ValidPath(got) {
			t.Fatalf("Resolve(%q, %q) = %q: not a valid fs path", dir, ref, got)
		}
		if got == ".." || strings.HasPrefix(got, "../") || strings.HasPrefix(got, "/") {
			t.Fatalf("Resolve(%q, %q) = %q escapes", dir, ref, got)
		}
		if IsRemote(ref) {
			t.Fatalf("Resolve(%q, %q) accepted a remote reference", dir, ref)
		}
	})
}

// tree builds a repository and a sibling "outside" directory with a secret.
func tree(t *testing.T) (repo string) {
	t.Helper()
	base := t.TempDir()
	repo = filepath.Join(base, "repo")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(repo, "deploy"), 0o755))
	must(os.MkdirAll(filepath.Join(base, "other-cache"), 0o755))
	must(os.WriteFile(filepath.Join(base, "other-cache", "secret.yaml"), []byte("kind: Secret\n"), 0o644))
	must(os.WriteFile(filepath.Join(repo, "deploy", "ok.yaml"), []byte("kind: ConfigMap\n"), 0o644))
	must(os.WriteFile(filepath.Join(repo, "deploy", "big.yaml"), make([]byte, 4096), 0o644))
	must(os.Symlink("ok.yaml", filepath.Join(repo, "deploy", "inside.yaml")))
	must(os.Symlink("/etc/passwd", filepath.Join(repo, "deploy", "etc.yaml")))
	must(os.Symlink("../../other-cache/secret.yaml", filepath.Join(repo, "deploy", "cache.yaml")))
	must(os.Symlink("loop-b.yaml", filepath.Join(repo, "deploy", "loop-a.yaml")))
	must(os.Symlink("loop-a.yaml", filepath.Join(repo, "deploy", "loop-b.yaml")))
	return repo
}

func openRoot(t *testing.T, dir string) fs.FS {
	t.Helper()
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	return root.FS()
}

func TestFSConfinesSymlinks(t *testing.T) {
	f := New(openRoot(t, tree(t)), Limits{})
	if data, err := f.ReadFile("deploy/inside.yaml"); err != nil || string(data) != "kind: ConfigMap\n" {
		t.Fatalf("symlink inside the repository: %q, %v", data, err)
	}
	for name, want := range map[string]error{
		"deploy/etc.yaml":    ErrOutside,
		"deploy/cache.yaml":  ErrOutside,
		"deploy/loop-a.yaml": ErrSymlinkLoop,
		"deploy/none.yaml":   ErrNotExist,
		"../repo/x":          ErrInvalidPath,
		"/etc/passwd":        ErrInvalidPath,
	} {
		_, err := f.ReadFile(name)
		if !errors.Is(err, want) {
			t.Errorf("ReadFile(%s): got %v, want %v", name, err, want)
		}
		if err != nil && !strings.Contains(err.Error(), strings.TrimPrefix(name, "/")) {
			t.Errorf("error %q does not name %s", err, name)
		}
	}
}

func TestFSBudgets(t *testing.T) {
	repo := openRoot(t, tree(t))
	f := New(repo, Limits{MaxBytes: 1000})
	if _, err := f.ReadFile("deploy/big.yaml"); !errors.Is(err, ErrTooManyBytes) || !strings.Contains(err.Error(), "deploy/big.yaml") {
		t.Fatalf("oversized file: %v", err)
	}
	f = New(repo, Limits{MaxFiles: 2})
	for i := 0; i < 2; i++ {
		if _, err := f.ReadFile("deploy/ok.yaml"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.ReadFile("deploy/ok.yaml"); !errors.Is(err, ErrTooManyFiles) {
		t.Fatalf("third file: got %v, want ErrTooManyFiles", err)
	}
}
