package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/internal/store"
)

// browser is a cookie-keeping HTTP client of the dashboard that does not follow redirects.
type browser struct {
	t      testing.TB
	e      *env
	cookie *http.Cookie
	csrf   string
}

func (b *browser) do(method, path string, form url.Values, hdr map[string]string) (int, http.Header, string) {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.e.ts.URL+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	if b.cookie != nil {
		req.AddCookie(b.cookie)
	}
	c := *b.e.ts.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(data)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// signIn signs in to the dashboard with the token of role and keeps the session and CSRF token.
func signIn(t testing.TB, e *env, role string) *browser {
	t.Helper()
	b := &browser{t: t, e: e}
	code, h, body := b.do("POST", "/ui/login", url.Values{"token": {e.secrets[role]}, "next": {"/ui/"}}, nil)
	if code != http.StatusOK {
		t.Fatalf("sign in as %s: %d\n%s", role, code, body)
	}
	if strings.Contains(body, e.secrets[role]) {
		t.Fatalf("the signed-in page contains the token")
	}
	resp := http.Response{Header: h}
	for _, c := range resp.Cookies() {
		if c.Name == "flotilla_session" {
			b.cookie = c
			if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode {
				t.Errorf("session cookie %+v: want HttpOnly and SameSite=Strict", c)
			}
			if strings.Contains(c.Value, e.secrets[role]) || strings.Contains(c.Value, strings.TrimPrefix(e.secrets[role], "flt_")) {
				t.Errorf("the session cookie carries the token")
			}
		}
	}
	if b.cookie == nil {
		t.Fatalf("sign in as %s set no session cookie", role)
	}
	_, _, page := b.do("GET", "/ui/", nil, nil)
	m := csrfRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token on the fleet page:\n%s", page)
	}
	b.csrf = m[1]
	return b
}

// dashboardFixture stores a cluster with an agent report, a service, a release and a started
// rollout waiting for approval by deployers, with hostile text in every free-text field.
func dashboardFixture(t *testing.T, e *env) {
	t.Helper()
	ctx := context.Background()
	var objs []v1.Object
	for _, o := range fleetList(t) {
		if o.GetTypeMeta().Kind != v1.KindRollout { // startedRollout makes its own
			objs = append(objs, o)
		}
	}
	if _, err := e.admin.Apply(ctx, objs); err != nil {
		t.Fatal(err)
	}
	hostile := `<script>alert("x")</script><a href="javascript:alert(1)">click</a>`
	if _, err := e.admin.Patch(ctx, v1.KindCluster, "prod-eu-1", mustJSON(t, map[string]any{"metadata": map[string]any{"annotations": map[string]string{"note": hostile}}})); err != nil {
		t.Fatal(err)
	}
	rel, err := e.store.Get(ctx, v1.KindRelease, "web-1")
	if err != nil {
		t.Fatal(err)
	}
	rel.Spec = json.RawMessage(`{"service":"web","commit":{"sha":"0123456789abcdef0123456789abcdef01234567","message":` + string(mustJSON(t, hostile)) + `,"author":"eve"},"serviceSpec":{"source":{"name":"shop"},"placement":{"clusterSelector":{}}}}`)
	if _, err := e.store.Update(ctx, rel, testActor); err != nil {
		t.Fatal(err)
	}
	report, _ := json.Marshal(v1.AgentStatusReport{Seq: 1, Health: v1.HealthDegraded, Services: []v1.ServiceReport{{Service: "web", Release: "web-1", Health: v1.HealthDegraded,
		Objects: []v1.ObjectReport{{Group: "apps", Kind: "Deployment", Namespace: "web", Name: "web", Health: v1.HealthDegraded, Drifted: true, Message: hostile}},
		Errors:  []v1.AgentError{{Object: "apps/Deployment/web/web", Message: hostile}}}}})
	if _, err := e.store.RecordAgentStatus(ctx, store.AgentStatus{Cluster: "prod-eu-1", Seq: 1, Epoch: 1, Health: v1.HealthDegraded, Report: report,
		Summary: json.RawMessage(`{"health":"Degraded","services":[{"service":"web","release":"web-1","health":"Degraded","drifted":1,"errors":1}]}`), LastHeartbeat: time.Now()}); err != nil {
		t.Fatal(err)
	}
	startedRollout(t, e, "web-1", []string{"deployer"})
}

