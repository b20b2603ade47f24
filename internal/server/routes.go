package server

import (
	"fmt"
	"net/http"
	"strings"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/internal/auth"
)

// Route is one entry of the route table: what the server answers, who may call it, and what the
// OpenAPI document says about it.
type Route struct {
	Method string
	// Path is a net/http ServeMux path pattern such as "/api/v1/services/{name}".
	Path string
	// Rule is the access rule; a route with an incomplete rule cannot be served.
	Rule auth.Rule
	// OperationID and Summary document the route.
	OperationID string
	Summary     string
	// Kind is the object kind the route serves, or "".
	Kind string
	// Query lists the documented query parameters.
	Query []Param
	// Request and Response name the schemas of the bodies ("" for none); Stream marks a
	// text/event-stream answer. Code is the success status code.
	Request  string
	Response string
	Stream   bool
	Code     int
	// Agent marks a route of the agent protocol: only agent principals may call it, always for
	// their own cluster. Agent principals get 404 from every other route.
	Agent bool
	// Session marks a dashboard route: the caller is authenticated by the dashboard session
	// (with its CSRF token on state-changing requests) instead of a bearer token, and errors
	// are answered as HTML pages.
	Session bool

	handle handlerFunc
}

// Pattern returns the ServeMux pattern "METHOD /path".
func (r Route) Pattern() string { return r.Method + " " + r.Path }

// Param is a documented query parameter.
type Param struct {
	Name        string
	Description string
	Type        string // string | integer
}

// handlerFunc serves one request for an authorised principal (nil on public routes). A returned
// error is written by writeError; a handler that wrote its answer returns nil.
type handlerFunc func(w http.ResponseWriter, r *http.Request, p *auth.Principal) error

var (
	paramSelector = Param{"labelSelector", "Kubernetes label selector, e.g. env=prod,region in (eu,us)", "string"}
	paramLimit    = Param{"limit", "most items to return", "integer"}
	paramContinue = Param{"continue", "token from the previous page's metadata.continue", "string"}
	paramRV       = Param{"resourceVersion", "delete only if the object still has this version", "string"}
)

