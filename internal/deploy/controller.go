package deploy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/internal/render"
	"flotilla.dev/flotilla/internal/source"
	"flotilla.dev/flotilla/internal/store"
)

// Errors callers branch on with errors.Is. Each is a request the caller
// can correct, which the API answers with 422: they carry a UserError
// method so the server can tell them from internal failures without
// importing this package.
var (
	// ErrNoTargets means a service's placement selects no cluster, so there
	// is nothing to render a release for.
	ErrNoTargets error = userError("placement selects no cluster")
	// ErrRender means the service could not be rendered for some cluster.
	ErrRender error = userError("render failed")
	// ErrFetch means the source could not be fetched or the ref resolved.
	ErrFetch error = userError("fetch failed")
	// ErrBadRef means a ref given by hand is not one the source accepts.
	ErrBadRef error = userError("bad ref")
	// ErrNotServed means a request names something that exists but cannot
	// be served, such as a source without a git repository or a cluster the
	// release has no bundle for.
	ErrNotServed error = userError("cannot be served")
)

// userError is the type of the errors above.
type userError string

func (e userError) Error() string { return string(e) }

// UserError marks the error as the caller's to correct.
func (userError) UserError() bool { return true }

// Fetcher is what the controller needs of package source.
type Fetcher interface {
	Fetch(ctx context.Context, req source.Request) (*source.Commit, error)
	Checkout(ctx context.Context, url, sha, dst string) error
}

// WebhookSecrets looks up the key that authenticates a source's webhook.
type WebhookSecrets interface {
	WebhookSecret(ctx context.Context, ref string) ([]byte, error)
}

// Options configure a Controller. Store, Fetcher and WorkDir are required.
type Options struct {
	Store   store.Store
	Fetcher Fetcher
	// WorkDir holds commit checkouts; the controller owns it.
	WorkDir string
	// Renderer renders and caches; nil makes one that keeps 256 entries.
	Renderer *render.Renderer
	// Secrets resolves webhook secrets; nil refuses every webhook.
	Secrets WebhookSecrets
	// Limits bound each render; zero fields take render's defaults.
	Limits render.Limits
	// Workers is how many work items run at once; default 4.
	Workers int
	// FetchTimeout bounds one fetch; default 2m.
	FetchTimeout time.Duration
	// Checkouts is how many commit checkouts are kept; default 16.
	Checkouts int
	// Logger receives the errors of background work (they are also recorded
	// in object status); nil discards.
	Logger *slog.Logger
	// Now returns the current time; nil uses time.Now.
	Now func() time.Time
	// Holder names this controller in the store leadership LeadershipName;
	// default host name plus a random suffix.
	Holder string
	// LeaseTTL is how long the leadership lasts without renewal; it is
	// renewed every third of it. Default 15s.
	LeaseTTL time.Duration
}

// Controller follows sources, cuts releases and places them. Create it
// with New and start it with Run; its other methods serve the API.
type Controller struct {
	opts  Options
	st    store.Store
	r     *render.Renderer
	actor store.Actor
	log   *slog.Logger
	now   func() time.Time
	q     *queue

	leading atomic.Bool

	mu       sync.Mutex
	next     map[string]time.Time // source -> next poll
	svcLocks map[string]*sync.Mutex
	co       *checkouts
}

// Actor is who the controller's automatic changes are attributed to.
var Actor = store.Actor{Kind: store.ActorSystem, Name: "releaser"}

// New returns a Controller; it does nothing until Run.
func New(opts Options) (*Controller, error) {
	if opts.Store == nil || opts.Fetcher == nil || opts.WorkDir == "" {
		return nil, errors.New("deploy: Store, Fetcher and WorkDir are required")
	}
	if opts.Renderer == nil {
		// RenderFleet shares renders within a call without the cache; across
		// calls it only saves re-rendering for placement and previews, so a
		// small cache bounds memory when clusters each get their own bundle.
		opts.Renderer = render.NewRenderer(render.Options{CacheEntries: 256})
	}
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	if opts.FetchTimeout <= 0 {
		opts.FetchTimeout = 2 * time.Minute
	}
	if opts.Checkouts <= 0 {
		opts.Checkouts = 16
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Holder == "" {
		host, _ := os.Hostname()
		var b [4]byte
		_, _ = rand.Read(b[:])
		opts.Holder = host + "-" + hex.EncodeToString(b[:])
	}
	if opts.LeaseTTL <= 0 {
		opts.LeaseTTL = 15 * time.Second
	}
	dir := filepath.Join(opts.WorkDir, "checkouts")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("deploy: work dir: %w", err)
	}
	c := &Controller{opts: opts, st: opts.Store, r: opts.Renderer, actor: Actor, log: opts.Logger, now: opts.Now,
		q: newQueue(), next: map[string]time.Time{}, svcLocks: map[string]*sync.Mutex{}}
	c.co = newCheckouts(dir, opts.Checkouts, opts.Fetcher)
	return c, nil
}

// Work item keys.
const (
	keySource  = "source/"
	keyService = "service/"
	keyCluster = "cluster/"
	// keyPlacement checks a service's placement against its current
	// release once at start-up, for clusters that changed while no
	// controller ran.
	keyPlacement = "placement/"
)