func TestDashboardRoutesFollowTheRoles(t *testing.T) {
	e := newEnv(t)
	dashboardFixture(t, e)
	sessions := map[string]*browser{}
	for _, role := range []string{"admin", "deployer", "viewer"} {
		sessions[role] = signIn(t, e, role)
	}
	sessions[""] = &browser{t: t, e: e}
	n := 0
	for _, rt := range e.srv.Routes() {
		if !rt.Session {
			continue
		}
		path := strings.NewReplacer("{name}", "prod-eu-1", "{file}", "app.js", "{$}", "", "{path...}", "nope").Replace(rt.Path)
		switch {
		case strings.HasPrefix(rt.Path, "/ui/services/"):
			path = "/ui/services/web"
		case strings.HasPrefix(rt.Path, "/ui/rollouts/"):
			path = strings.Replace(rt.Path, "{name}", "web-1", 1)
		case rt.Path == "/ui/events":
			path += "?after=999999999"
		}
		// Deployers (the approval gate's role) go last, so the gate is still open for the others.
		for _, role := range []string{"viewer", "admin", "", "deployer"} {
			b := sessions[role]
			n++
			var form url.Values
			if rt.Method == "POST" {
				form = url.Values{"csrf": {b.csrf}}
				if rt.Path == "/ui/login" {
					form.Set("token", e.secrets["viewer"])
				}
			}
			code := eventStatus(t, b, rt.Method, path, form)
			// Approval is scoped by the gate's roles (deployer here), whatever else a role may do.
			allowed := role == "deployer" || role == "admin" && !strings.HasSuffix(rt.Path, "/approve") ||
				role == "viewer" && (rt.Method == "GET" || rt.Path == "/ui/logout")
			switch {
			case !rt.Rule.NeedsPrincipal():
				if code >= 400 {
					t.Errorf("%s (public) as %q: %d", rt.Pattern(), role, code)
				}
			case role == "":
				want := http.StatusUnauthorized
				if rt.Method == "GET" && rt.Path != "/ui/events" {
					want = http.StatusSeeOther // to the sign-in form
				}
				if code != want {
					t.Errorf("%s without a session: %d, want %d", rt.Pattern(), code, want)
				}
			case allowed:
				if code == http.StatusUnauthorized || code == http.StatusForbidden || code >= 500 {
					t.Errorf("%s as %s: %d, want it allowed", rt.Pattern(), role, code)
				}
			default:
				if code != http.StatusForbidden {
					t.Errorf("%s as %s: %d, want 403", rt.Pattern(), role, code)
				}
			}
		}
	}
	t.Logf("checked %d (route, session) pairs", n)
}

// eventStatus is b.do for every route, cutting event streams after their headers.
func eventStatus(t *testing.T, b *browser, method, path string, form url.Values) int {
	t.Helper()
	if strings.HasPrefix(path, "/ui/events") {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, method, b.e.ts.URL+path, nil)
		if b.cookie != nil {
			req.AddCookie(b.cookie)
		}
		resp, err := b.e.ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	code, _, _ := b.do(method, path, form, nil)
	return code
}

