package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/internal/auth"
	"flotilla.dev/flotilla/internal/dashboard"
	"flotilla.dev/flotilla/internal/rollout/runner"
	"flotilla.dev/flotilla/internal/store"
)

// newDashboard builds the dashboard over this server.
func (s *Server) newDashboard() (*dashboard.Dashboard, error) {
	return dashboard.New(dashboard.Options{Backend: &dashboardBackend{s: s}, Roles: s.opts.Roles, Releases: s.opts.Deploy != nil, SessionKey: s.opts.SessionKey,
		Streams: s.streams, Heartbeat: s.opts.HeartbeatInterval, OIDC: s.opts.OIDC, Now: s.opts.Now})
}

// dashboardRoutes returns the dashboard's pages as routes: each keeps its rule, and is
// authenticated by the dashboard session instead of a bearer token (Session).
func (s *Server) dashboardRoutes() []Route {
	var rs []Route
	for _, pg := range s.dash.Pages() {
		h := pg.Handle
		id := strings.NewReplacer("/", "_", "{", "", "}", "", "$", "", ".", "").Replace(strings.ToLower(pg.Method) + pg.Path)
		rs = append(rs, Route{Method: pg.Method, Path: pg.Path, Rule: pg.Rule, OperationID: "dashboard" + id, Summary: pg.Summary, Session: true,
			handle: handlerFunc(h)})
	}
	return rs
}

// authenticateRoute authenticates the caller of rt: by session (and CSRF token) on dashboard
// routes, by bearer token elsewhere.
func (s *Server) authenticateRoute(rt Route, r *http.Request) (*auth.Principal, error) {
	if rt.Session {
		// Agents get 404 from every route but theirs, the dashboard's included.
		if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && strings.HasPrefix(strings.TrimSpace(tok), auth.AgentTokenPrefix) {
			return nil, notFound("no route %s %s", r.Method, r.URL.Path)
		}
		return s.dash.Authenticate(r)
	}
	return s.authenticate(r)
}

// routeError answers a failed request: an HTML page on dashboard routes, a Status elsewhere.
func (s *Server) routeError(rt Route, w http.ResponseWriter, r *http.Request, err error) {
	if !rt.Session {
		s.writeError(w, r, err)
		return
	}
	st := statusOf(err)
	if info := infoFrom(r.Context()); info != nil {
		info.err = err
	}
	s.dash.WriteError(w, r, st.Code, st.Message)
}

// dashboardBackend gives the dashboard what it reads and does, through the same store and checks
// as the API.
type dashboardBackend struct{ s *Server }

var _ dashboard.Backend = (*dashboardBackend)(nil)

// decodeObject converts a stored object into its API type.
func decodeObject[T any](o *store.Object) (*T, error) {
	data, err := json.Marshal(fromStore(o))
	if err != nil {
		return nil, err
	}
	out := new(T)
	if err := json.Unmarshal(data, out); err != nil {
		return nil, fmt.Errorf("%s %s: %w", o.Kind, o.Name, err)
	}
	return out, nil
}

func listTyped[T any](ctx context.Context, s *Server, kind string, keep func(*T) bool) ([]T, error) {
	objs, err := s.listAll(ctx, kind)
	if err != nil {
		return nil, err
	}
	out := make([]T, 0, len(objs))
	for _, o := range objs {
		v, err := decodeObject[T](o)
		if err != nil {
			return nil, err
		}
		if keep == nil || keep(v) {
			out = append(out, *v)
		}
	}
	return out, nil
}

func getTyped[T any](ctx context.Context, s *Server, kind, name string) (*T, error) {
	o, err := s.store.Get(ctx, kind, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFound("%s %q not found", kind, name)
	}
	if err != nil {
		return nil, err
	}
	return decodeObject[T](o)
}

func (b *dashboardBackend) Clusters(ctx context.Context) ([]v1.Cluster, error) {
	objs, err := b.s.listAll(ctx, v1.KindCluster)
	if err != nil {
		return nil, err
	}
	wire := make([]wireObject, len(objs))
	for i, o := range objs {
		wire[i] = fromStore(o)
	}
	if err := b.s.overlayClusters(ctx, wire); err != nil {
		return nil, err
	}
	out := make([]v1.Cluster, len(wire))
	for i, w := range wire {
		out[i] = v1.Cluster{Metadata: w.Metadata}
		if len(w.Spec) > 0 {
			if err := json.Unmarshal(w.Spec, &out[i].Spec); err != nil {
				return nil, fmt.Errorf("cluster %s: %w", w.Metadata.Name, err)
			}
		}
		if len(w.Status) > 0 {
			if err := json.Unmarshal(w.Status, &out[i].Status); err != nil {
				return nil, fmt.Errorf("cluster %s: %w", w.Metadata.Name, err)
			}
		}
	}
	return out, nil
}

