package traffic

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/rest"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/internal/store"
	"flotilla.dev/flotilla/internal/traffic/capacity"
	"flotilla.dev/flotilla/internal/traffic/gatewayapi"
	"flotilla.dev/flotilla/internal/traffic/haproxy"
	"flotilla.dev/flotilla/internal/traffic/webhook"
)

// Provider sets and reads the weights of backends in one router. Weights
// are in the provider's scale, 0 to MaxWeight; backends not named keep
// theirs.
type Provider interface {
	// MaxWeight is the largest weight; 100 percent maps to it.
	MaxWeight() int
	// SetWeights sets every named backend's weight, or none when one of
	// them is unknown.
	SetWeights(ctx context.Context, weights map[string]int) error
	// Weights reads back the weights in force of the named backends.
	Weights(ctx context.Context, backends []string) (map[string]int, error)
	// Ping reports whether the router is reachable and knows its target
	// (backend, route).
	Ping(ctx context.Context) error
}

// Compile-time checks that every provider implements Provider.
var (
	_ Provider = (*haproxy.Router)(nil)
	_ Provider = (*gatewayapi.Route)(nil)
	_ Provider = (*webhook.Hook)(nil)
)

// Actor is who the Manager's status writes are recorded as.
var Actor = store.Actor{Kind: store.ActorSystem, Name: "traffic"}

// Options configure a Manager.
type Options struct {
	// Store holds the TrafficRouter and Cluster objects. Required.
	Store store.Store
	// Secret resolves a webhook router's secretRef to its HMAC key; nil
	// makes webhook routers fail with a clear error.
	Secret func(ctx context.Context, name string) ([]byte, error)
	// RESTConfig returns the API server access of the cluster holding a
	// Gateway API route; nil makes gatewayAPI routers fail clearly.
	RESTConfig func(ctx context.Context, cluster string) (*rest.Config, error)
	// HTTPClient sends webhook requests; nil uses a client without
	// redirects.
	HTTPClient *http.Client
	// Now is the clock for status timestamps; time.Now when nil.
	Now func() time.Time
	// StatusError receives failures to record a router's status (the
	// weights themselves were set); nil ignores them.
	StatusError func(router string, err error)
	// NewProvider builds the provider of a router; nil uses the built-in
	// providers. Tests of the Manager's own logic may replace it.
	NewProvider func(ctx context.Context, r *v1.TrafficRouter) (Provider, error)
}

// Manager carries out weight changes on traffic routers. It implements
// the rollout runner's Traffic interface. It is safe for concurrent use;
// changes to one router are serialised.
type Manager struct {
	opts Options

	mu        sync.Mutex
	providers map[string]cachedProvider
	locks     map[string]*sync.Mutex
}

// cachedProvider is a provider built for one version of a router; the UID
// and generation change with every edit and with a delete and re-create.
type cachedProvider struct {
	version string
	p       Provider
}

// NewManager returns a Manager.
func NewManager(opts Options) *Manager {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	m := &Manager{opts: opts, providers: map[string]cachedProvider{}, locks: map[string]*sync.Mutex{}}
	if m.opts.NewProvider == nil {
		m.opts.NewProvider = m.newProvider
	}
	return m
}

// ErrNoBackend: a cluster has no backend in the router (Cluster.spec.traffic).
var ErrNoBackend = errors.New("no backend in the router")

// router is a resolved TrafficRouter.
type router struct {
	obj      *v1.TrafficRouter
	timeout  time.Duration
	provider Provider
}

func (m *Manager) lock(name string) func() {
	m.mu.Lock()
	l := m.locks[name]
	if l == nil {
		l = &sync.Mutex{}
		m.locks[name] = l
	}
	m.mu.Unlock()
	l.Lock()
	return l.Unlock
}

