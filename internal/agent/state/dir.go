package state

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"flotilla.dev/flotilla/internal/bundle"
)

// Dir keeps the agent state in a directory: credential, state.json and bundles/<hex>.jsonl.
type Dir struct {
	path string
}

var _ Store = (*Dir)(nil)

// NewDir returns the store in directory path, created (mode 0700) on first write.
func NewDir(path string) *Dir { return &Dir{path: path} }

func (d *Dir) String() string { return "directory " + d.path }

func (d *Dir) statePath() string { return filepath.Join(d.path, "state.json") }
func (d *Dir) bundlePath(digest string) string {
	return filepath.Join(d.path, "bundles", hexOf(digest)+".jsonl")
}

// Load implements Store.
func (d *Dir) Load(_ context.Context) (*Snapshot, error) {
	data, err := os.ReadFile(d.statePath())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("agent state: %w", err)
	}
	return Decode(d.statePath(), data)
}

// Save implements Store.
func (d *Dir) Save(_ context.Context, s *Snapshot) error {
	data, err := Encode(s)
	if err != nil {
		return err
	}
	return writeFile(d.statePath(), data)
}

// Bundle implements Store.
func (d *Dir) Bundle(_ context.Context, digest string) ([]byte, error) {
	if err := bundle.ValidDigest(digest); err != nil {
		return nil, err
	}
	p := d.bundlePath(digest)
	data, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("agent state: %w", err)
	}
	if err := checkBundle(p, digest, data); err != nil {
		return nil, err
	}
	return data, nil
}

// PutBundle implements Store.
func (d *Dir) PutBundle(_ context.Context, digest string, data []byte) error {
	if err := checkBundle("bundle to store", digest, data); err != nil {
		return err
	}
	p := d.bundlePath(digest)
	if _, err := os.Stat(p); err == nil {
		return nil // content-addressed: already there
	}
	return writeFile(p, data)
}

// RetainBundles implements Store.
func (d *Dir) RetainBundles(_ context.Context, keep []string) error {
	want := map[string]bool{}
	for _, k := range keep {
		if bundle.ValidDigest(k) != nil {
			continue
		}
		want[hexOf(k)+".jsonl"] = true
	}
	entries, err := os.ReadDir(filepath.Join(d.path, "bundles"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("agent state: %w", err)
	}
	var errs []error
	for _, e := range entries {
		if !want[e.Name()] {
			if err := os.Remove(filepath.Join(d.path, "bundles", e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("agent state: remove old bundles: %w", err)
	}
	return nil
}

// Credential implements Store.
func (d *Dir) Credential(_ context.Context) (string, error) {
	b, err := os.ReadFile(filepath.Join(d.path, "credential"))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("agent state: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// SaveCredential implements Store.
func (d *Dir) SaveCredential(_ context.Context, cred string) error {
	return writeFile(filepath.Join(d.path, "credential"), []byte(cred+"\n"))
}

// writeFile replaces path with data atomically: a crash leaves the old or the new file.
func writeFile(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("agent state: %w", err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("agent state: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("agent state: write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("agent state: sync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("agent state: write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("agent state: %w", err)
	}
	if df, err := os.Open(dir); err == nil {
		_ = df.Sync() // make the rename durable; best effort where directories cannot be synced
		df.Close()
	}
	return nil
}
