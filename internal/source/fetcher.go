package source

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/storage/memory"
	"golang.org/x/sync/singleflight"
)

// Options configure a Fetcher.
type Options struct {
	// CacheDir holds one bare repository per URL. Required.
	CacheDir string
	// AllowLocal permits file://, plain http and loopback or link-local
	// hosts. For tests and the local demo only.
	AllowLocal bool
	// Credentials looks up Request.SecretRef; nil allows only anonymous access.
	Credentials Credentials
	// MaxCheckoutFiles and MaxCheckoutBytes bound Checkout; zero means
	// 100,000 files and 1 GiB.
	MaxCheckoutFiles int
	MaxCheckoutBytes int64
	// LookupHost resolves host names for the URL policy; nil uses the
	// system resolver.
	LookupHost func(ctx context.Context, host string) ([]netip.Addr, error)
}

// Request names what to fetch.
type Request struct {
	URL string
	Ref Ref
	// SecretRef names the credentials, looked up through Options.Credentials.
	SecretRef string
}

// Commit describes a fetched commit.
type Commit struct {
	// SHA is the full commit id.
	SHA string `json:"sha"`
	// Ref is the remote ref it was resolved from, such as refs/heads/main;
	// empty for a fixed commit.
	Ref         string    `json:"ref,omitempty"`
	Message     string    `json:"message"`
	Author      string    `json:"author"`
	AuthorEmail string    `json:"authorEmail"`
	Time        time.Time `json:"time"`
}

// Stats counts a Fetcher's remote work.
type Stats struct {
	// Lists is the number of ls-remote round trips.
	Lists int
	// Fetches is the number of fetches that transferred objects.
	Fetches int
}

// Fetcher fetches repositories into its cache. It is safe for concurrent
// use.
type Fetcher struct {
	opts    Options
	flight  singleflight.Group
	mu      sync.Mutex
	locks   map[string]*sync.Mutex
	lists   atomic.Int64
	fetches atomic.Int64
}

// NewFetcher returns a Fetcher that caches under opts.CacheDir.
func NewFetcher(opts Options) (*Fetcher, error) {
	if opts.CacheDir == "" {
		return nil, errors.New("source: Options.CacheDir is required")
	}
	if opts.MaxCheckoutFiles <= 0 {
		opts.MaxCheckoutFiles = 100_000
	}
	if opts.MaxCheckoutBytes <= 0 {
		opts.MaxCheckoutBytes = 1 << 30
	}
	if opts.LookupHost == nil {
		opts.LookupHost = defaultLookup
	}
	if err := os.MkdirAll(filepath.Join(opts.CacheDir, "repos"), 0o700); err != nil {
		return nil, fmt.Errorf("source: cache: %w", err)
	}
	installTransport()
	return &Fetcher{opts: opts, locks: map[string]*sync.Mutex{}}, nil
}

// Stats returns the remote work done so far.
func (f *Fetcher) Stats() Stats {
	return Stats{Lists: int(f.lists.Load()), Fetches: int(f.fetches.Load())}
}

// cachePath is the bare repository for a URL.
func (f *Fetcher) cachePath(url string) string {
	sum := sha256.Sum256([]byte(url))
	return filepath.Join(f.opts.CacheDir, "repos", hex.EncodeToString(sum[:16])+".git")
}

func (f *Fetcher) lock(url string) *sync.Mutex {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.locks[url]
	if !ok {
		l = &sync.Mutex{}
		f.locks[url] = l
	}
	return l
}

func (f *Fetcher) check(ctx context.Context, req Request) (endpoint, error) {
	ep, err := checkURL(req.URL, f.opts.AllowLocal)
	if err != nil {
		return endpoint{}, err
	}
	if err := req.Ref.Validate(); err != nil {
		return endpoint{}, err
	}
	if err := checkHost(ctx, ep, f.opts.AllowLocal, f.opts.LookupHost); err != nil {
		return endpoint{}, err
	}
	return ep, nil
}

// Resolve returns the commit id the ref names on the remote now, without
// fetching objects.
func (f *Fetcher) Resolve(ctx context.Context, req Request) (string, error) {
	ep, err := f.check(ctx, req)
	if err != nil {
		return "", err
	}
	auth, err := f.authFor(ctx, ep, req.SecretRef)
	if err != nil {
		return "", err
	}
	res, err := f.resolve(ctx, req, auth)
	if err != nil {
		return "", err
	}
	return res.hash.String(), nil
}

