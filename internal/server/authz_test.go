package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/client"
	"flotilla.dev/flotilla/internal/auth"
	"flotilla.dev/flotilla/internal/server"
)

// allowedByPolicy is the access policy written out by hand, independently of the route table and
// the role definitions, so that the matrix test checks them against what was intended:
//   - health, readiness, metrics and the OpenAPI document are public;
//   - admin may do everything;
//   - tokens are admin only, and so is writing an object's status (agents will get a role for it);
//   - viewer and deployer may read everything else (GET, including audit, watch and whoami);
//   - only deployer (and admin) may change objects, assignments and bundles;
//   - bootstrap tokens and agent revocation are admin only;
//   - agent routes serve cluster agents only: every person, admin included, gets 403.
func allowedByPolicy(role string, rt server.Route) bool {
	switch {
	case isPublic(rt):
		return true
	case rt.Agent:
		return false
	case role == "admin":
		return true
	case strings.HasPrefix(rt.Path, "/api/v1/tokens"), strings.HasSuffix(rt.Path, "/status"),
		strings.HasSuffix(rt.Path, "/bootstrap-tokens"), strings.HasSuffix(rt.Path, "/revoke"):
		return false
	case rt.Method == http.MethodGet:
		return true
	default:
		return role == "deployer"
	}
}

// isPublic lists the routes open without a credential.
func isPublic(rt server.Route) bool {
	switch rt.Pattern() {
	case "GET /healthz", "GET /readyz", "GET /metrics", "GET /api/v1/openapi.json", "POST /api/v1/agent/register":
		return true
	}
	return isSSORoute(rt)
}

// isSSORoute lists the public routes of `flotilla login --sso`, which answer 404 while single
// sign-on is off, as it is here (TestOIDCTokenExchange covers them on).
func isSSORoute(rt server.Route) bool {
	return rt.Pattern() == "GET /api/v1/auth/oidc" || rt.Pattern() == "POST /api/v1/auth/oidc/token"
}

// TestAuthorizationMatrix sends every route as every role, without a token and with a bad one, and
// checks each answer against the written policy: 403 exactly where the policy denies, 401 exactly
// where a credential is needed but missing or bad, and a successful answer everywhere else.
func TestAuthorizationMatrix(t *testing.T) { onEveryBackend(t, testAuthorizationMatrix) }

func testAuthorizationMatrix(t *testing.T, newEnv envMaker) {
	e := newEnv(t)
	ctx := context.Background()
	objs := fleet(t)
	ensure := func() {
		t.Helper()
		if _, err := e.admin.Apply(ctx, fleetList(t)); err != nil {
			t.Fatalf("restore the fleet: %v", err)
		}
	}
	routes := e.srv.Routes()
	if len(routes) < 11+7*len(v1.Kinds()) {
		t.Fatalf("only %d routes", len(routes))
	}
	n := 0
	for _, rt := range routes {
		if rt.Session {
			continue // dashboard routes use sessions: TestDashboardRoutesFollowTheRoles
		}
		for _, role := range []string{"admin", "deployer", "viewer", "", "bad"} {
			ensure()
			method, path, ct, body := requestFor(t, e, rt, role, objs)
			token := e.secrets[role]
			if role == "bad" {
				token = "flt_" + strings.Repeat("z", 43)
			}
			code := e.status(method, path, token, ct, body)
			n++
			switch {
			case isSSORoute(rt):
				if code != http.StatusNotFound {
					t.Errorf("%s as %q without single sign-on: %d, want 404", rt.Pattern(), role, code)
				}
			case isPublic(rt):
				if code < 200 || code > 299 {
					t.Errorf("%s as %q: %d, want 2xx (public)", rt.Pattern(), role, code)
				}
			case role == "" || role == "bad":
				if code != http.StatusUnauthorized {
					t.Errorf("%s with %s token: %d, want 401", rt.Pattern(), map[string]string{"": "no", "bad": "a bad"}[role], code)
				}
			case allowedByPolicy(role, rt):
				if code < 200 || code > 299 {
					t.Errorf("%s as %s: %d, want 2xx (allowed)", rt.Pattern(), role, code)
				}
			default:
				if code != http.StatusForbidden {
					t.Errorf("%s as %s: %d, want 403", rt.Pattern(), role, code)
				}
			}
		}
	}
	t.Logf("checked %d (route, caller) pairs over %d routes", n, len(routes))
}

