package render

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/singleflight"

	"flotilla.dev/flotilla/internal/bundle"
	"flotilla.dev/flotilla/internal/render/manifest"
	"flotilla.dev/flotilla/internal/render/repofs"
)

// DefaultCacheEntries is the number of bundles a Renderer keeps when
// Options.CacheEntries is zero.
const DefaultCacheEntries = 4096

// Options configure a Renderer.
type Options struct {
	// CacheEntries bounds the bundles and builds kept; the oldest go first.
	CacheEntries int
}

// Renderer renders requests into bundles and remembers the results, so that
// clusters with identical effective variables share one render. It is safe
// for concurrent use.
type Renderer struct {
	cache   *lru
	flight  singleflight.Group
	renders atomic.Int64
	builds  atomic.Int64
}

// NewRenderer returns a Renderer with an empty cache.
func NewRenderer(opts Options) *Renderer {
	if opts.CacheEntries <= 0 {
		opts.CacheEntries = DefaultCacheEntries
	}
	return &Renderer{cache: newLRU(opts.CacheEntries)}
}

// Stats counts work done since the Renderer was made.
type Stats struct {
	// Builds is how many times a path was read and, for Kustomize, built.
	Builds int
	// Renders is how many bundles were produced (cache misses).
	Renders int
}

// Stats returns the work counters.
func (r *Renderer) Stats() Stats {
	return Stats{Builds: int(r.builds.Load()), Renders: int(r.renders.Load())}
}

// build is the cluster-independent half of a render.
type build struct {
	typ  Type
	docs []*manifest.Source // raw and kustomize
	helm *helmBase          // helm
	refs refSet
}

// specKey is the cache key of everything in a request but the variables.
func specKey(req Request, typ Type) (string, bool) {
	if req.Commit == "" {
		return "", false
	}
	b, err := json.Marshal(struct {
		Commit, Path, Namespace string
		Type                    Type
		Helm                    Helm
		Limits                  Limits
	}{req.Commit, req.Path, req.Namespace, typ, req.Helm, req.Limits})
	if err != nil {
		return "", false
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), true
}

// prepare returns the build for req, from the cache when it can.
func (r *Renderer) prepare(ctx context.Context, req Request) (*build, error) {
	if req.FS == nil {
		return nil, fmt.Errorf("render: no repository filesystem")
	}
	dir, err := repofs.Clean(req.Path)
	if err != nil {
		return nil, fmt.Errorf("render: path %w", err)
	}
	req.Path = dir
	typ := req.Type
	switch typ {
	case "", TypeAuto, TypeRaw, TypeKustomize, TypeHelm:
	default:
		return nil, fmt.Errorf("render: %q: %w", typ, ErrUnknownType)
	}
	key, cacheable := specKey(req, typ)
	if cacheable {
		if b, ok := r.cache.get("build:" + key); ok {
			return b.(*build), nil
		}
	}
	do := func() (any, error) {
		lim := req.Limits.withDefaults()
		ctx, cancel := context.WithTimeout(ctx, lim.Timeout)
		defer cancel()
		b, err := runBounded(ctx, "render: "+dir, func() (*build, error) { return doBuild(req, typ, lim) })
		if err != nil {
			return nil, err
		}
		r.builds.Add(1)
		if cacheable {
			r.cache.put("build:"+key, b)
		}
		return b, nil
	}
	var v any
	if cacheable {
		v, err, _ = r.flight.Do("build:"+key, do)
	} else {
		v, err = do()
	}
	if err != nil {
		return nil, err
	}
	return v.(*build), nil
}

