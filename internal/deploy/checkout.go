package deploy

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sync/singleflight"

	"flotilla.dev/flotilla/internal/source"
)

// checkouts keeps read-only trees of recent commits under dir, one
// directory per commit id, and removes the least recently used beyond max
// once nobody renders from them.
type checkouts struct {
	dir    string
	max    int
	f      Fetcher
	flight singleflight.Group

	mu   sync.Mutex
	tick uint64
	used map[string]uint64 // sha -> last use
	refs map[string]int    // sha -> renders in progress
}

func newCheckouts(dir string, max int, f Fetcher) *checkouts {
	c := &checkouts{dir: dir, max: max, f: f, used: map[string]uint64{}, refs: map[string]int{}}
	// Trees of a previous run are complete (Checkout renames them into place
	// atomically) and content-addressed, so they are kept and reused.
	if ents, err := os.ReadDir(dir); err == nil {
		for _, e := range ents {
			if e.IsDir() && len(e.Name()) >= 40 && e.Name()[0] != '.' {
				c.used[e.Name()] = 0
			} else {
				_ = source.RemoveCheckout(filepath.Join(dir, e.Name()))
			}
		}
	}
	return c
}

// open returns the tree of commit sha of the repository at url as a
// filesystem confined to it, and a function to call when done with it.
// The commit must be in the fetcher's cache for url.
func (c *checkouts) open(ctx context.Context, url, sha string) (fs.FS, func(), error) {
	dst := filepath.Join(c.dir, sha)
	c.mu.Lock()
	c.refs[sha]++
	c.mu.Unlock()
	releaseRef := func() {
		c.mu.Lock()
		c.refs[sha]--
		if c.refs[sha] == 0 {
			delete(c.refs, sha)
		}
		c.mu.Unlock()
	}
	_, err, _ := c.flight.Do(sha, func() (any, error) {
		if _, err := os.Stat(dst); err == nil {
			return nil, nil
		}
		err := c.f.Checkout(ctx, url, sha, dst)
		if err != nil && !errors.Is(err, fs.ErrExist) {
			if _, statErr := os.Stat(dst); statErr == nil {
				return nil, nil // another process made it meanwhile
			}
			return nil, err
		}
		return nil, nil
	})
	if err != nil {
		releaseRef()
		return nil, nil, fmt.Errorf("checkout %s: %w", short(sha), err)
	}
	root, err := os.OpenRoot(dst)
	if err != nil {
		releaseRef()
		return nil, nil, fmt.Errorf("checkout %s: %w", short(sha), err)
	}
	c.mu.Lock()
	c.tick++
	c.used[sha] = c.tick
	c.mu.Unlock()
	var once sync.Once
	return root.FS(), func() {
		once.Do(func() {
			root.Close()
			releaseRef()
			c.prune()
		})
	}, nil
}

// prune removes the least recently used checkouts beyond max that no render
// is using.
func (c *checkouts) prune() {
	c.mu.Lock()
	var victims []string
	for len(c.used) > c.max {
		oldest, min := "", ^uint64(0)
		for sha, t := range c.used {
			if c.refs[sha] == 0 && t < min {
				oldest, min = sha, t
			}
		}
		if oldest == "" {
			break
		}
		delete(c.used, oldest)
		victims = append(victims, oldest)
	}
	c.mu.Unlock()
	for _, sha := range victims {
		_ = source.RemoveCheckout(filepath.Join(c.dir, sha))
	}
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}