func TestDashboardRefusesForgedRequests(t *testing.T) {
	e := newEnv(t)
	dashboardFixture(t, e)
	admin, other := signIn(t, e, "admin"), signIn(t, e, "deployer")
	for name, c := range map[string]struct {
		form url.Values
		hdr  map[string]string
	}{
		"no CSRF token":           {url.Values{}, nil},
		"another session's token": {url.Values{"csrf": {other.csrf}}, nil},
		"a cross-site Origin":     {url.Values{"csrf": {admin.csrf}}, map[string]string{"Origin": "https://evil.example"}},
		"a made-up CSRF header":   {url.Values{}, map[string]string{"X-CSRF-Token": "x"}},
	} {
		if code, _, body := admin.do("POST", "/ui/rollouts/web-1/pause", c.form, c.hdr); code != http.StatusForbidden {
			t.Errorf("pause with %s: %d, want 403\n%s", name, code, body)
		}
	}
	ro, err := e.admin.Get(context.Background(), v1.KindRollout, "web-1")
	if err != nil {
		t.Fatal(err)
	}
	if ph := ro.(*v1.Rollout).Status.Phase; ph != v1.RolloutWaitingApproval {
		t.Errorf("a refused request changed the rollout: phase %s", ph)
	}
	// A tampered cookie is no session.
	forged := &browser{t: t, e: e, cookie: &http.Cookie{Name: "flotilla_session", Value: admin.cookie.Value[:len(admin.cookie.Value)-2] + "AA"}}
	if code, h, _ := forged.do("GET", "/ui/", nil, nil); code != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), "/ui/login?next=") {
		t.Errorf("tampered session cookie: %d to %q, want 303 to the sign-in form", code, h.Get("Location"))
	}
	// Revoking the token ends the session.
	toks, err := e.admin.Tokens(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range toks {
		if tok.Role == "deployer" {
			if err := e.admin.DeleteToken(context.Background(), tok.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	if code, _, _ := other.do("GET", "/ui/", nil, map[string]string{"X-Flotilla-Fragment": "main"}); code != http.StatusUnauthorized {
		t.Errorf("session of a revoked token: %d, want 401", code)
	}
}

func TestDashboardApproveButtonFollowsTheGateRoles(t *testing.T) {
	e := newEnv(t)
	dashboardFixture(t, e)
	viewer, deployer := signIn(t, e, "viewer"), signIn(t, e, "deployer")
	_, _, page := viewer.do("GET", "/ui/rollouts/web-1", nil, nil)
	if strings.Contains(page, `id="btn-`) {
		t.Errorf("a viewer sees action buttons:\n%s", page)
	}
	if code, _, _ := viewer.do("POST", "/ui/rollouts/web-1/approve", url.Values{"csrf": {viewer.csrf}}, nil); code != http.StatusForbidden {
		t.Errorf("viewer's approve: %d, want 403", code)
	}
	_, _, page = deployer.do("GET", "/ui/rollouts/web-1", nil, nil)
	for _, btn := range []string{"approve", "pause", "abort", "rollback"} {
		if !strings.Contains(page, `id="btn-`+btn+`"`) {
			t.Errorf("a deployer does not see the %s button", btn)
		}
	}
	code, h, body := deployer.do("POST", "/ui/rollouts/web-1/approve", url.Values{"csrf": {deployer.csrf}}, map[string]string{"Origin": e.ts.URL})
	if code != http.StatusSeeOther || h.Get("Location") != "/ui/rollouts/web-1" {
		t.Fatalf("deployer's approve: %d %s\n%s", code, h.Get("Location"), body)
	}
	ro, err := e.admin.Get(context.Background(), v1.KindRollout, "web-1")
	if err != nil {
		t.Fatal(err)
	}
	st := ro.(*v1.Rollout).Status
	if st.WaitingFor != nil || st.Phase == v1.RolloutWaitingApproval {
		t.Errorf("after approve: phase %s, waiting for %+v", st.Phase, st.WaitingFor)
	}
	approved := false
	for _, g := range st.Gates {
		approved = approved || g.Type == "approval" && g.Phase == v1.GatePassed && strings.Contains(g.ApprovedBy, "deployer-token")
	}
	if !approved {
		t.Errorf("no approval gate passed by the deployer: %+v", st.Gates)
	}
}

func TestDashboardShowsHostileTextAsText(t *testing.T) {
	e := newEnv(t)
	dashboardFixture(t, e)
	b := signIn(t, e, "viewer")
	for _, path := range []string{"/ui/", "/ui/clusters/prod-eu-1", "/ui/services/web", "/ui/rollouts/web-1", "/ui/audit", "/ui/kpis", "/ui/login", "/ui/nope"} {
		code, h, body := b.do("GET", path, nil, nil)
		if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
			t.Errorf("%s (%d): Content-Security-Policy %q", path, code, csp)
		}
		if strings.Contains(body, "<script>alert") || strings.Contains(body, `href="javascript:`) {
			t.Errorf("%s shows hostile text as markup", path)
		}
		if strings.Contains(body, "<script>") {
			t.Errorf("%s has an inline script", path)
		}
	}
	_, _, body := b.do("GET", "/ui/clusters/prod-eu-1", nil, nil)
	if !strings.Contains(body, "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;") {
		t.Errorf("the hostile annotation is not shown as text:\n%s", body)
	}
	_, _, body = b.do("GET", "/ui/services/web", nil, nil)
	if !strings.Contains(body, "&lt;script&gt;") || !strings.Contains(body, "1: prod-eu-1") {
		t.Errorf("the service page does not show the commit message as text, or where web-1 runs:\n%s", body)
	}
}

func TestKPIsFromTheRolloutHistory(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	commit := now.Add(-3 * time.Hour)
	rel := `{"service":"web","commit":{"sha":"0123456789abcdef0123456789abcdef01234567","time":"` + commit.Format(time.RFC3339) + `"},"serviceSpec":{"source":{"name":"shop"},"placement":{"clusterSelector":{}}}}`
	if _, err := e.store.Create(ctx, &store.Object{Kind: v1.KindRelease, Name: "web-9", Spec: json.RawMessage(rel)}, testActor); err != nil {
		t.Fatal(err)
	}
	for name, st := range map[string]v1.RolloutStatus{
		"web-9": {Phase: v1.RolloutSucceeded, FinishedAt: ptr(now.Add(-time.Hour))},
		"web-8": {Phase: v1.RolloutRolledBack, FinishedAt: ptr(now.Add(-2 * time.Hour)), FailedAt: ptr(now.Add(-150 * time.Minute)), RestoredAt: ptr(now.Add(-2 * time.Hour))},
	} {
		o, err := e.store.Create(ctx, &store.Object{Kind: v1.KindRollout, Name: name, Spec: json.RawMessage(`{"service":"web","release":"` + name + `"}`)}, testActor)
		if err != nil {
			t.Fatal(err)
		}
		o.Status = mustJSON(t, st)
		if _, err := e.store.UpdateStatus(ctx, o, testActor); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.Get(e.ts.URL + "/api/v1/kpis?period=1d")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("KPIs without a token: %d, want 401", resp.StatusCode)
	}
	req, _ := http.NewRequest("GET", e.ts.URL+"/api/v1/kpis?period=1d&service=web", nil)
	req.Header.Set("Authorization", "Bearer "+e.secrets["viewer"])
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var rep v1.KPIReport
	err = json.NewDecoder(resp.Body).Decode(&rep)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /api/v1/kpis: %d %v", resp.StatusCode, err)
	}
	k := rep.Fleet
	if k.Deployments != 1 || k.Finished != 2 || k.Failures != 1 || k.LeadTimeSeconds == nil || *k.LeadTimeSeconds != 7200 ||
		k.ChangeFailureRate == nil || *k.ChangeFailureRate != 0.5 || k.TimeToRestoreSeconds == nil || *k.TimeToRestoreSeconds != 1800 {
		t.Errorf("KPIs: %+v", k)
	}
	req, _ = http.NewRequest("GET", e.ts.URL+"/api/v1/kpis?period=soon", nil)
	req.Header.Set("Authorization", "Bearer "+e.secrets["viewer"])
	if resp, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("period=soon: %d, want 400", resp.StatusCode)
	}
	resp, err = http.Get(e.ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`flotilla_kpi_deployments{period="1d",service="web"} 1`, `flotilla_kpi_change_failure_rate{period="7d",service=""} 0.5`,
		`flotilla_kpi_lead_time_seconds{period="30d",service="web"} 7200`, `flotilla_kpi_time_to_restore_seconds{period="1d",service=""} 1800`} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func ptr[T any](v T) *T { return &v }

// TestDashboardAuditFindsOldEvents checks that the audit page shows the newest matches even when
// they are far behind the head of the log.
func TestDashboardAuditFindsOldEvents(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	var svcs, clusters []*store.Object
	for i := range 30 {
		svcs = append(svcs, &store.Object{Kind: v1.KindService, Name: fmt.Sprintf("svc-%02d", i), Spec: json.RawMessage(`{}`)})
	}
	for i := range 3000 {
		clusters = append(clusters, &store.Object{Kind: v1.KindCluster, Name: fmt.Sprintf("c-%04d", i), Spec: json.RawMessage(`{}`)})
	}
	for _, objs := range [][]*store.Object{svcs, clusters} {
		if _, err := e.store.Apply(ctx, objs, testActor); err != nil {
			t.Fatal(err)
		}
	}
	b := signIn(t, e, "viewer")
	_, _, body := b.do("GET", "/ui/audit?kind=Service&since=all", nil, nil)
	if n := strings.Count(body, "<td>Service</td>"); n != 30 {
		t.Errorf("audit of services behind 3,000 cluster events: %d rows, want 30", n)
	}
	if !strings.Contains(body, "svc-29") || !strings.Contains(body, "svc-00") {
		t.Errorf("audit page lacks the first or last service")
	}
	_, _, body = b.do("GET", "/ui/audit?kind=Cluster&since=all", nil, nil)
	if n := strings.Count(body, "<td>Cluster</td>"); n != 500 || !strings.Contains(body, "c-2999") || !strings.Contains(body, "Only the newest 500") {
		t.Errorf("audit of 3,000 clusters: %d rows; want the newest 500 and a note", n)
	}
}
