package dashboard

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"flotilla.dev/flotilla/internal/auth"
)

// sessionCookie names the session cookie.
const sessionCookie = "flotilla_session"

// maxFormBytes bounds the body of a dashboard form.
const maxFormBytes = 64 << 10

// session is what the signed cookie holds: who signed in, when the session ends, and a random
// nonce the CSRF token is derived from. A token session names the hash of the API token signed
// in with (Hash), looked up on every request so that revoking the token ends it. An OIDC
// session has no server-side record to look up, so the cookie itself carries the person's
// principal name (User) and the role mapped at sign-in (Role); the MAC keeps both honest.
type session struct {
	Hash    string
	User    string
	Role    string
	Expires time.Time
	Nonce   string
}

// oidcSessionTag starts the payload of an OIDC session; a token session's payload starts with a
// hex hash, which never equals it.
const oidcSessionTag = "oidc"

var errNoSession = fmt.Errorf("%w: not signed in to the dashboard", auth.ErrUnauthenticated)

func (d *Dashboard) mac(parts ...string) []byte {
	m := hmac.New(sha256.New, d.opts.SessionKey)
	for _, p := range parts {
		m.Write([]byte(p))
		m.Write([]byte{0})
	}
	return m.Sum(nil)
}

// encodeSession returns the cookie value of s: payload and MAC, both base64url.
func (d *Dashboard) encodeSession(s session) string {
	payload := s.Hash + "|" + strconv.FormatInt(s.Expires.Unix(), 10) + "|" + s.Nonce
	if s.User != "" {
		// The name comes from the identity provider and may hold any character, "|" included.
		payload = oidcSessionTag + "|" + base64.RawURLEncoding.EncodeToString([]byte(s.User)) + "|" + s.Role + "|" +
			strconv.FormatInt(s.Expires.Unix(), 10) + "|" + s.Nonce
	}
	return base64.RawURLEncoding.EncodeToString([]byte(payload)) + "." +
		base64.RawURLEncoding.EncodeToString(d.mac("session", payload))
}

// readSession verifies the session cookie of r.
func (d *Dashboard) readSession(r *http.Request) (*session, error) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil, errNoSession
	}
	p64, m64, ok := strings.Cut(c.Value, ".")
	if !ok {
		return nil, errNoSession
	}
	payload, err1 := base64.RawURLEncoding.DecodeString(p64)
	sum, err2 := base64.RawURLEncoding.DecodeString(m64)
	if err1 != nil || err2 != nil || !hmac.Equal(sum, d.mac("session", string(payload))) {
		return nil, fmt.Errorf("%w: the session cookie is not valid; sign in again", auth.ErrUnauthenticated)
	}
	parts := strings.Split(string(payload), "|")
	s := &session{}
	switch {
	case len(parts) == 3:
		s.Hash, s.Nonce = parts[0], parts[2]
		parts = parts[1:2]
	case len(parts) == 5 && parts[0] == oidcSessionTag:
		user, err := base64.RawURLEncoding.DecodeString(parts[1])
		if err != nil || len(user) == 0 || parts[2] == "" {
			return nil, errNoSession
		}
		s.User, s.Role, s.Nonce = string(user), parts[2], parts[4]
		parts = parts[3:4]
	default:
		return nil, errNoSession
	}
	exp, err := strconv.ParseInt(parts[0], 10, 64)
	if err != nil {
		return nil, errNoSession
	}
	s.Expires = time.Unix(exp, 0)
	if !d.opts.Now().Before(s.Expires) {
		return nil, fmt.Errorf("%w: the dashboard session expired; sign in again", auth.ErrUnauthenticated)
	}
	return s, nil
}

// csrfToken is the token forms of session s must send back.
func (d *Dashboard) csrfToken(s *session) string {
	return base64.RawURLEncoding.EncodeToString(d.mac("csrf", s.Nonce))
}