// requestFor builds a request that succeeds on rt for a caller allowed to make it.
func requestFor(t *testing.T, e *env, rt server.Route, role string, objs map[string]v1.Object) (method, path, ct string, body []byte) {
	t.Helper()
	ctx := context.Background()
	method, path = rt.Method, rt.Path
	suffix := role
	if suffix == "" {
		suffix = "anon"
	}
	if isRolloutControl(rt) {
		path, body = rolloutRequestFor(t, e, rt, suffix, objs)
		return method, path, ct, body
	}
	if rt.Kind != "" {
		obj := objs[rt.Kind]
		name := obj.GetMetadata().Name
		path = strings.Replace(path, "{name}", name, 1)
		switch {
		case rt.Method == http.MethodPost:
			fresh := fleet(t)[rt.Kind]
			fresh.GetMetadata().Name = name + "-" + suffix
			body = mustJSON(t, fresh)
		case rt.Method == http.MethodPut:
			cur, err := e.admin.Get(ctx, rt.Kind, name)
			if err != nil {
				t.Fatal(err)
			}
			body = mustJSON(t, cur)
		case rt.Method == http.MethodPatch:
			ct, body = "application/merge-patch+json", []byte(`{"metadata":{"labels":{"patched-by":"`+suffix+`"}}}`)
		}
		return method, path, ct, body
	}
	switch rt.Pattern() {
	case "POST /api/v1/apply":
		var req v1.ApplyRequest
		for _, o := range fleetList(t) {
			req.Items = append(req.Items, mustJSON(t, o))
		}
		body = mustJSON(t, req)
	case "POST /api/v1/tokens":
		body = mustJSON(t, v1.TokenRequest{Name: "matrix-" + suffix, Role: "viewer"})
	case "DELETE /api/v1/tokens/{id}":
		tok, err := e.admin.CreateToken(ctx, v1.TokenRequest{Name: "doomed-" + suffix, Role: "viewer"})
		if err != nil {
			t.Fatal(err)
		}
		path = strings.Replace(path, "{id}", tok.ID, 1)
	case "GET /api/v1/watch":
		path += "?after=999999"
	default:
		path, body = agentRequestFor(t, e, rt, objs[v1.KindCluster].GetMetadata().Name)
	}
	if strings.Contains(path, "{") {
		t.Fatalf("route %s: the matrix test does not know how to fill its path", rt.Pattern())
	}
	return method, path, ct, body
}

// status sends a request and returns only the status code; streams are cut after the headers.
func (e *env) status(method, path, token, ct string, body []byte) int {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, e.ts.URL+path, bytesOrNil(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestCustomRoleIsCheckedPerKind gives a token a role beyond the built-in ones, allowed to watch
// and apply services only, and checks that multi-kind routes check every kind the request names.
func TestCustomRoleIsCheckedPerKind(t *testing.T) {
	var plurals []string
	for _, k := range v1.Kinds() {
		plurals = append(plurals, k.Plural)
	}
	roles := auth.DefaultRoles(plurals)
	roles["service-owner"] = auth.Role{Name: "service-owner", Permissions: []auth.Permission{
		{Verb: auth.VerbWatch, Resource: "services"}, {Verb: auth.VerbApply, Resource: "services"}, {Verb: auth.VerbGet, Resource: "services"},
	}}
	e := newEnv(t, func(o *server.Options) { o.Roles = roles })
	ctx := context.Background()
	tok, err := e.admin.CreateToken(ctx, v1.TokenRequest{Name: "owner", Role: "service-owner"})
	if err != nil {
		t.Fatalf("create a token with a custom role: %v", err)
	}
	owner := e.client(tok.Secret)
	objs := fleet(t)
	if _, err := owner.Apply(ctx, []v1.Object{objs[v1.KindService]}); err != nil {
		t.Errorf("apply of a service: %v", err)
	}
	_, err = owner.Apply(ctx, []v1.Object{objs[v1.KindService], objs[v1.KindCluster], objs[v1.KindSource]})
	st := wantStatus(t, err, 403, v1.ReasonForbidden)
	if !strings.Contains(st.Message, "clusters, sources") {
		t.Errorf("403 message %q should list every kind denied", st.Message)
	}
	if code := e.status("GET", "/api/v1/watch?kinds=services&after=999999", tok.Secret, "", nil); code != 200 {
		t.Errorf("watch of services: %d, want 200", code)
	}
	if code := e.status("GET", "/api/v1/watch?after=999999", tok.Secret, "", nil); code != 403 {
		t.Errorf("watch of every kind: %d, want 403", code)
	}
	if _, err := owner.List(ctx, "services", client.ListOptions{}); !client.IsForbidden(err) {
		t.Errorf("list of services without the list permission = %v, want 403", err)
	}
}