func (f *Fetcher) resolve(ctx context.Context, req Request, auth transport.AuthMethod) (resolved, error) {
	if req.Ref.Commit != "" {
		return resolveRef(req.Ref, nil)
	}
	rem := git.NewRemote(memory.NewStorage(), &config.RemoteConfig{Name: "origin", URLs: []string{req.URL}})
	f.lists.Add(1)
	refs, err := rem.ListContext(withPolicy(ctx, dialPolicy{allowLocal: f.opts.AllowLocal}), &git.ListOptions{
		Auth: auth, PeelingOption: git.AppendPeeled,
	})
	if err != nil {
		return resolved{}, fmt.Errorf("source: %s: listing refs: %w", req.URL, err)
	}
	return resolveRef(req.Ref, refs)
}

// Fetch resolves req.Ref and makes sure its commit is in the cache,
// fetching it (shallow, exactly that commit) when it is not. Concurrent
// calls with the same URL and ref share one round trip.
func (f *Fetcher) Fetch(ctx context.Context, req Request) (*Commit, error) {
	ep, err := f.check(ctx, req)
	if err != nil {
		return nil, err
	}
	key := req.URL + "\x00" + req.Ref.String() + "\x00" + req.SecretRef
	v, err, _ := f.flight.Do(key, func() (any, error) {
		return f.fetch(ctx, ep, req)
	})
	if err != nil {
		return nil, err
	}
	c := *v.(*Commit)
	return &c, nil
}

func (f *Fetcher) fetch(ctx context.Context, ep endpoint, req Request) (*Commit, error) {
	auth, err := f.authFor(ctx, ep, req.SecretRef)
	if err != nil {
		return nil, err
	}
	res, err := f.resolve(ctx, req, auth)
	if err != nil {
		return nil, err
	}
	l := f.lock(req.URL)
	l.Lock()
	defer l.Unlock()
	repo, err := f.openCache(req.URL)
	if err != nil {
		return nil, err
	}
	if _, err := repo.CommitObject(res.hash); err != nil {
		if err := f.fetchCommit(ctx, repo, req, res, auth); err != nil {
			return nil, err
		}
	}
	c, err := repo.CommitObject(res.hash)
	if err != nil {
		return nil, fmt.Errorf("source: %s: commit %s not in the fetched objects: %w", req.URL, res.hash, err)
	}
	return commitInfo(c, res.name), nil
}

func (f *Fetcher) openCache(url string) (*git.Repository, error) {
	p := f.cachePath(url)
	repo, err := git.PlainOpen(p)
	if errors.Is(err, git.ErrRepositoryNotExists) {
		repo, err = git.PlainInit(p, true)
	}
	if err != nil {
		return nil, fmt.Errorf("source: cache for %s: %w", url, err)
	}
	return repo, nil
}

// fetchCommit fetches exactly the resolved commit at depth 1. A branch or
// tag is fetched by name (every server allows that) and checked against the
// resolved id; a fixed commit is fetched by id, which the server must allow.
func (f *Fetcher) fetchCommit(ctx context.Context, repo *git.Repository, req Request, res resolved, auth transport.AuthMethod) error {
	local := plumbing.ReferenceName("refs/flotilla/" + res.hash.String())
	src := res.hash.String()
	if res.name != "" {
		src = res.name.String()
	}
	spec := config.RefSpec("+" + src + ":" + local.String())
	f.fetches.Add(1)
	rem := git.NewRemote(repo.Storer, &config.RemoteConfig{Name: "origin", URLs: []string{req.URL}})
	err := rem.FetchContext(withPolicy(ctx, dialPolicy{allowLocal: f.opts.AllowLocal}), &git.FetchOptions{
		RefSpecs: []config.RefSpec{spec},
		Depth:    1,
		Auth:     auth,
		Tags:     git.NoTags,
		Force:    true,
	})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return fmt.Errorf("source: %s: fetching %s: %w", req.URL, strings.TrimPrefix(src, "refs/"), err)
	}
	got, err := repo.Reference(local, true)
	if err != nil {
		return fmt.Errorf("source: %s: fetched ref missing: %w", req.URL, err)
	}
	if got.Hash() != res.hash {
		// The branch moved between listing and fetching: keep what was fetched
		// under its own name and report the newer commit.
		_ = repo.Storer.SetReference(plumbing.NewHashReference(plumbing.ReferenceName("refs/flotilla/"+got.Hash().String()), got.Hash()))
		return fmt.Errorf("source: %s: %s moved from %s to %s during the fetch; fetch again", req.URL, res.name, res.hash, got.Hash())
	}
	return nil
}

func commitInfo(c *object.Commit, ref plumbing.ReferenceName) *Commit {
	return &Commit{
		SHA:         c.Hash.String(),
		Ref:         ref.String(),
		Message:     c.Message,
		Author:      c.Author.Name,
		AuthorEmail: c.Author.Email,
		Time:        c.Author.When.UTC(),
	}
}