// Authenticate returns the principal of r's session. For a state-changing request it also
// checks the CSRF token (form field "csrf" or header X-CSRF-Token) and the Origin header; a
// mismatch is refused as forbidden.
func (d *Dashboard) Authenticate(r *http.Request) (*auth.Principal, error) {
	s, err := d.readSession(r)
	if err != nil {
		return nil, err
	}
	var p *auth.Principal
	if s.User != "" {
		// The role was mapped from the identity provider's claims at sign-in; it is authorised
		// by the same Roles as a token's.
		p = &auth.Principal{Name: s.User, Kind: auth.KindUser, Roles: []string{s.Role}}
	} else if p, err = d.opts.Backend.PrincipalByTokenHash(r.Context(), s.Hash); err != nil {
		return nil, err
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		if err := checkOrigin(r); err != nil {
			return nil, err
		}
		got := r.Header.Get("X-CSRF-Token")
		if got == "" {
			r.Body = http.MaxBytesReader(nil, r.Body, maxFormBytes)
			got = r.PostFormValue("csrf")
		}
		if got == "" || !hmac.Equal([]byte(got), []byte(d.csrfToken(s))) {
			return nil, fmt.Errorf("%w: the request's CSRF token is missing or does not belong to this session; reload the page and try again", auth.ErrForbidden)
		}
	}
	return p, nil
}

// checkOrigin refuses a request whose Origin header (sent by browsers on every POST) names
// another site than the one it was sent to.
func checkOrigin(r *http.Request) error {
	o := r.Header.Get("Origin")
	if o == "" {
		return nil
	}
	u, err := url.Parse(o)
	if err != nil || u.Host != r.Host {
		return fmt.Errorf("%w: the request comes from another site (Origin %q)", auth.ErrForbidden, o)
	}
	return nil
}

func (d *Dashboard) setSessionCookie(w http.ResponseWriter, r *http.Request, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: value, Path: "/", MaxAge: maxAge, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https"})
}

func (d *Dashboard) loginPage(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	d.renderLogin(w, r, http.StatusOK, "", r.URL.Query().Get("next"))
	return nil
}

type loginPage struct {
	Error string
	Next  string
	// SSO offers "Sign in with SSO" (OIDC is configured).
	SSO bool
}

func (d *Dashboard) renderLogin(w http.ResponseWriter, r *http.Request, code int, msg, next string) {
	if !safeNext(next) {
		next = "/ui/"
	}
	d.render(w, r, code, "login", nil, loginPage{Error: msg, Next: next, SSO: d.oidc != nil})
}

// safeNext accepts only a path of the dashboard itself as the place to go after signing in.
func safeNext(next string) bool {
	return strings.HasPrefix(next, "/ui/") && !strings.Contains(next, "//") && !strings.Contains(next, `\`) &&
		!strings.HasPrefix(next, "/ui/login") && !strings.HasPrefix(next, "/ui/events") &&
		!strings.HasPrefix(next, "/ui/oidc/")
}

// login signs a person in with an API token: the token is checked like an API call's, and the
// session cookie keeps only its hash.
func (d *Dashboard) login(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	if err := checkOrigin(r); err != nil {
		return err
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	token := strings.TrimSpace(r.PostFormValue("token"))
	next := r.PostFormValue("next")
	p, err := d.opts.Backend.AuthenticateToken(r.Context(), token)
	if err != nil {
		if errors.Is(err, auth.ErrUnauthenticated) {
			d.SetHeaders(w)
			d.renderLogin(w, r, http.StatusUnauthorized, "That token was not accepted: "+strings.TrimPrefix(err.Error(), "unauthenticated: "), next)
			return nil
		}
		return err
	}
	return d.startSession(w, r, p, session{Hash: auth.HashToken(token)}, next)
}

// startSession sets the session cookie of s (a token's or a person's) for the session's normal
// lifetime, with a fresh CSRF nonce, and shows the signed-in page that goes on to next.
func (d *Dashboard) startSession(w http.ResponseWriter, r *http.Request, p *auth.Principal, s session, next string) error {
	nonce, err := randomString(18)
	if err != nil {
		return err
	}
	s.Nonce, s.Expires = nonce, d.opts.Now().Add(d.opts.SessionTTL)
	d.setSessionCookie(w, r, d.encodeSession(s), int(d.opts.SessionTTL.Seconds()))
	if !safeNext(next) {
		next = "/ui/"
	}
	// A page rather than a redirect, so that the cookie is set by a plain answer: after an OIDC
	// callback a redirect would still count as cross-site, and the SameSite=Strict session
	// cookie would not be sent with it.
	d.render(w, r, http.StatusOK, "signedin", p, loginPage{Next: next})
	return nil
}

// randomString returns n random bytes, base64url-encoded.
func randomString(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func (d *Dashboard) logout(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	d.setSessionCookie(w, r, "", -1)
	d.SetHeaders(w)
	http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
	return nil
}