// resolve reads the TrafficRouter and returns it with its provider.
func (m *Manager) resolve(ctx context.Context, name string) (*router, error) {
	o, err := m.opts.Store.Get(ctx, v1.KindTrafficRouter, name)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("traffic router %s: %w", name, err)
		}
		return nil, fmt.Errorf("traffic router %s: read: %w", name, err)
	}
	tr := &v1.TrafficRouter{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindTrafficRouter}}
	tr.Metadata.Name = o.Name
	if err := json.Unmarshal(o.Spec, &tr.Spec); err != nil {
		return nil, fmt.Errorf("traffic router %s: spec: %w", name, err)
	}
	if len(o.Status) > 0 {
		if err := json.Unmarshal(o.Status, &tr.Status); err != nil {
			return nil, fmt.Errorf("traffic router %s: status: %w", name, err)
		}
	}
	tr.Default()
	if err := tr.Validate(); err != nil {
		return nil, fmt.Errorf("traffic router %s: %w", name, err)
	}
	timeout, _ := tr.Spec.Timeout.Parse()
	r := &router{obj: tr, timeout: timeout}
	version := fmt.Sprintf("%s/%d", o.UID, o.Generation)
	m.mu.Lock()
	c, ok := m.providers[name]
	m.mu.Unlock()
	if ok && c.version == version {
		r.provider = c.p
		return r, nil
	}
	p, err := m.opts.NewProvider(ctx, tr)
	if err != nil {
		return nil, fmt.Errorf("traffic router %s: %w", name, err)
	}
	m.mu.Lock()
	m.providers[name] = cachedProvider{version: version, p: p}
	m.mu.Unlock()
	r.provider = p
	return r, nil
}

// newProvider builds the built-in provider a TrafficRouter names.
func (m *Manager) newProvider(ctx context.Context, tr *v1.TrafficRouter) (Provider, error) {
	s := tr.Spec
	switch {
	case s.HAProxy != nil:
		return haproxy.NewRouter(s.HAProxy.RuntimeAPI, s.HAProxy.Backend)
	case s.GatewayAPI != nil:
		if m.opts.RESTConfig == nil {
			return nil, fmt.Errorf("gatewayAPI: no access to cluster %s is configured on this server", s.GatewayAPI.Cluster)
		}
		cfg, err := m.opts.RESTConfig(ctx, s.GatewayAPI.Cluster)
		if err != nil {
			return nil, fmt.Errorf("gatewayAPI: access to cluster %s: %w", s.GatewayAPI.Cluster, err)
		}
		return gatewayapi.New(cfg, s.GatewayAPI.Cluster, s.GatewayAPI.HTTPRoute.Namespace, s.GatewayAPI.HTTPRoute.Name, s.GatewayAPI.Rule)
	case s.Webhook != nil:
		if m.opts.Secret == nil {
			return nil, fmt.Errorf("webhook: no secrets are configured on this server to resolve secretRef %s", s.Webhook.SecretRef)
		}
		key, err := m.opts.Secret(ctx, s.Webhook.SecretRef)
		if err != nil {
			return nil, fmt.Errorf("webhook: secretRef %s: %w", s.Webhook.SecretRef, err)
		}
		return webhook.New(webhook.Options{URL: s.Webhook.URL, Key: key, Router: tr.Metadata.Name, HTTPClient: m.opts.HTTPClient})
	}
	return nil, errors.New("sets no router type")
}

// backends maps each cluster to its backend in the router.
func (m *Manager) backends(ctx context.Context, routerName string, clusters []string) (map[string]v1.ClusterTraffic, error) {
	out := make(map[string]v1.ClusterTraffic, len(clusters))
	owner := map[string]string{}
	for _, name := range clusters {
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("traffic router %s: cluster %s listed twice", routerName, name)
		}
		o, err := m.opts.Store.Get(ctx, v1.KindCluster, name)
		if err != nil {
			return nil, fmt.Errorf("traffic router %s: cluster %s: %w", routerName, name, err)
		}
		var spec v1.ClusterSpec
		if err := json.Unmarshal(o.Spec, &spec); err != nil {
			return nil, fmt.Errorf("traffic router %s: cluster %s: spec: %w", routerName, name, err)
		}
		i := slices.IndexFunc(spec.Traffic, func(t v1.ClusterTraffic) bool { return t.Router == routerName })
		if i < 0 {
			return nil, fmt.Errorf("traffic router %s: cluster %s: %w (add it to the cluster's spec.traffic)", routerName, name, ErrNoBackend)
		}
		t := spec.Traffic[i]
		if t.Capacity == 0 {
			t.Capacity = v1.DefaultCapacity
		}
		if other, ok := owner[t.Backend]; ok {
			return nil, fmt.Errorf("traffic router %s: clusters %s and %s both name backend %s", routerName, other, name, t.Backend)
		}
		owner[t.Backend] = name
		out[name] = t
	}
	return out, nil
}

