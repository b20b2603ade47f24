package dashboard

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"time"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/internal/auth"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Backend is what the dashboard reads and does through the server. Errors are the server's own
// (store.ErrNotFound, auth errors, ...), which the server maps to status codes.
type Backend interface {
	// Clusters returns every cluster with its agent's live state (connectivity, health).
	Clusters(ctx context.Context) ([]v1.Cluster, error)
	Cluster(ctx context.Context, name string) (*v1.Cluster, error)
	// AgentReports returns the latest report of each named cluster that has one; no names
	// returns all.
	AgentReports(ctx context.Context, clusters ...string) (map[string]*v1.AgentReport, error)
	// ServiceStates returns, per cluster, what each service runs there as its agent last
	// reported it: the short form of every report, for pages about many clusters.
	ServiceStates(ctx context.Context) (map[string][]ServiceState, error)
	Services(ctx context.Context) ([]v1.Service, error)
	Service(ctx context.Context, name string) (*v1.Service, error)
	// Releases and Rollouts return those of one service, or all with service "".
	Releases(ctx context.Context, service string) ([]v1.Release, error)
	Rollouts(ctx context.Context, service string) ([]v1.Rollout, error)
	Rollout(ctx context.Context, name string) (*v1.Rollout, error)
	// Strategy returns the named RolloutStrategy's spec.
	Strategy(ctx context.Context, name string) (*v1.RolloutStrategySpec, error)
	// Audit returns the audit trail's events matching q, oldest first.
	Audit(ctx context.Context, q AuditQuery) ([]v1.Event, error)
	KPIs(ctx context.Context, period, service string) (*v1.KPIReport, error)
	// LatestSeq, WaitForEvent and Changes follow the store's event log for live updates.
	LatestSeq(ctx context.Context) (int64, error)
	WaitForEvent(ctx context.Context, after int64) error
	Changes(ctx context.Context, after int64, limit int, kinds []string) ([]Change, error)
	// RolloutAction carries out a person's action on a rollout with the API's authorisation and
	// audit.
	RolloutAction(ctx context.Context, p *auth.Principal, name, action, to string) error
	// RolloutRetryable says whether retry is legal for the rollout now, as the rollout runner's
	// record has it: it ended Failed, RolledBack or Aborted, or is paused by a failure.
	RolloutRetryable(ctx context.Context, name string) (bool, error)
	// Source returns a source, for the ref a release form starts from.
	Source(ctx context.Context, name string) (*v1.Source, error)
	// CreateRelease releases a service at ref ("" for its source's ref) with the API's
	// authorisation and audit. Errors the person can act on (a ref that does not resolve, a
	// render that failed) come back as the result's Error, worded as the API words them.
	CreateRelease(ctx context.Context, p *auth.Principal, service, ref string) (ReleaseResult, error)
	// AuthenticateToken checks an API token; PrincipalByTokenHash finds the principal of a live
	// token by the hash of its secret (a session holds only the hash).
	AuthenticateToken(ctx context.Context, token string) (*auth.Principal, error)
	PrincipalByTokenHash(ctx context.Context, hash string) (*auth.Principal, error)
}

// AuditQuery narrows the audit page.
type AuditQuery struct {
	Kinds       []string
	Name, Actor string
	Since       time.Time
	After       int64
	Limit       int
}

// ServiceState is what one service runs on one cluster.
type ServiceState struct {
	Service, Release, Health string
	// Drifted counts objects that differ from what was applied; Errors the errors met.
	Drifted, Errors int
}

// ReleaseResult is what creating a release came to: the release, or why there is none.
type ReleaseResult struct {
	Release string
	// Created is false when the release of that commit existed already.
	Created bool
	Error   string
}

// Change is one entry of the event log as open pages need it: what changed, not how.
type Change struct {
	Seq  int64  `json:"seq"`
	Type string `json:"type"`
	Kind string `json:"kind"`
	Name string `json:"name"`
}

// Options configure a Dashboard.
type Options struct {
	Backend Backend
	// Roles decide which action buttons a person sees.
	Roles auth.Roles
	// Releases says the server can create releases (it runs a source controller): service pages
	// then offer a release form to those allowed to create releases.
	Releases bool
	// SessionKey signs session cookies; at least 32 bytes. Nil uses a random key, so sessions
	// end when the process does and are not shared between replicas.
	SessionKey []byte
	// SessionTTL is how long a sign-in lasts; default 12h.
	SessionTTL time.Duration
	// Streams ends every open event stream when it is done (server shutdown); nil never does.
	Streams context.Context
	// Heartbeat is how often an idle event stream sends a comment; default 15s.
	Heartbeat time.Duration
	// OIDC, when set, lets people sign in with an OpenID Connect provider besides API tokens.
	OIDC *OIDCOptions
	Now  func() time.Time
}

// Dashboard serves the pages. Create it with New; it is safe for concurrent use.
type Dashboard struct {
	opts   Options
	pages  map[string]*template.Template
	static fs.FS
	// oidc is nil when single sign-on is off.
	oidc *oidcClient
}

