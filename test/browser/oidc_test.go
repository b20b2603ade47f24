package browser_test

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"flotilla.dev/flotilla/internal/oidctest"
	"flotilla.dev/flotilla/internal/testproc"
)

// TestSignInWithSSOInChromium clicks "Sign in with SSO", fills in the provider's login form and
// lands, signed in as the person, on the page asked for. The provider is named localhost and
// Flotilla 127.0.0.1, so the redirects between them are cross-site as in production: this is
// what shows the pending sign-in cookie reaches the callback and the session cookie the next
// page.
func TestSignInWithSSOInChromium(t *testing.T) {
	chromium(t)
	// The redirect URL names the server's port, so the port is chosen before the server starts.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	redirect := "http://" + addr + "/ui/oidc/callback"
	issuer := oidctest.Start(t, "localhost", redirect)
	secret := filepath.Join(t.TempDir(), "oidc-secret")
	if err := os.WriteFile(secret, []byte(oidctest.ClientSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ts := testproc.StartServer(t, testproc.Build(t, "flotilla.dev/flotilla/cmd/flotilla"), "--listen", addr,
		"--oidc-issuer", issuer, "--oidc-client-id", oidctest.ClientID, "--oidc-client-secret-file", secret,
		"--oidc-redirect-url", redirect, "--oidc-role-map", "platform-admins=admin,readers=viewer")
	b := newBrowser(t, ts.URL)

	b.open("/ui/rollouts")
	b.do("sign in with SSO", chromedp.WaitVisible(chromedp.ID("sso")), chromedp.Click(chromedp.ID("sso")), chromedp.WaitVisible(chromedp.ID("username")))
	b.do("the provider's login form", chromedp.SendKeys(chromedp.ID("username"), oidctest.Alice), chromedp.SendKeys(chromedp.ID("password"), oidctest.Password),
		chromedp.Click(chromedp.CSS(`button[type="submit"]`)))
	// The callback answers with a page that moves on to the page asked for: wait for that one.
	b.waitFor("signed in as the person, on the page asked for", `location.pathname === '/ui/rollouts' && !!document.getElementById('user') && document.getElementById('user').textContent === 'oidc:alice@example.com'`, 20*time.Second)
	if got := eval[string](b, `location.href`); got != ts.URL+"/ui/rollouts" {
		t.Errorf("after signing in: at %s, want the page asked for (%s/ui/rollouts)", got, ts.URL)
	}
	if got := eval[string](b, `document.querySelector('.role') ? document.querySelector('.role').textContent : ''`); got != "admin" {
		t.Errorf("role shown: %q, want admin (the highest of viewer and admin)", got)
	}
	if c := eval[string](b, `document.cookie`); strings.Contains(c, "flotilla_") {
		t.Errorf("a session cookie is readable by scripts: %q", c)
	}
	b.signOut()
}
