package server_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/client"
	"flotilla.dev/flotilla/internal/auth"
	"flotilla.dev/flotilla/internal/dashboard"
	"flotilla.dev/flotilla/internal/oidctest"
	"flotilla.dev/flotilla/internal/server"
)

// newOIDCEnv is an env whose dashboard signs people in with a fresh test provider.
func newOIDCEnv(t *testing.T, tune ...func(*dashboard.OIDCOptions)) (*env, string) {
	t.Helper()
	var provider string
	e := newEnvAt(t, filepath.Join(t.TempDir(), "flotilla.db"), func(serverURL string, o *server.Options) {
		redirect := serverURL + "/ui/oidc/callback"
		provider = oidctest.Start(t, "127.0.0.1", redirect)
		m, err := auth.ParseRoleMap("platform-admins=admin,developers=deployer,readers=viewer", auth.DefaultRoles(nil))
		if err != nil {
			t.Fatal(err)
		}
		o.OIDC = &dashboard.OIDCOptions{Issuer: provider, ClientID: oidctest.ClientID, ClientSecret: oidctest.ClientSecret, RedirectURL: redirect, RoleMap: m,
			CLIClientID: oidctest.CLIClientID}
		for _, f := range tune {
			f(o.OIDC)
		}
	})
	return e, provider
}

// person is a browser with a cookie jar that follows redirects, across Flotilla and the provider.
type person struct {
	t *testing.T
	e *env
	c *http.Client
	// callback is the last redirect to Flotilla's callback, as the provider sent it; state the
	// state of the last authorization request sent to the provider.
	callback, state string
	// stopAtCallback makes the browser stop before following the provider's redirect back.
	stopAtCallback bool
}

func newPerson(t *testing.T, e *env) *person {
	jar, _ := cookiejar.New(nil)
	p := &person{t: t, e: e}
	p.c = &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
		if req.URL.Path == "/auth" {
			p.state = req.URL.Query().Get("state")
		}
		if req.URL.Path == "/ui/oidc/callback" {
			p.callback = req.URL.String()
			if p.stopAtCallback {
				return http.ErrUseLastResponse
			}
		}
		return nil
	}}
	return p
}

