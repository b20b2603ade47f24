package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// Checkout writes the tree of commit sha, which must be in the cache for
// url (see Fetch), into dst, a directory that must not exist yet. Files are
// written read-only, symbolic links are kept as links (package render
// confines them to the tree), submodules are skipped. The tree is written
// beside dst and renamed into place, so dst appears complete or not at all.
func (f *Fetcher) Checkout(ctx context.Context, url, sha, dst string) error {
	if !hexCommit.MatchString(sha) {
		return fmt.Errorf("source: commit %q: %w", sha, ErrRefRefused)
	}
	if _, err := os.Lstat(dst); err == nil {
		return fmt.Errorf("source: checkout %s: already exists", dst)
	}
	l := f.lock(url)
	l.Lock()
	repo, err := f.openCache(url)
	if err != nil {
		l.Unlock()
		return err
	}
	c, err := repo.CommitObject(plumbing.NewHash(sha))
	if err != nil {
		l.Unlock()
		return fmt.Errorf("source: %s: commit %s: %w", url, sha, err)
	}
	tree, err := c.Tree()
	l.Unlock()
	if err != nil {
		return fmt.Errorf("source: %s: tree of %s: %w", url, sha, err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp-")
	if err != nil {
		return fmt.Errorf("source: checkout: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			makeWritable(tmp)
			os.RemoveAll(tmp)
		}
	}()
	root, err := os.OpenRoot(tmp)
	if err != nil {
		return fmt.Errorf("source: checkout: %w", err)
	}
	defer root.Close()
	w := &treeWriter{root: root, maxFiles: f.opts.MaxCheckoutFiles, maxBytes: f.opts.MaxCheckoutBytes}
	if err := w.write(ctx, tree, ""); err != nil {
		return fmt.Errorf("source: checkout of %s: %w", sha, err)
	}
	for i := len(w.dirs) - 1; i >= 0; i-- {
		if err := root.Chmod(w.dirs[i], 0o555); err != nil {
			return fmt.Errorf("source: checkout: %w", err)
		}
	}
	if err := os.Chmod(tmp, 0o555); err != nil {
		return fmt.Errorf("source: checkout: %w", err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return fmt.Errorf("source: checkout: %w", err)
	}
	ok = true
	return nil
}

// RemoveCheckout deletes a tree written by Checkout.
func RemoveCheckout(dir string) error {
	makeWritable(dir)
	return os.RemoveAll(dir)
}

func makeWritable(dir string) {
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(p, 0o755)
		}
		return nil
	})
}

type treeWriter struct {
	root     *os.Root
	maxFiles int
	maxBytes int64
	files    int
	bytes    int64
	dirs     []string
}

func (w *treeWriter) write(ctx context.Context, t *object.Tree, dir string) error {
	for _, e := range t.Entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := safeName(e.Name); err != nil {
			return fmt.Errorf("%w: %q in %q: %w", ErrUnsafeTree, e.Name, dir, err)
		}
		p := e.Name
		if dir != "" {
			p = dir + "/" + e.Name
		}
		w.files++
		if w.files > w.maxFiles {
			return fmt.Errorf("%w: more than %d files", ErrCheckoutTooLarge, w.maxFiles)
		}
		switch e.Mode {
		case filemode.Dir:
			sub, err := t.Tree(e.Name)
			if err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			if err := w.root.Mkdir(p, 0o755); err != nil {
				return err
			}
			w.dirs = append(w.dirs, p)
			if err := w.write(ctx, sub, p); err != nil {
				return err
			}
		case filemode.Submodule:
			continue
		case filemode.Symlink:
			target, err := w.blob(t, &e, p)
			if err != nil {
				return err
			}
			if err := w.root.Symlink(string(target), p); err != nil {
				return err
			}
		case filemode.Regular, filemode.Deprecated, filemode.Executable:
			data, err := w.blob(t, &e, p)
			if err != nil {
				return err
			}
			mode := os.FileMode(0o444)
			if e.Mode == filemode.Executable {
				mode = 0o555
			}
			if err := w.root.WriteFile(p, data, mode); err != nil {
				return err
			}
			if err := w.root.Chmod(p, mode); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%w: %s has mode %s", ErrUnsafeTree, p, e.Mode)
		}
	}
	return nil
}

func (w *treeWriter) blob(t *object.Tree, e *object.TreeEntry, p string) ([]byte, error) {
	f, err := t.TreeEntryFile(e)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	if w.bytes+f.Size > w.maxBytes {
		return nil, fmt.Errorf("%w: %s would pass %d bytes", ErrCheckoutTooLarge, p, w.maxBytes)
	}
	r, err := f.Reader()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	defer r.Close()
	data, err := io.ReadAll(io.LimitReader(r, f.Size+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	w.bytes += int64(len(data))
	return data, nil
}

// safeName refuses tree entry names that could not come from an honest
// repository or that would write somewhere unexpected.
func safeName(n string) error {
	switch {
	case n == "" || n == "." || n == "..":
		return errors.New("reserved name")
	case strings.ContainsAny(n, "/\\\x00"):
		return errors.New("separator or NUL in a name")
	case strings.EqualFold(n, ".git"):
		return errors.New(".git inside a tree")
	}
	return nil
}
