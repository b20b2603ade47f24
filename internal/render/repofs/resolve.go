package repofs

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Errors about references and files; callers branch on them with errors.Is.
var (
	// ErrAbsolute means a reference is an absolute path.
	ErrAbsolute = errors.New("absolute path refused")
	// ErrEscapes means a reference climbs above the repository root.
	ErrEscapes = errors.New("path leaves the repository")
	// ErrRemote means a reference names a remote location (URL, scp-like or go-getter form).
	ErrRemote = errors.New("remote reference refused")
	// ErrInvalidPath means a reference is empty or holds a NUL byte.
	ErrInvalidPath = errors.New("invalid path")
	// ErrOutside means a symbolic link leads outside the repository.
	ErrOutside = errors.New("symbolic link leads outside the repository")
	// ErrSymlinkLoop means symbolic links form a loop.
	ErrSymlinkLoop = errors.New("symbolic link loop")
	// ErrTooManyFiles means the render opened more files than Limits.MaxFiles.
	ErrTooManyFiles = errors.New("too many files")
	// ErrTooManyBytes means the render read more bytes than Limits.MaxBytes.
	ErrTooManyBytes = errors.New("too many bytes")
	// ErrNotExist means a referenced path does not exist in the repository.
	ErrNotExist = errors.New("not found in the repository")
)

var (
	schemeRE  = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*:`)
	scpLikeRE = regexp.MustCompile(`^[^/]*@[^/]*:`)
)

// Resolve resolves ref, written in a file that lives in directory dir
// (repository-relative, "." for the root), to a clean repository-relative
// path. It never touches a filesystem.
func Resolve(dir, ref string) (string, error) {
	switch {
	case ref == "" || strings.ContainsRune(ref, 0) || !utf8.ValidString(ref):
		return "", fmt.Errorf("%q: %w", ref, ErrInvalidPath)
	case strings.HasPrefix(ref, "/") || strings.HasPrefix(ref, `\`) || isDrive(ref):
		return "", fmt.Errorf("%q: %w", ref, ErrAbsolute)
	case IsRemote(ref):
		return "", fmt.Errorf("%q: %w", ref, ErrRemote)
	}
	if dir == "" {
		dir = "."
	}
	base, err := Clean(dir)
	if err != nil {
		return "", err
	}
	p := path.Join(base, ref)
	if p == ".." || strings.HasPrefix(p, "../") {
		return "", fmt.Errorf("%q from %q: %w", ref, dir, ErrEscapes)
	}
	if !fs.ValidPath(p) {
		return "", fmt.Errorf("%q from %q: %w", ref, dir, ErrInvalidPath)
	}
	return p, nil
}

// Clean checks and cleans a repository-relative path such as a service's
// path, refusing absolute paths and paths that climb above the root.
func Clean(p string) (string, error) {
	switch {
	case strings.ContainsRune(p, 0) || !utf8.ValidString(p):
		return "", fmt.Errorf("%q: %w", p, ErrInvalidPath)
	case strings.HasPrefix(p, "/") || strings.HasPrefix(p, `\`) || isDrive(p):
		return "", fmt.Errorf("%q: %w", p, ErrAbsolute)
	}
	if p == "" {
		return ".", nil
	}
	c := path.Clean(p)
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", fmt.Errorf("%q: %w", p, ErrEscapes)
	}
	return c, nil
}

// IsRemote reports whether ref names something outside the checkout by
// form: a URL with a scheme, an scp-like "user@host:path", a go-getter
// "git::" prefix, or a bare "github.com/..." as Kustomize reads it.
func IsRemote(ref string) bool {
	lower := strings.ToLower(ref)
	if strings.Contains(lower, "://") || strings.HasPrefix(lower, "git::") ||
		strings.HasPrefix(lower, "github.com/") || strings.HasPrefix(lower, "github.com:") {
		return true
	}
	if schemeRE.MatchString(ref) && !isDrive(ref) {
		return true
	}
	return scpLikeRE.MatchString(ref)
}

func isDrive(p string) bool {
	return len(p) >= 2 && p[1] == ':' && (p[0] >= 'A' && p[0] <= 'Z' || p[0] >= 'a' && p[0] <= 'z') &&
		(len(p) == 2 || p[2] == '/' || p[2] == '\\')
}