// term does the controller's work while it leads, until ctx ends: it
// fetches every source now and then at its interval, reconciles every
// service once, and reacts to changes of sources, services and clusters.
// It returns after every worker has stopped.
func (c *Controller) term(ctx context.Context) error {
	c.q.reset()
	c.mu.Lock()
	clear(c.next)
	c.mu.Unlock()
	after, err := c.st.LatestSeq(ctx)
	if err != nil {
		return fmt.Errorf("deploy: %w", err)
	}
	for _, kind := range []string{v1.KindSource, v1.KindService} {
		objs, err := c.listAll(ctx, kind)
		if err != nil {
			return fmt.Errorf("deploy: %w", err)
		}
		for _, o := range objs {
			c.enqueue(kind, o.Name)
			if kind == v1.KindService {
				c.q.add(keyPlacement + o.Name)
			}
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for range c.opts.Workers {
		wg.Go(func() { c.work(ctx) })
	}
	wg.Go(func() { c.poll(ctx) })
	wg.Go(func() {
		<-ctx.Done()
		c.q.close()
	})
	err = c.follow(ctx, after)
	cancel()
	wg.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

func (c *Controller) enqueue(kind, name string) {
	switch kind {
	case v1.KindSource:
		c.q.add(keySource + name)
	case v1.KindService:
		c.q.add(keyService + name)
	case v1.KindCluster:
		c.q.add(keyCluster + name)
	}
}

// follow reads the event log from after and queues work for changes of
// sources, services and clusters. Status updates are ignored: they are the
// controller's (and the rollout runner's) own output.
func (c *Controller) follow(ctx context.Context, after int64) error {
	filter := store.EventFilter{Kinds: []string{v1.KindSource, v1.KindService, v1.KindCluster}}
	for {
		latest, err := c.st.LatestSeq(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			c.log.Warn("deploy: reading the event log", "err", err)
			sleep(ctx, time.Second)
			continue
		}
		const limit = 1000
		evs, err := c.st.Events(ctx, after, limit, filter)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			c.log.Warn("deploy: reading the event log", "err", err)
			sleep(ctx, time.Second)
			continue
		}
		for _, ev := range evs {
			after = ev.Seq
			switch ev.Type {
			case store.Created, store.Updated:
				c.enqueue(ev.Kind, ev.Name)
			case store.StatusUpdated:
				// A webhook call recorded by any replica (Trigger).
				if ev.Kind == v1.KindSource && ev.Actor == WebhookActor {
					c.q.add(keySource + ev.Name)
				}
			case store.Deleted:
				switch ev.Kind {
				case v1.KindSource:
					c.mu.Lock()
					delete(c.next, ev.Name)
					c.mu.Unlock()
				case v1.KindService:
					c.enqueue(ev.Kind, ev.Name) // takes it off its clusters
				}
			}
		}
		if len(evs) == limit {
			continue
		}
		// Sequence order is commit order, so nothing at or below latest
		// can still appear: skip the other kinds' events.
		after = max(after, latest)
		if err := c.st.WaitForEvent(ctx, after); err != nil {
			return nil
		}
	}
}

// poll queues each source whose interval has passed.
func (c *Controller) poll(ctx context.Context) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := c.now()
		c.mu.Lock()
		var due []string
		for name, at := range c.next {
			if !now.Before(at) {
				due = append(due, name)
				delete(c.next, name)
			}
		}
		c.mu.Unlock()
		for _, name := range due {
			c.q.add(keySource + name)
		}
	}
}

// retryAfter is how long a work item that failed waits before it runs again.
const retryAfter = 30 * time.Second

func (c *Controller) schedule(source string, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.next[source] = at
}

func (c *Controller) work(ctx context.Context) {
	for {
		key, ok := c.q.get()
		if !ok {
			return
		}
		var err error
		switch {
		case strings.HasPrefix(key, keySource):
			err = c.syncSource(ctx, strings.TrimPrefix(key, keySource))
		case strings.HasPrefix(key, keyService):
			err = c.syncService(ctx, strings.TrimPrefix(key, keyService))
		case strings.HasPrefix(key, keyCluster):
			err = c.syncCluster(ctx, strings.TrimPrefix(key, keyCluster))
		case strings.HasPrefix(key, keyPlacement):
			err = c.checkPlacement(ctx, strings.TrimPrefix(key, keyPlacement))
		}
		if err != nil && ctx.Err() == nil {
			c.log.Warn("deploy: "+key, "err", err)
			// Outcomes the user must act on are recorded in status and return
			// nil; an error here is the store's or a bug, so try again later.
			time.AfterFunc(retryAfter, func() { c.q.add(key) })
		}
		c.q.done(key)
	}
}

// Idle reports whether no work is queued or running; for tests and
// benchmarks that wait for the controller to settle.
func (c *Controller) Idle() bool { return c.q.idle() }

// serviceLock returns the lock that serialises work on one service.
func (c *Controller) serviceLock(name string) *sync.Mutex {
	c.mu.Lock()
	defer c.mu.Unlock()
	l, ok := c.svcLocks[name]
	if !ok {
		l = &sync.Mutex{}
		c.svcLocks[name] = l
	}
	return l
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