func (b *dashboardBackend) Cluster(ctx context.Context, name string) (*v1.Cluster, error) {
	o, err := b.s.store.Get(ctx, v1.KindCluster, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFound("Cluster %q not found", name)
	}
	if err != nil {
		return nil, err
	}
	wire := []wireObject{fromStore(o)}
	if err := b.s.overlayClusters(ctx, wire); err != nil {
		return nil, err
	}
	data, err := json.Marshal(wire[0])
	if err != nil {
		return nil, err
	}
	var c v1.Cluster
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("cluster %s: %w", name, err)
	}
	return &c, nil
}

func (b *dashboardBackend) AgentReports(ctx context.Context, clusters ...string) (map[string]*v1.AgentReport, error) {
	sts, err := b.s.store.AgentStatuses(ctx, clusters...)
	if err != nil {
		return nil, err
	}
	out := make(map[string]*v1.AgentReport, len(sts))
	for name, st := range sts {
		rep := &v1.AgentReport{Cluster: name, Epoch: st.Epoch, LastHeartbeat: st.LastHeartbeat.UTC()}
		if err := json.Unmarshal(st.Report, &rep.Report); err != nil {
			return nil, fmt.Errorf("agent report of %s: %w", name, err)
		}
		out[name] = rep
	}
	return out, nil
}

func (b *dashboardBackend) ServiceStates(ctx context.Context) (map[string][]dashboard.ServiceState, error) {
	sts, err := b.s.store.AgentStatuses(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string][]dashboard.ServiceState, len(sts))
	for name, st := range sts {
		var sum statusSummary
		if len(st.Summary) > 0 {
			if err := json.Unmarshal(st.Summary, &sum); err != nil {
				return nil, fmt.Errorf("agent summary of %s: %w", name, err)
			}
		}
		for _, sv := range sum.Services {
			out[name] = append(out[name], dashboard.ServiceState{Service: sv.Service, Release: sv.Release, Health: sv.Health, Drifted: sv.Drifted, Errors: sv.Errors})
		}
	}
	return out, nil
}

func (b *dashboardBackend) Services(ctx context.Context) ([]v1.Service, error) {
	return listTyped[v1.Service](ctx, b.s, v1.KindService, nil)
}

func (b *dashboardBackend) Service(ctx context.Context, name string) (*v1.Service, error) {
	return getTyped[v1.Service](ctx, b.s, v1.KindService, name)
}

func (b *dashboardBackend) Releases(ctx context.Context, service string) ([]v1.Release, error) {
	return listTyped(ctx, b.s, v1.KindRelease, func(r *v1.Release) bool { return service == "" || r.Spec.Service == service })
}

func (b *dashboardBackend) Rollouts(ctx context.Context, service string) ([]v1.Rollout, error) {
	return listTyped(ctx, b.s, v1.KindRollout, func(r *v1.Rollout) bool { return service == "" || r.Spec.Service == service })
}

func (b *dashboardBackend) Rollout(ctx context.Context, name string) (*v1.Rollout, error) {
	return getTyped[v1.Rollout](ctx, b.s, v1.KindRollout, name)
}

func (b *dashboardBackend) Strategy(ctx context.Context, name string) (*v1.RolloutStrategySpec, error) {
	rs, err := getTyped[v1.RolloutStrategy](ctx, b.s, v1.KindRolloutStrategy, name)
	if err != nil {
		return nil, err
	}
	return &rs.Spec, nil
}

func (b *dashboardBackend) Audit(ctx context.Context, q dashboard.AuditQuery) ([]v1.Event, error) {
	kinds, err := parseAuditKinds(q.Kinds)
	if err != nil {
		return nil, err
	}
	f := store.EventFilter{Kinds: kinds, Name: q.Name, Actor: q.Actor, Since: q.Since}
	if _, name, ok := strings.Cut(f.Actor, ":"); ok {
		f.Actor = name
	}
	// The store pages forward only. To find the newest q.Limit matches without reading the
	// whole log, scan a window of the newest sequence numbers and widen it fourfold until it
	// holds enough matches or reaches q.After.
	latest, err := b.s.store.LatestSeq(ctx)
	if err != nil {
		return nil, err
	}
	for window := int64(2000); ; window *= 4 {
		lo := max(q.After, latest-window)
		var out []v1.Event
		for after := lo; ; {
			evs, err := b.s.store.Events(ctx, after, 1000, f)
			if err != nil {
				return nil, err
			}
			for _, e := range evs {
				if e.Seq > latest {
					break
				}
				we, err := toWireEvent(e, false)
				if err != nil {
					return nil, err
				}
				out = append(out, we)
			}
			if q.Limit > 0 && len(out) > q.Limit {
				out = out[len(out)-q.Limit:]
			}
			if len(evs) < 1000 || evs[len(evs)-1].Seq >= latest {
				break
			}
			after = evs[len(evs)-1].Seq
		}
		if q.Limit > 0 && len(out) >= q.Limit || lo <= q.After {
			return out, nil
		}
	}
}