// New parses the embedded templates and returns a dashboard over opts.Backend.
func New(opts Options) (*Dashboard, error) {
	if opts.Backend == nil {
		return nil, errors.New("dashboard: no backend given")
	}
	if opts.SessionKey == nil {
		opts.SessionKey = make([]byte, 32)
		if _, err := rand.Read(opts.SessionKey); err != nil {
			return nil, fmt.Errorf("dashboard: session key: %w", err)
		}
	}
	if len(opts.SessionKey) < 32 {
		return nil, fmt.Errorf("dashboard: session key has %d bytes, want at least 32", len(opts.SessionKey))
	}
	if opts.SessionTTL <= 0 {
		opts.SessionTTL = 12 * time.Hour
	}
	if opts.Streams == nil {
		opts.Streams = context.Background()
	}
	if opts.Heartbeat <= 0 {
		opts.Heartbeat = 15 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	d := &Dashboard{opts: opts, pages: map[string]*template.Template{}}
	if opts.OIDC != nil {
		c, err := newOIDCClient(*opts.OIDC)
		if err != nil {
			return nil, fmt.Errorf("dashboard: %w", err)
		}
		d.oidc = c
	}
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, fmt.Errorf("dashboard: %w", err)
	}
	d.static = sub
	for _, name := range pageNames {
		t, err := template.New("layout.html").Funcs(d.funcs()).ParseFS(templateFS, "templates/layout.html", "templates/parts.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("dashboard: template %s: %w", name, err)
		}
		d.pages[name] = t
	}
	return d, nil
}

// pageNames are the page templates; each defines "title" and "main".
var pageNames = []string{"fleet", "cluster", "services", "service", "rollouts", "rollout", "audit", "kpis", "login", "error", "signedin"}

// Page is one route of the dashboard: the server puts it in its route table with its Rule and
// authenticates the caller by session before Handle runs.
type Page struct {
	Method, Path string
	Rule         auth.Rule
	Summary      string
	Handle       func(w http.ResponseWriter, r *http.Request, p *auth.Principal) error
}

// Pages returns every route of the dashboard.
func (d *Dashboard) Pages() []Page {
	ps := []Page{
		{"GET", "/{$}", auth.Public(), "Send people to the dashboard", d.root},
		{"GET", "/ui/{$}", auth.Require(auth.VerbList, "clusters"), "Dashboard: the fleet", d.fleet},
		{"GET", "/ui/clusters/{name}", auth.Require(auth.VerbGet, "clusters"), "Dashboard: one cluster", d.cluster},
		{"GET", "/ui/services", auth.Require(auth.VerbList, "services"), "Dashboard: services", d.services},
		{"GET", "/ui/services/{name}", auth.Require(auth.VerbGet, "services"), "Dashboard: one service", d.service},
		{"POST", "/ui/services/{name}", auth.Require(auth.VerbCreate, "releases"), "Dashboard: release the service at a ref and show the result", d.createRelease},
		{"GET", "/ui/rollouts", auth.Require(auth.VerbList, "rollouts"), "Dashboard: rollouts", d.rollouts},
		{"GET", "/ui/rollouts/{name}", auth.Require(auth.VerbGet, "rollouts"), "Dashboard: one rollout", d.rollout},
		{"GET", "/ui/audit", auth.Require(auth.VerbList, auth.ResourceAudit), "Dashboard: audit trail", d.audit},
		{"GET", "/ui/kpis", auth.Require(auth.VerbList, "rollouts"), "Dashboard: delivery KPIs", d.kpis},
		{"GET", "/ui/events", auth.Authenticated(), "Dashboard: changes for open pages (Server-Sent Events)", d.events},
		{"GET", "/ui/login", auth.Public(), "Dashboard: sign-in page", d.loginPage},
		{"POST", "/ui/login", auth.Public(), "Dashboard: sign in with an API token", d.login},
		{"POST", "/ui/logout", auth.Authenticated(), "Dashboard: sign out", d.logout},
		{"GET", "/ui/static/{file}", auth.Public(), "Dashboard: static files", d.serveStatic},
		{"GET", "/ui/{path...}", auth.Authenticated(), "Dashboard: any other path is not found", d.notFound},
	}
	if d.oidc != nil {
		// Public: they are how a session is created.
		ps = append(ps,
			Page{"GET", oidcLoginPath, auth.Public(), "Dashboard: start single sign-on with the OIDC provider", d.oidcLogin},
			Page{"GET", oidcCallbackPath, auth.Public(), "Dashboard: finish single sign-on and start a session", d.oidcCallback})
	}
	for _, a := range Actions {
		action := a
		rule := auth.Require(auth.VerbUpdate, "rollouts")
		if action == ActionApprove {
			rule = auth.Require(auth.VerbGet, "rollouts") // the gate's roles decide
		}
		ps = append(ps, Page{"POST", "/ui/rollouts/{name}/" + action, rule, "Dashboard: " + action + " a rollout",
			func(w http.ResponseWriter, r *http.Request, p *auth.Principal) error { return d.act(w, r, p, action) }})
	}
	return ps
}