// routeTable is the one place that lists every route and its access rule.
func (s *Server) routeTable() []Route {
	rs := []Route{
		{Method: "GET", Path: "/healthz", Rule: auth.Public(), OperationID: "health", Summary: "Liveness: the process answers", Response: "Health", handle: s.health},
		{Method: "GET", Path: "/readyz", Rule: auth.Public(), OperationID: "ready", Summary: "Readiness: the store answers a ping", Response: "Health", handle: s.ready},
		{Method: "GET", Path: "/metrics", Rule: auth.Public(), OperationID: "metrics", Summary: "Prometheus metrics", handle: s.serveMetrics},
		{Method: "GET", Path: "/api/v1/openapi.json", Rule: auth.Public(), OperationID: "openapi", Summary: "This OpenAPI document", handle: s.serveOpenAPI},
		{Method: "GET", Path: "/api/v1/whoami", Rule: auth.Authenticated(), OperationID: "whoami", Summary: "The caller as the server sees it", Response: "WhoAmI", handle: s.whoami},
		{Method: "POST", Path: "/api/v1/apply", Rule: auth.RequireEach(auth.VerbApply), OperationID: "apply",
			Summary: "Create or update a batch of objects, all or nothing", Request: "ApplyRequest", Response: "ApplyResponse", handle: s.apply},
		{Method: "GET", Path: "/api/v1/audit", Rule: auth.Require(auth.VerbList, auth.ResourceAudit), OperationID: "audit",
			Summary: "Read the audit trail", Response: "EventList", handle: s.audit, Query: []Param{
				{"kind", "only events of this kind", "string"}, {"name", "only events of objects with this name", "string"},
				{"actor", "only events by this actor (name or kind:name)", "string"},
				{"since", "only events at or after this time (RFC 3339) or this long ago (e.g. 1h)", "string"},
				{"until", "only events before this time (RFC 3339) or this long ago", "string"},
				paramLimit, {"after", "only events with a greater sequence number", "integer"}}},
		{Method: "GET", Path: "/api/v1/watch", Rule: auth.RequireEach(auth.VerbWatch), OperationID: "watch",
			Summary: "Stream events as Server-Sent Events, resuming after a sequence number", Response: "Event", Stream: true, handle: s.watch,
			Query: []Param{{"kinds", "comma-separated kinds to include (default all)", "string"},
				{"after", "resume after this sequence number (the Last-Event-ID header takes precedence)", "integer"}}},
		{Method: "GET", Path: "/api/v1/tokens", Rule: auth.Require(auth.VerbList, auth.ResourceTokens), OperationID: "listTokens",
			Summary: "List API tokens", Response: "TokenList", handle: s.listTokens},
		{Method: "POST", Path: "/api/v1/tokens", Rule: auth.Require(auth.VerbCreate, auth.ResourceTokens), OperationID: "createToken",
			Summary: "Create an API token; its secret is shown only in this answer", Request: "TokenRequest", Response: "Token", Code: http.StatusCreated, handle: s.createToken},
		{Method: "DELETE", Path: "/api/v1/tokens/{id}", Rule: auth.Require(auth.VerbDelete, auth.ResourceTokens), OperationID: "deleteToken",
			Summary: "Revoke an API token", Code: http.StatusNoContent, handle: s.deleteToken},
		{Method: "GET", Path: "/api/v1/auth/oidc", Rule: auth.Public(), OperationID: "oidcInfo",
			Summary: "The OpenID Connect provider `flotilla login --sso` signs in with (404 when single sign-on is off)", Response: "OIDCInfo", handle: s.oidcInfo},
		{Method: "POST", Path: "/api/v1/auth/oidc/token", Rule: auth.Public(), OperationID: "oidcToken",
			Summary: "Exchange a valid ID token from the OpenID Connect provider for a short-lived API token; its secret is shown only in this answer",
			Request: "OIDCTokenRequest", Response: "Token", Code: http.StatusCreated, handle: s.oidcToken},
	}
	for _, k := range v1.Kinds() {
		rs = append(rs, s.kindRoutes(k)...)
	}
	rs = append(rs, s.rolloutRoutes()...)
	rs = append(rs, s.kpiRoutes()...)
	rs = append(rs, s.dashboardRoutes()...)
	rs = append(rs, s.releaseRoutes()...)
	return append(rs, s.agentRoutes()...)
}

// kindRoutes returns the REST routes of one object kind.
func (s *Server) kindRoutes(k v1.KindInfo) []Route {
	coll := "/api/v1/" + k.Plural
	item := coll + "/{name}"
	h := &kindHandler{s: s, info: k}
	return []Route{
		{Method: "GET", Path: coll, Rule: auth.Require(auth.VerbList, k.Plural), OperationID: "list" + k.Kind, Kind: k.Kind,
			Summary: "List " + k.Plural, Response: k.Kind + "List", Query: []Param{paramSelector, paramLimit, paramContinue}, handle: h.list},
		{Method: "POST", Path: coll, Rule: auth.Require(auth.VerbCreate, k.Plural), OperationID: "create" + k.Kind, Kind: k.Kind,
			Summary: "Create a " + k.Kind, Request: k.Kind, Response: k.Kind, Code: http.StatusCreated, handle: h.create},
		{Method: "GET", Path: item, Rule: auth.Require(auth.VerbGet, k.Plural), OperationID: "get" + k.Kind, Kind: k.Kind,
			Summary: "Read a " + k.Kind, Response: k.Kind, handle: h.get},
		{Method: "PUT", Path: item, Rule: auth.Require(auth.VerbUpdate, k.Plural), OperationID: "update" + k.Kind, Kind: k.Kind,
			Summary: "Replace a " + k.Kind + "'s labels, annotations and spec (metadata.resourceVersion required)", Request: k.Kind, Response: k.Kind, handle: h.update},
		{Method: "PATCH", Path: item, Rule: auth.Require(auth.VerbPatch, k.Plural), OperationID: "patch" + k.Kind, Kind: k.Kind,
			Summary: "Change a " + k.Kind + " with a JSON merge patch (application/merge-patch+json)", Request: "MergePatch", Response: k.Kind, handle: h.patch},
		{Method: "DELETE", Path: item, Rule: auth.Require(auth.VerbDelete, k.Plural), OperationID: "delete" + k.Kind, Kind: k.Kind,
			Summary: "Delete a " + k.Kind + "; answers its last state", Response: k.Kind, Query: []Param{paramRV}, handle: h.delete},
		{Method: "PUT", Path: item + "/status", Rule: auth.Require(auth.VerbUpdate, auth.StatusResource(k.Plural)), OperationID: "update" + k.Kind + "Status", Kind: k.Kind,
			Summary: "Replace a " + k.Kind + "'s status (metadata.resourceVersion required)", Request: k.Kind, Response: k.Kind, handle: h.updateStatus},
	}
}

