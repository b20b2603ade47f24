package dashboard

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"flotilla.dev/flotilla/internal/auth"
)

func TestPersonName(t *testing.T) {
	for raw, want := range map[string]string{
		`{"email":"a@example.com","email_verified":true}`:  "oidc:a@example.com",
		`{"email":"a@example.com"}`:                        "oidc:a@example.com", // many providers omit email_verified
		`{"email":"a@example.com","email_verified":false}`: "oidc:sub-1",         // anyone could claim it
		`{}`: "oidc:sub-1",
	} {
		var claims map[string]any
		if err := json.Unmarshal([]byte(raw), &claims); err != nil {
			t.Fatal(err)
		}
		if got := personName("sub-1", claims); got != want {
			t.Errorf("personName(%s) = %q, want %q", raw, got, want)
		}
	}
}

func TestClaimStrings(t *testing.T) {
	for raw, want := range map[string][]string{
		`{"g":"admins"}`:          {"admins"},
		`{"g":["a","b"]}`:         {"a", "b"},
		`{"g":["a",1,{"x":"y"}]}`: {"a"},
		`{"g":42}`:                nil,
		`{}`:                      nil,
	} {
		var claims map[string]any
		if err := json.Unmarshal([]byte(raw), &claims); err != nil {
			t.Fatal(err)
		}
		if got := claimStrings(claims["g"]); !slices.Equal(got, want) {
			t.Errorf("claimStrings(%s) = %q, want %q", raw, got, want)
		}
	}
}

func TestOIDCSessionCookie(t *testing.T) {
	now := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	d := newTest(t, now)
	req := func(v string) *http.Request {
		r := httptest.NewRequest("GET", "/ui/", nil)
		r.AddCookie(&http.Cookie{Name: sessionCookie, Value: v})
		return r
	}
	// A name holding the payload's separator must not shift the fields.
	value := d.encodeSession(session{User: "oidc:a|admin@example.com", Role: auth.RoleViewer, Expires: now.Add(time.Hour), Nonce: "n1"})
	p, err := d.Authenticate(req(value))
	if err != nil || p.Name != "oidc:a|admin@example.com" || p.Kind != auth.KindUser || !slices.Equal(p.Roles, []string{auth.RoleViewer}) {
		t.Fatalf("Authenticate = %+v, %v", p, err)
	}
	// The role is under the MAC: a cookie saying admin with viewer's MAC is no session.
	promoted := d.encodeSession(session{User: "oidc:a|admin@example.com", Role: auth.RoleAdmin, Expires: now.Add(time.Hour), Nonce: "n1"})
	mixed := strings.Split(promoted, ".")[0] + "." + strings.Split(value, ".")[1]
	if _, err := d.Authenticate(req(mixed)); err == nil {
		t.Error("a cookie whose role was changed was accepted")
	}
	if _, err := newTest(t, now.Add(2*time.Hour)).Authenticate(req(value)); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("expired OIDC session: %v", err)
	}
	// The pending sign-in cookie is signed under another purpose than sessions.
	pending := d.encodePending(pendingLogin{State: "s", Nonce: "n", Verifier: "v", Next: "/ui/", Expires: now.Add(time.Minute)})
	if _, err := d.readSession(req(pending)); err == nil {
		t.Error("a pending sign-in cookie was accepted as a session")
	}
}
