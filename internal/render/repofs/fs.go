package repofs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"sync/atomic"
	"syscall"
)

// Default budgets used when a Limits field is zero.
const (
	DefaultMaxFiles = 10_000
	DefaultMaxBytes = 64 << 20
)

// Limits bounds what one render may read. Zero fields take defaults.
type Limits struct {
	// MaxFiles is the number of files read plus directories listed.
	MaxFiles int
	// MaxBytes is the total number of bytes read.
	MaxBytes int64
}

// FS is a read-only, budgeted view of a repository checkout. Paths are
// repository-relative and slash-separated, as io/fs requires.
type FS struct {
	fsys  fs.FS
	lim   Limits
	files atomic.Int64
	bytes atomic.Int64
}

// New returns a view of fsys with the given budgets. fsys should be
// os.Root.FS of the checkout so that symbolic links cannot leave it.
func New(fsys fs.FS, lim Limits) *FS {
	if lim.MaxFiles <= 0 {
		lim.MaxFiles = DefaultMaxFiles
	}
	if lim.MaxBytes <= 0 {
		lim.MaxBytes = DefaultMaxBytes
	}
	return &FS{fsys: fsys, lim: lim}
}

// Usage returns the files opened and bytes read so far.
func (f *FS) Usage() (files int, bytes int64) {
	return int(f.files.Load()), f.bytes.Load()
}

func (f *FS) countFile(name string) error {
	if n := f.files.Add(1); n > int64(f.lim.MaxFiles) {
		return fmt.Errorf("%s: %w: the render may open at most %d files and directories", name, ErrTooManyFiles, f.lim.MaxFiles)
	}
	return nil
}

// ReadFile reads a whole file, counting it against the budgets. The size is
// checked before reading.
func (f *FS) ReadFile(name string) ([]byte, error) {
	if !fs.ValidPath(name) {
		return nil, fmt.Errorf("%q: %w", name, ErrInvalidPath)
	}
	if err := f.countFile(name); err != nil {
		return nil, err
	}
	file, err := f.fsys.Open(name)
	if err != nil {
		return nil, wrap(name, err)
	}
	defer file.Close()
	st, err := file.Stat()
	if err != nil {
		return nil, wrap(name, err)
	}
	if st.IsDir() {
		return nil, fmt.Errorf("%s: is a directory", name)
	}
	remaining := f.lim.MaxBytes - f.bytes.Load()
	if st.Size() > remaining {
		return nil, f.bytesError(name, st.Size())
	}
	data, err := io.ReadAll(io.LimitReader(file, remaining+1))
	if err != nil {
		return nil, wrap(name, err)
	}
	if total := f.bytes.Add(int64(len(data))); total > f.lim.MaxBytes {
		return nil, f.bytesError(name, int64(len(data)))
	}
	return data, nil
}

func (f *FS) bytesError(name string, size int64) error {
	return fmt.Errorf("%s: %w: reading %d bytes would pass the render's limit of %d bytes (%d already read)",
		name, ErrTooManyBytes, size, f.lim.MaxBytes, f.bytes.Load())
}

// Stat returns a file's information, following symbolic links inside the
// repository.
func (f *FS) Stat(name string) (fs.FileInfo, error) {
	if !fs.ValidPath(name) {
		return nil, fmt.Errorf("%q: %w", name, ErrInvalidPath)
	}
	st, err := fs.Stat(f.fsys, name)
	if err != nil {
		return nil, wrap(name, err)
	}
	return st, nil
}

// ReadDir lists a directory, sorted by name, counting it against MaxFiles.
func (f *FS) ReadDir(name string) ([]fs.DirEntry, error) {
	if !fs.ValidPath(name) {
		return nil, fmt.Errorf("%q: %w", name, ErrInvalidPath)
	}
	if err := f.countFile(name); err != nil {
		return nil, err
	}
	ents, err := fs.ReadDir(f.fsys, name)
	if err != nil {
		return nil, wrap(name, err)
	}
	return ents, nil
}

// IsDir reports whether name is a directory inside the repository.
func (f *FS) IsDir(name string) bool {
	st, err := f.Stat(name)
	return err == nil && st.IsDir()
}

// Exists reports whether name exists inside the repository.
func (f *FS) Exists(name string) bool {
	_, err := f.Stat(name)
	return err == nil
}

// wrap gives errors from the underlying filesystem a cause callers can test.
func wrap(name string, err error) error {
	msg := err.Error()
	switch {
	case errors.Is(err, syscall.ELOOP) || strings.Contains(msg, "too many levels of symbolic links"):
		return fmt.Errorf("%s: %w", name, ErrSymlinkLoop)
	case strings.Contains(msg, "path escapes from parent"):
		return fmt.Errorf("%s: %w", name, ErrOutside)
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%s: %w", name, ErrNotExist)
	}
	return fmt.Errorf("%s: %w", name, err)
}