// buildHandler registers every route on a ServeMux behind authentication, authorisation, metrics
// and logging. It panics on a route without a complete rule or handler: such a route is a
// programming error that must never be served.
func (s *Server) buildHandler(routes []Route) http.Handler {
	mux := http.NewServeMux()
	seen := map[string]bool{}
	for _, rt := range routes {
		if err := rt.Rule.Check(); err != nil {
			panic(fmt.Sprintf("server: route %s: %v", rt.Pattern(), err))
		}
		if rt.handle == nil {
			panic(fmt.Sprintf("server: route %s has no handler", rt.Pattern()))
		}
		if seen[rt.Pattern()] {
			panic(fmt.Sprintf("server: route %s declared twice", rt.Pattern()))
		}
		seen[rt.Pattern()] = true
		mux.Handle(rt.Pattern(), s.guard(rt))
	}
	return s.observe(mux)
}

// guard authenticates and authorises the caller of rt, then runs its handler, mapping any error.
func (s *Server) guard(rt Route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p *auth.Principal
		if rt.Session {
			s.dash.SetHeaders(w)
		}
		if rt.Rule.NeedsPrincipal() {
			var err error
			p, err = s.authenticateRoute(rt, r)
			if err != nil {
				s.routeError(rt, w, r, err)
				return
			}
			switch {
			case p.Kind == auth.KindAgent && !rt.Agent:
				s.routeError(rt, w, r, notFound("no route %s %s", r.Method, r.URL.Path))
				return
			case rt.Agent && p.Kind != auth.KindAgent:
				s.routeError(rt, w, r, &auth.ForbiddenError{Principal: p.String(), Permission: auth.Permission{Verb: "call", Resource: "agent routes (cluster agents only)"}})
				return
			}
			if rt.Rule.Kind == auth.RulePermission {
				if err := s.opts.Roles.Authorize(p, rt.Rule.Permission); err != nil {
					s.routeError(rt, w, r, err)
					return
				}
			}
			setPrincipal(r, p)
		}
		if err := rt.handle(w, r, p); err != nil {
			s.routeError(rt, w, r, err)
		}
	})
}

// authenticate reads the bearer token of r.
func (s *Server) authenticate(r *http.Request) (*auth.Principal, error) {
	h := r.Header.Get("Authorization")
	token, ok := strings.CutPrefix(h, "Bearer ")
	if !ok && h != "" {
		return nil, fmt.Errorf("%w: the Authorization header must be \"Bearer <token>\"", auth.ErrUnauthenticated)
	}
	token = strings.TrimSpace(token)
	if strings.HasPrefix(token, auth.AgentTokenPrefix) {
		return s.authenticateAgent(r.Context(), token)
	}
	return s.authn.AuthenticateToken(r.Context(), token)
}

// authorizeEach checks verb on every resource for a RequireEach route, naming all that are denied.
func (s *Server) authorizeEach(p *auth.Principal, verb auth.Verb, resources []string) error {
	var denied []string
	seen := map[string]bool{}
	for _, res := range resources {
		if seen[res] {
			continue
		}
		seen[res] = true
		if !s.opts.Roles.Allowed(p, auth.Permission{Verb: verb, Resource: res}) {
			denied = append(denied, res)
		}
	}
	if len(denied) == 0 {
		return nil
	}
	return &auth.ForbiddenError{Principal: p.String(), Permission: auth.Permission{Verb: verb, Resource: strings.Join(denied, ", ")}}
}