func (b *dashboardBackend) KPIs(ctx context.Context, period, service string) (*v1.KPIReport, error) {
	return b.s.kpiReport(ctx, period, service)
}

func (b *dashboardBackend) LatestSeq(ctx context.Context) (int64, error) {
	return b.s.store.LatestSeq(ctx)
}

func (b *dashboardBackend) WaitForEvent(ctx context.Context, after int64) error {
	return b.s.store.WaitForEvent(ctx, after)
}

func (b *dashboardBackend) Changes(ctx context.Context, after int64, limit int, kinds []string) ([]dashboard.Change, error) {
	evs, err := b.s.store.Events(ctx, after, limit, store.EventFilter{Kinds: kinds})
	if err != nil {
		return nil, err
	}
	out := make([]dashboard.Change, len(evs))
	for i, e := range evs {
		out[i] = dashboard.Change{Seq: e.Seq, Type: string(e.Type), Kind: e.Kind, Name: e.Name}
	}
	return out, nil
}

func (b *dashboardBackend) RolloutAction(ctx context.Context, p *auth.Principal, name, action, to string) error {
	return b.s.rolloutAction(ctx, p, name, action, to)
}

func (b *dashboardBackend) RolloutRetryable(ctx context.Context, name string) (bool, error) {
	_, rec, err := runner.Load(ctx, b.s.store, name)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil || rec == nil {
		return false, err
	}
	// As retryRollout and the engine decide: a finished rollout that failed starts again as a
	// new rollout; a running one takes Retry only when a failure paused it.
	switch rec.Engine.Phase {
	case v1.RolloutFailed, v1.RolloutRolledBack, v1.RolloutAborted:
		return true, nil
	}
	return !rec.Engine.Finished() && rec.Engine.Paused && rec.Engine.Halt != "", nil
}

func (b *dashboardBackend) Source(ctx context.Context, name string) (*v1.Source, error) {
	return getTyped[v1.Source](ctx, b.s, v1.KindSource, name)
}

// CreateRelease is POST /api/v1/services/{name}/releases for the dashboard: the same rule, the
// same Deployer call with the person as the actor (the audit trail records them), and the
// errors the API would answer with a 4xx as the result's text.
func (b *dashboardBackend) CreateRelease(ctx context.Context, p *auth.Principal, service, ref string) (dashboard.ReleaseResult, error) {
	if b.s.opts.Deploy == nil {
		return dashboard.ReleaseResult{}, notFound("this server runs no source controller, so it makes no releases")
	}
	if err := b.s.opts.Roles.Authorize(p, auth.Permission{Verb: auth.VerbCreate, Resource: "releases"}); err != nil {
		return dashboard.ReleaseResult{}, err
	}
	rel, created, err := b.s.opts.Deploy.CreateRelease(ctx, service, ref, p.Actor())
	if err != nil {
		err = deployErr(err)
		st := statusOf(err)
		if st.Code >= 400 && st.Code < 500 && st.Code != http.StatusUnauthorized && st.Code != http.StatusForbidden {
			return dashboard.ReleaseResult{Error: st.Message}, nil
		}
		return dashboard.ReleaseResult{}, err
	}
	return dashboard.ReleaseResult{Release: rel.Metadata.Name, Created: created}, nil
}

func (b *dashboardBackend) AuthenticateToken(ctx context.Context, token string) (*auth.Principal, error) {
	if strings.HasPrefix(token, auth.AgentTokenPrefix) {
		return nil, fmt.Errorf("%w: agent credentials cannot sign in to the dashboard", auth.ErrUnauthenticated)
	}
	return b.s.authn.AuthenticateToken(ctx, token)
}

func (b *dashboardBackend) PrincipalByTokenHash(ctx context.Context, hash string) (*auth.Principal, error) {
	t, err := b.s.store.TokenByHash(ctx, hash)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: the token this session was signed in with is no longer valid; sign in again", auth.ErrUnauthenticated)
	}
	if err != nil {
		return nil, fmt.Errorf("dashboard session: %w", err)
	}
	if t.ExpiresAt != nil && !b.s.opts.Now().Before(*t.ExpiresAt) {
		return nil, fmt.Errorf("%w: the token %q expired at %s", auth.ErrUnauthenticated, t.Name, t.ExpiresAt.UTC().Format(time.RFC3339))
	}
	return &auth.Principal{Name: t.Name, Kind: auth.KindToken, Roles: []string{t.Role}}, nil
}
