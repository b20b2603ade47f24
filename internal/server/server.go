package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/internal/auth"
	"flotilla.dev/flotilla/internal/dashboard"
	"flotilla.dev/flotilla/internal/rollout/runner"
	"flotilla.dev/flotilla/internal/store"
)

// Options configure a Server. Only Store is required; New fills the other fields with defaults.
type Options struct {
	// Store holds the objects, the event log and the tokens.
	Store store.Store
	// Logger receives one line per request; nil discards.
	Logger *slog.Logger
	// Registry receives the server's metrics and is served at /metrics; nil creates a registry
	// with the Go runtime and process collectors.
	Registry *prometheus.Registry
	// Roles are the roles tokens may hold; nil uses auth.DefaultRoles over every kind.
	Roles auth.Roles
	// TrafficWeights reads the weights routers give clusters now, for rollout plans
	// (internal/traffic.Manager); nil plans with capacities and says so.
	TrafficWeights runner.WeightReader
	// MaxBodyBytes limits request bodies; larger ones get 413. Default 4 MiB.
	MaxBodyBytes int64
	// DefaultListLimit is the page size of a list without ?limit=. Default 500.
	DefaultListLimit int
	// MaxListLimit is the largest ?limit= accepted for lists and the audit trail. Default 10000.
	MaxListLimit int
	// HeartbeatInterval is how often an idle watch stream gets a comment line, so that proxies and
	// clients see it alive. Default 15s.
	HeartbeatInterval time.Duration
	// ShutdownTimeout bounds how long Serve waits for in-flight requests after its context ends.
	// Default 30s.
	ShutdownTimeout time.Duration
	// Now returns the current time (token expiry); nil uses time.Now.
	Now func() time.Time
	// LongPollTimeout is how long an agent's desired-state poll is held without a change before it
	// is answered 304. Default 30s.
	LongPollTimeout time.Duration
	// MaxLongPolls is how many desired-state polls may be held at once; more get 429 with
	// Retry-After. Default 20000.
	MaxLongPolls int
	// LeaseTTL is how long an agent's cluster lease lasts without renewal. Default 45s.
	LeaseTTL time.Duration
	// DisconnectAfter is how long after its last report a cluster's agent shows as Disconnected.
	// Default 90s.
	DisconnectAfter time.Duration
	// Deploy serves sources and releases (webhooks, release create, preview, diff); nil leaves
	// those routes out.
	Deploy Deployer
	// SessionKey signs dashboard session cookies (at least 32 bytes); nil uses a random key, so
	// sessions end with the process and are not shared between replicas.
	SessionKey []byte
	// OIDC, when set, lets people sign in to the dashboard with an OpenID Connect provider; the
	// API takes bearer tokens, which `flotilla login --sso` gets for an ID token (OIDCCLITokenTTL).
	OIDC *dashboard.OIDCOptions
	// OIDCCLITokenTTL is the lifetime of the API tokens `flotilla login --sso` gets for an ID
	// token. Default 12h.
	OIDCCLITokenTTL time.Duration
}

func (o *Options) setDefaults() {
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
		o.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	if o.Roles == nil {
		o.Roles = auth.DefaultRoles(append(objectResources(), resourceAssignments, resourceBundles))
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 4 << 20
	}
	if o.DefaultListLimit <= 0 {
		o.DefaultListLimit = 500
	}
	if o.MaxListLimit <= 0 {
		o.MaxListLimit = 10000
	}
	if o.HeartbeatInterval <= 0 {
		o.HeartbeatInterval = 15 * time.Second
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = 30 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.LongPollTimeout <= 0 {
		o.LongPollTimeout = 30 * time.Second
	}
	if o.MaxLongPolls <= 0 {
		o.MaxLongPolls = 20000
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = 45 * time.Second
	}
	if o.OIDCCLITokenTTL <= 0 {
		o.OIDCCLITokenTTL = 12 * time.Hour
	}
	if o.DisconnectAfter <= 0 {
		o.DisconnectAfter = 90 * time.Second
	}
}

// objectResources returns the resource name (plural) of every kind.
func objectResources() []string {
	var out []string
	for _, k := range v1.Kinds() {
		out = append(out, k.Plural)
	}
	return out
}

// Server serves the API of one store. Create it with New; it is safe for concurrent use.
type Server struct {
	opts    Options
	store   store.Store // instrumented
	authn   *auth.Authenticator
	metrics *metrics
	routes  []Route
	handler http.Handler
	openapi []byte

	// streams is cancelled by StopStreams; watch handlers end when it is.
	streams    context.Context
	stopStream context.CancelFunc
	stopOnce   sync.Once

	// hub wakes agents' long polls; its goroutine ends with streams (hubDone).
	hub     *agentHub
	hubDone chan struct{}
	// dash serves the dashboard's pages.
	dash *dashboard.Dashboard
	// polls counts the desired-state polls being held.
	polls atomic.Int64
}

// New builds a server over opts.Store.
func New(opts Options) (*Server, error) {
	if opts.Store == nil {
		return nil, errors.New("server: no store given")
	}
	opts.setDefaults()
	s := &Server{opts: opts}
	m, err := newMetrics(opts.Registry)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	s.metrics = m
	s.store = &instrumentedStore{Store: opts.Store, m: m}
	s.authn = &auth.Authenticator{Tokens: s.store, Now: opts.Now}
	s.streams, s.stopStream = context.WithCancel(context.Background())
	s.hub, s.hubDone = newAgentHub(), make(chan struct{})
	go func() {
		defer close(s.hubDone)
		s.hub.run(s.streams, s.store)
	}()
	if s.dash, err = s.newDashboard(); err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	if err := opts.Registry.Register(newKPICollector(s)); err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	s.routes = s.routeTable()
	s.handler = s.buildHandler(s.routes)
	doc, err := s.buildOpenAPI()
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	s.openapi = doc
	return s, nil
}

// Handler returns the HTTP handler of the whole API.
func (s *Server) Handler() http.Handler { return s.handler }

// Routes returns a copy of the route table: every method, path and access rule the server serves.
func (s *Server) Routes() []Route {
	out := make([]Route, len(s.routes))
	copy(out, s.routes)
	return out
}

// StopStreams ends every open watch stream and agent long poll, makes new ones end at once, and
// waits for the agent hub to stop. Serve calls it when it
// shuts down; tests that serve Handler themselves call it before closing their listener.
func (s *Server) StopStreams() {
	s.stopOnce.Do(s.stopStream)
	<-s.hubDone
}

// Serve answers requests on ln until ctx ends, then shuts down gracefully: it stops accepting,
// ends watch streams, and waits up to ShutdownTimeout for in-flight requests to finish. It returns
// nil after a clean shutdown.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.opts.Logger.Handler(), slog.LevelWarn),
	}
	hs.RegisterOnShutdown(s.StopStreams)
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		s.StopStreams()
		return fmt.Errorf("server: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.opts.ShutdownTimeout)
	defer cancel()
	err := hs.Shutdown(sctx)
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		return fmt.Errorf("server: %w", serr)
	}
	if err != nil {
		return fmt.Errorf("server: shutdown: %w", err)
	}
	return nil
}
