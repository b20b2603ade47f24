package apply

import (
	"context"
	"fmt"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
)

// Options configure an Engine. Zero fields take the defaults shown.
type Options struct {
	// FieldManager is the server-side apply field manager (default "flotilla").
	FieldManager string
	// Concurrency is how many objects are applied, read or deleted at once (default 16).
	Concurrency int
	// InventoryNamespace holds the inventories (default "flotilla-system").
	InventoryNamespace string
	// QPS and Burst replace the rest.Config's client-side rate limit (default
	// 2000 and 4000): a low limit, not the API server, would bound throughput.
	QPS   float32
	Burst int
	// WaitTimeout bounds the wait for CRDs to be established and Namespaces
	// to be active, and for a new kind to appear in discovery (default 2 minutes).
	WaitTimeout time.Duration
	// PollInterval is how often those waits look again (default 100 ms).
	PollInterval time.Duration
}

func (o Options) withDefaults() Options {
	if o.FieldManager == "" {
		o.FieldManager = "flotilla"
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 16
	}
	if o.InventoryNamespace == "" {
		o.InventoryNamespace = "flotilla-system"
	}
	if o.QPS == 0 {
		o.QPS = 2000
	}
	if o.Burst == 0 {
		o.Burst = 4000
	}
	if o.WaitTimeout == 0 {
		o.WaitTimeout = 2 * time.Minute
	}
	if o.PollInterval == 0 {
		o.PollInterval = 100 * time.Millisecond
	}
	return o
}

// Engine applies, prunes and observes services in one cluster. It is safe
// for concurrent use; calls for one service are serialised.
type Engine struct {
	opts   Options
	dyn    dynamic.Interface
	mapper *restmapper.DeferredDiscoveryRESTMapper

	mu    sync.Mutex
	locks map[string]*sync.Mutex
}

// New returns an Engine for the cluster cfg points at. cfg is copied; its
// rate limit is replaced by Options.QPS and Options.Burst.
func New(cfg *rest.Config, o Options) (*Engine, error) {
	o = o.withDefaults()
	c := rest.CopyConfig(cfg)
	c.QPS, c.Burst = o.QPS, o.Burst
	c.RateLimiter = nil
	dyn, err := dynamic.NewForConfig(c)
	if err != nil {
		return nil, fmt.Errorf("apply: dynamic client: %w", err)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(c)
	if err != nil {
		return nil, fmt.Errorf("apply: discovery client: %w", err)
	}
	return &Engine{
		opts:   o,
		dyn:    dyn,
		mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc)),
		locks:  map[string]*sync.Mutex{},
	}, nil
}

// lock serialises work on one service and returns the unlock function.
func (e *Engine) lock(service string) func() {
	e.mu.Lock()
	l, ok := e.locks[service]
	if !ok {
		l = &sync.Mutex{}
		e.locks[service] = l
	}
	e.mu.Unlock()
	l.Lock()
	return l.Unlock
}

func validService(s string) error {
	if errs := validation.IsDNS1123Label(s); len(errs) > 0 {
		return fmt.Errorf("service name %q: %s: %w", s, errs[0], ErrInvalid)
	}
	return nil
}

// mapping finds the resource of a kind. When discovery does not know the
// kind yet (a CRD applied a moment ago) it refreshes discovery and looks
// again until WaitTimeout when wait is set.
func (e *Engine) mapping(ctx context.Context, r ObjectRef, wait bool) (*meta.RESTMapping, error) {
	gk := r.GroupVersionKind().GroupKind()
	m, err := e.mapper.RESTMapping(gk, r.Version)
	if err == nil || !meta.IsNoMatchError(err) {
		return m, err
	}
	deadline := time.Now().Add(e.opts.WaitTimeout)
	for {
		e.mapper.Reset()
		m, err = e.mapper.RESTMapping(gk, r.Version)
		if err == nil || !meta.IsNoMatchError(err) || !wait || time.Now().After(deadline) {
			return m, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(e.opts.PollInterval):
		}
	}
}

// each runs fn(i) for i in [0, n) on up to workers goroutines and returns
// when all calls have returned.
func each(n, workers int, fn func(i int)) {
	if workers > n {
		workers = n
	}
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				fn(i)
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
}
