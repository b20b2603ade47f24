package server

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"flotilla.dev/flotilla/internal/auth"
	"flotilla.dev/flotilla/internal/store"
)

// metrics are the server's Prometheus collectors.
type metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	store    *prometheus.HistogramVec
}

func newMetrics(reg *prometheus.Registry) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flotilla_http_requests_total",
			Help: "HTTP requests answered, by route pattern and status code.",
		}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "flotilla_http_request_duration_seconds",
			Help:    "Time to answer HTTP requests, by route pattern and status code (watch streams count their whole life).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"route", "code"}),
		store: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "flotilla_store_operation_duration_seconds",
			Help:    "Time of store operations, by operation and outcome (ok or error).",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}, []string{"operation", "result"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.latency, m.store} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	promhttp.HandlerFor(s.opts.Registry, promhttp.HandlerOpts{}).ServeHTTP(w, r)
	return nil
}

// instrumentedStore times every store call.
type instrumentedStore struct {
	store.Store
	m *metrics
}

var _ store.Store = (*instrumentedStore)(nil)

// done records the duration of op; answers the store gives by design (not found, conflict,
// already exists, invalid) count as "ok", anything else as "error".
func (s *instrumentedStore) done(op string, start time.Time, err error) {
	result := "ok"
	if err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrConflict) &&
		!errors.Is(err, store.ErrAlreadyExists) && !errors.Is(err, store.ErrInvalid) {
		result = "error"
	}
	s.m.store.WithLabelValues(op, result).Observe(time.Since(start).Seconds())
}

func (s *instrumentedStore) Create(ctx context.Context, obj *store.Object, by store.Actor) (*store.Object, error) {
	t := time.Now()
	o, err := s.Store.Create(ctx, obj, by)
	s.done("create", t, err)
	return o, err
}

func (s *instrumentedStore) Get(ctx context.Context, kind, name string) (*store.Object, error) {
	t := time.Now()
	o, err := s.Store.Get(ctx, kind, name)
	s.done("get", t, err)
	return o, err
}

func (s *instrumentedStore) List(ctx context.Context, kind string, opts store.ListOptions) (*store.ObjectList, error) {
	t := time.Now()
	l, err := s.Store.List(ctx, kind, opts)
	s.done("list", t, err)
	return l, err
}

func (s *instrumentedStore) Update(ctx context.Context, obj *store.Object, by store.Actor) (*store.Object, error) {
	t := time.Now()
	o, err := s.Store.Update(ctx, obj, by)
	s.done("update", t, err)
	return o, err
}

func (s *instrumentedStore) UpdateStatus(ctx context.Context, obj *store.Object, by store.Actor) (*store.Object, error) {
	t := time.Now()
	o, err := s.Store.UpdateStatus(ctx, obj, by)
	s.done("update_status", t, err)
	return o, err
}

func (s *instrumentedStore) Delete(ctx context.Context, kind, name string, rv int64, by store.Actor) (*store.Object, error) {
	t := time.Now()
	o, err := s.Store.Delete(ctx, kind, name, rv, by)
	s.done("delete", t, err)
	return o, err
}

func (s *instrumentedStore) Apply(ctx context.Context, objs []*store.Object, by store.Actor) ([]store.ApplyResult, error) {
	t := time.Now()
	r, err := s.Store.Apply(ctx, objs, by)
	s.done("apply", t, err)
	return r, err
}

func (s *instrumentedStore) Events(ctx context.Context, after int64, limit int, f store.EventFilter) ([]store.Event, error) {
	t := time.Now()
	e, err := s.Store.Events(ctx, after, limit, f)
	s.done("events", t, err)
	return e, err
}

func (s *instrumentedStore) LatestSeq(ctx context.Context) (int64, error) {
	t := time.Now()
	n, err := s.Store.LatestSeq(ctx)
	s.done("latest_seq", t, err)
	return n, err
}

func (s *instrumentedStore) CreateToken(ctx context.Context, tok store.Token, by store.Actor) error {
	t := time.Now()
	err := s.Store.CreateToken(ctx, tok, by)
	s.done("create_token", t, err)
	return err
}

func (s *instrumentedStore) TokenByHash(ctx context.Context, hash string) (*store.Token, error) {
	t := time.Now()
	tok, err := s.Store.TokenByHash(ctx, hash)
	s.done("token_by_hash", t, err)
	return tok, err
}

func (s *instrumentedStore) ListTokens(ctx context.Context) ([]store.Token, error) {
	t := time.Now()
	l, err := s.Store.ListTokens(ctx)
	s.done("list_tokens", t, err)
	return l, err
}

func (s *instrumentedStore) DeleteToken(ctx context.Context, id string, by store.Actor) error {
	t := time.Now()
	err := s.Store.DeleteToken(ctx, id, by)
	s.done("delete_token", t, err)
	return err
}

func (s *instrumentedStore) Ping(ctx context.Context) error {
	t := time.Now()
	err := s.Store.Ping(ctx)
	s.done("ping", t, err)
	return err
}