// Rollout actions the dashboard offers, as the API names them.
const (
	ActionApprove  = "approve"
	ActionPromote  = "promote"
	ActionPause    = "pause"
	ActionResume   = "resume"
	ActionAbort    = "abort"
	ActionRollback = "rollback"
	ActionRetry    = "retry"
)

// Actions lists the rollout actions in the order their buttons appear.
var Actions = []string{ActionApprove, ActionPromote, ActionPause, ActionResume, ActionRetry, ActionAbort, ActionRollback}

// contentSecurityPolicy allows only the dashboard's own scripts, styles and connections.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// SetHeaders sets the security headers of every dashboard answer, errors included.
func (d *Dashboard) SetHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
}

// WriteError answers r with an error page. A page asked for without a session is sent to the
// sign-in form (and back after it); the live refresh and the event stream get a plain 401.
func (d *Dashboard) WriteError(w http.ResponseWriter, r *http.Request, code int, msg string) {
	d.SetHeaders(w)
	if code == http.StatusUnauthorized && r.Method == http.MethodGet && r.Header.Get("X-Flotilla-Fragment") == "" && r.URL.Path != "/ui/events" {
		http.Redirect(w, r, "/ui/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
		return
	}
	d.render(w, r, code, "error", nil, errorPage{Code: code, Status: http.StatusText(code), Message: msg})
}

type errorPage struct {
	Code           int
	Status         string
	Message        string
	Back, BackText string
}

// layout is what every page template receives.
type layout struct {
	Title string
	User  *auth.Principal
	CSRF  string
	// Nav is the highlighted menu entry; Live the changes that refresh the page ("Kind:name"
	// or "Kind:*", space-separated) and Seq the event the page was rendered after.
	Nav  string
	Live string
	Seq  int64
	// Every is the least time between two live refreshes of the page, in milliseconds: a page
	// about the whole fleet would otherwise be re-rendered for every agent's report.
	Every int
	Now   time.Time
	Main  any
}

// render writes page name with data. A request with the X-Flotilla-Fragment header gets only the
// page's main section (the live refresh).
func (d *Dashboard) render(w http.ResponseWriter, r *http.Request, code int, name string, p *auth.Principal, data any, opts ...func(*layout)) {
	d.SetHeaders(w)
	l := layout{User: p, Main: data, Nav: name, Now: d.opts.Now().UTC()}
	if s, err := d.readSession(r); err == nil && p != nil {
		l.CSRF = d.csrfToken(s)
	}
	for _, o := range opts {
		o(&l)
	}
	t := d.pages[name]
	var buf bytes.Buffer
	tmpl := "layout.html"
	if r.Header.Get("X-Flotilla-Fragment") == "main" {
		tmpl = "main"
	}
	if err := t.ExecuteTemplate(&buf, tmpl, l); err != nil {
		http.Error(w, "dashboard: render "+name+": "+err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Add("Vary", "Accept-Encoding")
	// A fleet page of 1,000 clusters is about half a megabyte of HTML; compressed, a tenth.
	if buf.Len() > 8<<10 && strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
		h.Set("Content-Encoding", "gzip")
		w.WriteHeader(code)
		zw, _ := gzip.NewWriterLevel(w, gzip.BestSpeed)
		_, _ = zw.Write(buf.Bytes())
		_ = zw.Close()
		return
	}
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

// live marks a page as refreshed by the given changes after seq, at most every everyMS.
func live(seq int64, interest string, everyMS int) func(*layout) {
	return func(l *layout) { l.Live, l.Seq, l.Every = interest, seq, everyMS }
}

func (d *Dashboard) root(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	http.Redirect(w, r, "/ui/", http.StatusSeeOther)
	return nil
}

func (d *Dashboard) notFound(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	d.WriteError(w, r, http.StatusNotFound, fmt.Sprintf("the dashboard has no page %s", r.URL.Path))
	return nil
}

func (d *Dashboard) serveStatic(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	name := r.PathValue("file")
	data, err := fs.ReadFile(d.static, name)
	if err != nil {
		d.WriteError(w, r, http.StatusNotFound, fmt.Sprintf("no static file %q", name))
		return nil
	}
	h := w.Header()
	d.SetHeaders(w)
	h.Set("Cache-Control", "public, max-age=300")
	switch {
	case hasSuffix(name, ".js"):
		h.Set("Content-Type", "text/javascript; charset=utf-8")
	case hasSuffix(name, ".css"):
		h.Set("Content-Type", "text/css; charset=utf-8")
	case hasSuffix(name, ".svg"):
		h.Set("Content-Type", "image/svg+xml")
	default:
		h.Set("Content-Type", "application/octet-stream")
	}
	_, _ = w.Write(data)
	return nil
}

func hasSuffix(s, suffix string) bool {
	return len(s) >= len(suffix) && s[len(s)-len(suffix):] == suffix
}