// scale maps a percentage to a provider weight and back, rounding to the
// nearest; with max >= 100 the round trip is exact.
func toProvider(percent, max int) int {
	return int(math.Round(float64(percent) * float64(max) / 100))
}

func toPercent(w, max int) int {
	return min(100, int(math.Round(float64(w)*100/float64(max))))
}

// SetWeights sets each cluster's weight (0-100) in the router, reads the
// weights back and returns them, in percent, sorted by cluster. An error
// names the router and, where one is at fault, the cluster and backend.
func (m *Manager) SetWeights(ctx context.Context, routerName string, weights []v1.TrafficWeight) ([]v1.TrafficWeight, error) {
	if len(weights) == 0 {
		return nil, nil
	}
	unlock := m.lock(routerName)
	defer unlock()
	r, err := m.resolve(ctx, routerName)
	if err != nil {
		return nil, err
	}
	applied, err := m.setWeights(ctx, r, weights)
	m.recordStatus(ctx, routerName, applied, err)
	return applied, err
}

func (m *Manager) setWeights(ctx context.Context, r *router, weights []v1.TrafficWeight) ([]v1.TrafficWeight, error) {
	name := r.obj.Metadata.Name
	clusters := make([]string, len(weights))
	for i, w := range weights {
		if w.Router != "" && w.Router != name {
			return nil, fmt.Errorf("traffic router %s: weight %d is for router %s", name, i, w.Router)
		}
		if w.Weight < 0 || w.Weight > 100 {
			return nil, fmt.Errorf("traffic router %s: cluster %s: weight %d out of range 0-100", name, w.Cluster, w.Weight)
		}
		clusters[i] = w.Cluster
	}
	bk, err := m.backends(ctx, name, clusters)
	if err != nil {
		return nil, err
	}
	max := r.provider.MaxWeight()
	want := make(map[string]int, len(weights))
	backends := make([]string, 0, len(weights))
	for _, w := range weights {
		b := bk[w.Cluster].Backend
		want[b] = toProvider(w.Weight, max)
		backends = append(backends, b)
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	if err := r.provider.SetWeights(ctx, want); err != nil {
		return nil, fmt.Errorf("traffic router %s: set %s: %w", name, describe(weights, bk), err)
	}
	got, err := r.provider.Weights(ctx, backends)
	if err != nil {
		return nil, fmt.Errorf("traffic router %s: read back %s: %w", name, strings.Join(backends, ", "), err)
	}
	applied := make([]v1.TrafficWeight, 0, len(weights))
	var wrong []string
	for _, w := range weights {
		b := bk[w.Cluster].Backend
		g, ok := got[b]
		if !ok || g != want[b] {
			wrong = append(wrong, fmt.Sprintf("cluster %s backend %s reads back %s, want %d", w.Cluster, b, orMissing(g, ok), want[b]))
		}
		if ok {
			applied = append(applied, v1.TrafficWeight{Router: name, Cluster: w.Cluster, Backend: b, Weight: toPercent(g, max)})
		}
	}
	sort.Slice(applied, func(i, j int) bool { return applied[i].Cluster < applied[j].Cluster })
	if len(wrong) > 0 {
		return applied, fmt.Errorf("traffic router %s: change not in force: %s", name, strings.Join(wrong, "; "))
	}
	return applied, nil
}

func orMissing(w int, ok bool) string {
	if !ok {
		return "nothing"
	}
	return fmt.Sprint(w)
}

func describe(weights []v1.TrafficWeight, bk map[string]v1.ClusterTraffic) string {
	parts := make([]string, len(weights))
	for i, w := range weights {
		parts[i] = fmt.Sprintf("%s (backend %s)=%d%%", w.Cluster, bk[w.Cluster].Backend, w.Weight)
	}
	return strings.Join(parts, ", ")
}

// Weights reads the weights in force of clusters in the router, in
// percent, sorted by cluster: what a rollout compares with the weights it
// expects after a restart.
func (m *Manager) Weights(ctx context.Context, routerName string, clusters []string) ([]v1.TrafficWeight, error) {
	r, err := m.resolve(ctx, routerName)
	if err != nil {
		return nil, err
	}
	bk, err := m.backends(ctx, routerName, clusters)
	if err != nil {
		return nil, err
	}
	backends := make([]string, len(clusters))
	for i, c := range clusters {
		backends[i] = bk[c].Backend
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	got, err := r.provider.Weights(ctx, backends)
	if err != nil {
		return nil, fmt.Errorf("traffic router %s: read %s: %w", routerName, strings.Join(backends, ", "), err)
	}
	max := r.provider.MaxWeight()
	out := make([]v1.TrafficWeight, 0, len(clusters))
	for _, c := range clusters {
		b := bk[c].Backend
		g, ok := got[b]
		if !ok {
			return nil, fmt.Errorf("traffic router %s: cluster %s backend %s: no weight read back", routerName, c, b)
		}
		out = append(out, v1.TrafficWeight{Router: routerName, Cluster: c, Backend: b, Weight: toPercent(g, max)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Cluster < out[j].Cluster })
	return out, nil
}

// Ping reports whether the router is reachable and knows its target.
func (m *Manager) Ping(ctx context.Context, routerName string) error {
	r, err := m.resolve(ctx, routerName)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	if err := r.provider.Ping(ctx); err != nil {
		return fmt.Errorf("traffic router %s: unreachable: %w", routerName, err)
	}
	return nil
}

// CheckCapacity says whether draining the clusters in drain leaves the
// other clusters of current (the weights in force, in percent) within
// their declared capacities in the router (see capacity.Check).
func (m *Manager) CheckCapacity(ctx context.Context, routerName string, current []v1.TrafficWeight, drain []string) (capacity.Result, error) {
	clusters := make([]string, len(current))
	for i, w := range current {
		clusters[i] = w.Cluster
	}
	bk, err := m.backends(ctx, routerName, clusters)
	if err != nil {
		return capacity.Result{}, err
	}
	caps := make([]capacity.Cluster, len(current))
	for i, w := range current {
		caps[i] = capacity.Cluster{Name: w.Cluster, Weight: w.Weight, Capacity: bk[w.Cluster].Capacity}
	}
	return capacity.Check(caps, drain), nil
}

// recordStatus writes the weights read back (merged into those recorded
// before) or the failure into the router's status.
func (m *Manager) recordStatus(ctx context.Context, name string, applied []v1.TrafficWeight, setErr error) {
	err := m.updateStatus(ctx, name, func(st *v1.TrafficRouterStatus) {
		for _, a := range applied {
			a.Router = ""
			i := slices.IndexFunc(st.Weights, func(w v1.TrafficWeight) bool { return w.Cluster == a.Cluster })
			if i >= 0 {
				st.Weights[i] = a
			} else {
				st.Weights = append(st.Weights, a)
			}
		}
		sort.Slice(st.Weights, func(i, j int) bool { return st.Weights[i].Cluster < st.Weights[j].Cluster })
		now := m.opts.Now().UTC()
		st.UpdatedAt = &now
		st.Message = ""
		if setErr != nil {
			st.Message = setErr.Error()
		}
	})
	if err != nil && m.opts.StatusError != nil {
		m.opts.StatusError(name, err)
	}
}

func (m *Manager) updateStatus(ctx context.Context, name string, change func(*v1.TrafficRouterStatus)) error {
	for attempt := 0; ; attempt++ {
		o, err := m.opts.Store.Get(ctx, v1.KindTrafficRouter, name)
		if err != nil {
			return fmt.Errorf("traffic router %s: status: %w", name, err)
		}
		var st v1.TrafficRouterStatus
		if len(o.Status) > 0 {
			if err := json.Unmarshal(o.Status, &st); err != nil {
				return fmt.Errorf("traffic router %s: status: %w", name, err)
			}
		}
		change(&st)
		data, err := json.Marshal(st)
		if err != nil {
			return fmt.Errorf("traffic router %s: status: %w", name, err)
		}
		o.Status = data
		if _, err = m.opts.Store.UpdateStatus(ctx, o, Actor); err == nil {
			return nil
		}
		if !errors.Is(err, store.ErrConflict) || attempt >= 4 {
			return fmt.Errorf("traffic router %s: status: %w", name, err)
		}
	}
}