func doBuild(req Request, typ Type, lim Limits) (*build, error) {
	f := repofs.New(req.FS, repofs.Limits{MaxFiles: lim.MaxFiles, MaxBytes: lim.MaxBytes})
	dir := req.Path
	if typ == "" || typ == TypeAuto {
		t, err := detect(f, dir)
		if err != nil {
			return nil, err
		}
		typ = t
	} else if !f.IsDir(dir) {
		if _, err := f.Stat(dir); err != nil {
			return nil, fmt.Errorf("render: path %w", err)
		}
		return nil, fmt.Errorf("render: path %s: not a directory", dir)
	}
	b := &build{typ: typ, refs: refSet{}}
	var err error
	switch typ {
	case TypeRaw:
		b.docs, err = readRaw(f, dir)
	case TypeKustomize:
		b.docs, err = buildKustomize(f, dir, lim)
	case TypeHelm:
		b.helm, err = readChart(f, dir, req.Helm, lim)
		if err == nil {
			b.refs, err = valueRefs(req.Helm.Values)
		}
	}
	if err != nil {
		return nil, err
	}
	for _, d := range b.docs {
		err := d.Strings(func(s string, line int) error {
			rs, err := substRefs(s)
			if err != nil {
				return fmt.Errorf("%s:%d: %w", d.File, line, err)
			}
			for _, r := range rs {
				b.refs[r] = true
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return b, nil
}

// Render renders req for the cluster in req.Vars with a fresh Renderer.
func Render(ctx context.Context, req Request) (*bundle.Bundle, error) {
	return NewRenderer(Options{}).Render(ctx, req)
}

// Render renders req for the cluster in req.Vars.
func (r *Renderer) Render(ctx context.Context, req Request) (*bundle.Bundle, error) {
	b, err := r.prepare(ctx, req)
	if err != nil {
		return nil, err
	}
	return r.renderOne(ctx, req, b, req.Vars.Cluster)
}

// variableKey is the cache key of one render: the spec plus the projection
// of the cluster's variables on what the build refers to.
func variableKey(b *build, c ClusterVars) string {
	return project(c, b.refs).digest()
}

func (r *Renderer) renderOne(ctx context.Context, req Request, b *build, c ClusterVars) (*bundle.Bundle, error) {
	vk := variableKey(b, c)
	sk, cacheable := specKey(req, b.typ)
	key := "bundle:" + sk + ":" + vk
	if cacheable {
		if v, ok := r.cache.get(key); ok {
			return v.(*bundle.Bundle), nil
		}
	}
	flightKey := key
	if !cacheable {
		flightKey = "" // never share uncached renders between unrelated calls
	}
	do := func() (any, error) {
		lim := req.Limits.withDefaults()
		ctx, cancel := context.WithTimeout(ctx, lim.Timeout)
		defer cancel()
		bun, err := runBounded(ctx, "render: "+req.Path, func() (*bundle.Bundle, error) {
			docs := b.docs
			var sub manifest.Substituter
			if b.typ == TypeHelm {
				var err error
				docs, err = b.helm.render(ctx, req.Helm, req.Namespace, c)
				if err != nil {
					return nil, err
				}
			} else if len(b.refs) > 0 {
				sub = substituter(c)
			}
			ns := req.Namespace
			if b.typ == TypeHelm && req.Helm.Namespace != "" {
				ns = req.Helm.Namespace
			}
			bun, err := convert(docs, lim, sub, ns)
			if err != nil {
				return nil, fmt.Errorf("render: %s: %w", req.Path, err)
			}
			return bun, nil
		})
		if err != nil {
			return nil, err
		}
		r.renders.Add(1)
		if cacheable {
			r.cache.put(key, bun)
		}
		return bun, nil
	}
	var v any
	var err error
	if flightKey == "" {
		v, err = do()
	} else {
		v, err, _ = r.flight.Do(flightKey, do)
	}
	if err != nil {
		return nil, err
	}
	return v.(*bundle.Bundle), nil
}

// ClusterResult is the outcome of a fleet render for one cluster.
type ClusterResult struct {
	// Cluster is the cluster's name.
	Cluster string
	// Digest is the cluster's bundle digest; empty when Err is set.
	Digest string
	// Err is the cluster's render error.
	Err error
}

// FleetResult is the outcome of RenderFleet.
type FleetResult struct {
	// Clusters holds one result per input cluster, in input order.
	Clusters []ClusterResult
	// Bundles holds each distinct bundle once, by digest.
	Bundles map[string]*bundle.Bundle
	// Renders is how many bundles this call produced; clusters with the same
	// effective variables share one, and bundles already cached cost none.
	Renders int
}

// RenderFleet renders req for every cluster. The cluster-independent part
// (reading the repository, building Kustomize, loading the chart) happens
// once; clusters are grouped by the projection of their variables on what
// the input refers to, and each group is rendered once. An error that is
// not about one cluster (the path does not exist, a file is refused) is
// returned as the error; per-cluster errors (a missing variable) are in the
// results.
func (r *Renderer) RenderFleet(ctx context.Context, req Request, clusters []ClusterVars) (*FleetResult, error) {
	b, err := r.prepare(ctx, req)
	if err != nil {
		return nil, err
	}
	type group struct {
		cluster ClusterVars
		members []int
		bundle  *bundle.Bundle
		err     error
	}
	groups := map[string]*group{}
	var order []*group
	for i, c := range clusters {
		k := variableKey(b, c)
		g, ok := groups[k]
		if !ok {
			g = &group{cluster: c}
			groups[k] = g
			order = append(order, g)
		}
		g.members = append(g.members, i)
	}
	before := r.renders.Load()
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for _, g := range order {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			g.bundle, g.err = r.renderOne(ctx, req, b, g.cluster)
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("render: %w", err)
	}
	res := &FleetResult{
		Clusters: make([]ClusterResult, len(clusters)),
		Bundles:  map[string]*bundle.Bundle{},
		Renders:  int(r.renders.Load() - before),
	}
	for _, g := range order {
		for _, i := range g.members {
			cr := ClusterResult{Cluster: clusters[i].Name, Err: g.err}
			if g.err == nil {
				cr.Digest = g.bundle.Digest()
				res.Bundles[cr.Digest] = g.bundle
			}
			res.Clusters[i] = cr
		}
	}
	return res, nil
}

// lru is a small least-recently-used cache.
type lru struct {
	mu    sync.Mutex
	max   int
	tick  uint64
	items map[string]*lruItem
}

type lruItem struct {
	v    any
	used uint64
}

func newLRU(max int) *lru { return &lru{max: max, items: map[string]*lruItem{}} }

func (c *lru) get(k string) (any, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	it, ok := c.items[k]
	if !ok {
		return nil, false
	}
	c.tick++
	it.used = c.tick
	return it.v, true
}

func (c *lru) put(k string, v any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tick++
	c.items[k] = &lruItem{v: v, used: c.tick}
	if len(c.items) <= c.max {
		return
	}
	var oldest string
	var min uint64 = ^uint64(0)
	for key, it := range c.items {
		if it.used < min {
			oldest, min = key, it.used
		}
	}
	delete(c.items, oldest)
}