func (p *person) get(u string) (int, string) {
	p.t.Helper()
	resp, err := p.c.Get(u)
	if err != nil {
		p.t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func (p *person) post(u string, form url.Values) (int, string) {
	p.t.Helper()
	req, _ := http.NewRequest("POST", u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := p.c.Do(req)
	if err != nil {
		p.t.Fatalf("POST %s: %v", u, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// session returns the value of the dashboard session cookie the person's browser holds.
func (p *person) session() string {
	u, _ := url.Parse(p.e.ts.URL + "/ui/")
	for _, c := range p.c.Jar.Cookies(u) {
		if c.Name == "flotilla_session" {
			return c.Value
		}
	}
	return ""
}

var opLoginIDRE = regexp.MustCompile(`name="id" value="([^"]+)"`)

// signInWithSSO clicks "Sign in with SSO" on the sign-in page, fills in the provider's login form
// and returns the status and page the browser ends on.
func (p *person) signInWithSSO(provider, username string) (int, string) {
	p.t.Helper()
	code, page := p.get(p.e.ts.URL + "/ui/login?next=/ui/rollouts")
	if code != http.StatusOK || !strings.Contains(page, `href="/ui/oidc/login?next=%2fui%2frollouts"`) || !strings.Contains(page, "Sign in with SSO") {
		p.t.Fatalf("sign-in page: %d, want a \"Sign in with SSO\" link\n%s", code, page)
	}
	code, page = p.get(p.e.ts.URL + "/ui/oidc/login?next=/ui/rollouts")
	m := opLoginIDRE.FindStringSubmatch(page)
	if code != http.StatusOK || m == nil {
		p.t.Fatalf("the provider's login form: %d\n%s", code, page)
	}
	return p.post(provider+"/login/username", url.Values{"id": {m[1]}, "username": {username}, "password": {oidctest.Password}})
}

func TestOIDCSignInActsWithTheMappedRole(t *testing.T) {
	e, provider := newOIDCEnv(t)
	dashboardFixture(t, e)
	ctx := context.Background()

	alice := newPerson(t, e)
	code, page := alice.signInWithSSO(provider, oidctest.Alice)
	if code != http.StatusOK || !strings.Contains(page, "Signed in") || !strings.Contains(page, `url=/ui/rollouts`) {
		t.Fatalf("after the provider's login: %d, want the signed-in page going on to /ui/rollouts\n%s", code, page)
	}
	if alice.session() == "" {
		t.Fatal("no session cookie after signing in with SSO")
	}
	for _, secret := range []string{oidctest.ClientSecret, alice.callback} {
		if secret != "" && strings.Contains(page, secret) {
			t.Errorf("the signed-in page shows a secret or the code")
		}
	}
	code, page = alice.get(e.ts.URL + "/ui/")
	if code != http.StatusOK || !strings.Contains(page, "oidc:alice@example.com") || !strings.Contains(page, "prod-eu-1") {
		t.Fatalf("fleet page: %d, want it naming oidc:alice@example.com (highest of viewer and admin) and the fleet\n%s", code, page)
	}
	m := csrfRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token on the fleet page")
	}
	// A state change needs the CSRF token, exactly as for a token session.
	if code, _ := alice.post(e.ts.URL+"/ui/rollouts/web-1/pause", url.Values{}); code != http.StatusForbidden {
		t.Errorf("pause without the CSRF token: %d, want 403", code)
	}
	if code, page := alice.post(e.ts.URL+"/ui/rollouts/web-1/pause", url.Values{"csrf": {m[1]}}); code != http.StatusOK {
		t.Fatalf("pause as an admin by SSO: %d\n%s", code, page)
	}
	events, err := e.admin.Audit(ctx, client.AuditOptions{Kind: v1.KindRollout, Name: "web-1"})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, ev := range events.Items {
		found = found || ev.Actor == v1.Actor{Kind: string(auth.KindUser), Name: "oidc:alice@example.com"}
	}
	if !found {
		t.Errorf("no audit event of web-1 by user oidc:alice@example.com: %+v", events.Items)
	}

	// A replayed callback starts no session: the sign-in it belonged to is over.
	replay := newPerson(t, e)
	if code, page := replay.get(alice.callback); code != http.StatusBadRequest || !strings.Contains(page, "no sign-in is in progress") || replay.session() != "" {
		t.Errorf("replayed callback in another browser: %d, session %v\n%s", code, replay.session() != "", page)
	}
	if code, page := alice.get(alice.callback); code != http.StatusBadRequest || !strings.Contains(page, "no sign-in is in progress") {
		t.Errorf("replayed callback in the same browser: %d\n%s", code, page)
	}
}

func TestOIDCViewerIsForbiddenToAct(t *testing.T) {
	e, provider := newOIDCEnv(t)
	dashboardFixture(t, e)
	victor := newPerson(t, e)
	if code, page := victor.signInWithSSO(provider, oidctest.Victor); code != http.StatusOK || victor.session() == "" {
		t.Fatalf("viewer sign-in: %d\n%s", code, page)
	}
	code, page := victor.get(e.ts.URL + "/ui/rollouts/web-1")
	m := csrfRE.FindStringSubmatch(page)
	if code != http.StatusOK || m == nil || !strings.Contains(page, "oidc:victor@example.com") {
		t.Fatalf("rollout page as a viewer: %d\n%s", code, page)
	}
	if code, page := victor.post(e.ts.URL+"/ui/rollouts/web-1/pause", url.Values{"csrf": {m[1]}}); code != http.StatusForbidden || !strings.Contains(page, "user:oidc:victor@example.com may not update rollouts") {
		t.Errorf("pause as a viewer by SSO: %d, want 403 naming the person\n%s", code, page)
	}
}

func TestOIDCRefusals(t *testing.T) {
	e, provider := newOIDCEnv(t)
	// Both routes are in the route table, public: they are how a session starts.
	public := map[string]bool{}
	for _, rt := range e.srv.Routes() {
		public[rt.Method+" "+rt.Path] = !rt.Rule.NeedsPrincipal() && rt.Rule.Check() == nil
	}
	for _, r := range []string{"GET /ui/oidc/login", "GET /ui/oidc/callback"} {
		if !public[r] {
			t.Errorf("route %s: missing from the route table or not public", r)
		}
	}

	// Nobody maps "sales" to a role; nora has no email, so her subject names her.
	nora := newPerson(t, e)
	code, page := nora.signInWithSSO(provider, oidctest.Nora)
	if code != http.StatusForbidden || !strings.Contains(page, "oidc:id-nobody signed in, but no Flotilla role is mapped") || !strings.Contains(page, "sales") {
		t.Errorf("person without a mapped role: %d, want 403 saying why\n%s", code, page)
	}
	if nora.session() != "" {
		t.Error("a person without a mapped role got a session")
	}

	// A callback whose state is not the one this browser's sign-in made is refused.
	mallory := newPerson(t, e)
	mallory.stopAtCallback = true
	if code, _ := mallory.signInWithSSO(provider, oidctest.Alice); code != http.StatusFound || mallory.callback == "" {
		t.Fatalf("stopping at the callback: %d, callback %q", code, mallory.callback)
	}
	u, _ := url.Parse(mallory.callback)
	q := u.Query()
	q.Set("state", q.Get("state")+"x")
	u.RawQuery = q.Encode()
	mallory.stopAtCallback = false
	if code, page := mallory.get(u.String()); code != http.StatusBadRequest || !strings.Contains(page, "state mismatch") || mallory.session() != "" {
		t.Errorf("tampered state: %d, session %v\n%s", code, mallory.session() != "", page)
	}

	// The provider's refusal is shown, and starts no session.
	refused := newPerson(t, e)
	if code, _ := refused.get(e.ts.URL + "/ui/oidc/login"); code != http.StatusOK {
		t.Fatalf("start sign-in: %d", code)
	}
	if code, page := refused.get(e.ts.URL + "/ui/oidc/callback?error=access_denied&error_description=call+0800+now"); code != http.StatusBadRequest ||
		strings.Contains(page, "0800") {
		t.Errorf("provider error without the sign-in's state: %d, want 400 not showing its text\n%s", code, page)
	}
	if code, _ := refused.get(e.ts.URL + "/ui/oidc/login"); code != http.StatusOK || refused.state == "" {
		t.Fatalf("start sign-in again: %d, state %q", code, refused.state)
	}
	if code, page := refused.get(e.ts.URL + "/ui/oidc/callback?error=access_denied&error_description=no+thanks&state=" + url.QueryEscape(refused.state)); code != http.StatusUnauthorized ||
		!strings.Contains(page, "access_denied: no thanks") || refused.session() != "" {
		t.Errorf("provider error: %d\n%s", code, page)
	}

	// A made-up code is not accepted by the provider.
	forged := newPerson(t, e)
	forged.stopAtCallback = true
	forged.signInWithSSO(provider, oidctest.Alice)
	u, _ = url.Parse(forged.callback)
	q = u.Query()
	q.Set("code", "made-up")
	u.RawQuery = q.Encode()
	forged.stopAtCallback = false
	if code, page := forged.get(u.String()); code != http.StatusUnauthorized || !strings.Contains(page, "did not accept the sign-in code") || forged.session() != "" {
		t.Errorf("forged code: %d\n%s", code, page)
	}
}
