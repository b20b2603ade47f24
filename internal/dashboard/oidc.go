package dashboard

import (
	"context"
	"crypto/hmac"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"flotilla.dev/flotilla/internal/auth"
)

// OIDCOptions configure single sign-on with an OpenID Connect provider (authorization code flow
// with PKCE). People who sign in this way get a dashboard session with the role RoleMap gives
// their RolesClaim; the API takes bearer tokens, which the CLI gets for an ID token (IdentifyCLI).
type OIDCOptions struct {
	// Issuer is the provider's issuer URL; its discovery document is read at the first sign-in.
	Issuer string
	// ClientID and ClientSecret identify Flotilla to the provider; the secret is empty for a
	// public client, which PKCE protects.
	ClientID, ClientSecret string
	// RedirectURL is the server's external URL followed by /ui/oidc/callback, exactly as
	// registered with the provider.
	RedirectURL string
	// RolesClaim names the ID token claim (a string or a list of strings) RoleMap reads; default
	// "groups".
	RolesClaim string
	// RoleMap gives each person a role from their RolesClaim values; a person it gives none is
	// refused.
	RoleMap auth.RoleMap
	// CLIClientID is the client `flotilla login --sso` runs the device flow as, and so the
	// audience its ID tokens must have; default ClientID. A provider that wants a secret for
	// ClientID needs a separate public client here, since the CLI is given no secret.
	CLIClientID string
}

// Paths of the OIDC routes.
const (
	oidcLoginPath    = "/ui/oidc/login"
	oidcCallbackPath = "/ui/oidc/callback"
)

// oidcPendingCookie holds a sign-in in progress: state, nonce and PKCE verifier, signed. It is
// SameSite=Lax because the provider's redirect back is a cross-site navigation, which would not
// carry a Strict cookie; it is scoped to /ui/oidc/ and lives 10 minutes.
const (
	oidcPendingCookie = "flotilla_oidc"
	oidcPendingTTL    = 10 * time.Minute
)

// oidcClient talks to the provider. Discovery happens at the first sign-in and is retried until
// it succeeds, so that a provider down when the server starts does not stop the server.
type oidcClient struct {
	opts OIDCOptions

	mu       sync.Mutex
	config   *oauth2.Config
	verifier *oidc.IDTokenVerifier
	// cliVerifier checks the ID tokens of the CLI's client; deviceURL is the provider's device
	// authorization endpoint, "" when it has none.
	cliVerifier *oidc.IDTokenVerifier
	deviceURL   string
}

func newOIDCClient(opts OIDCOptions) (*oidcClient, error) {
	if opts.Issuer == "" || opts.ClientID == "" || opts.RedirectURL == "" {
		return nil, errors.New("oidc: issuer, client ID and redirect URL are required")
	}
	if opts.RolesClaim == "" {
		opts.RolesClaim = "groups"
	}
	if opts.CLIClientID == "" {
		opts.CLIClientID = opts.ClientID
	}
	return &oidcClient{opts: opts}, nil
}

// discover returns the OAuth2 configuration and ID token verifier of the provider.
func (c *oidcClient) discover(ctx context.Context) (*oauth2.Config, *oidc.IDTokenVerifier, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.config != nil {
		return c.config, c.verifier, nil
	}
	// The provider keeps using this context's values (not its cancellation) to fetch keys later.
	p, err := oidc.NewProvider(ctx, c.opts.Issuer)
	if err != nil {
		return nil, nil, fmt.Errorf("oidc provider %s: %w", c.opts.Issuer, err)
	}
	c.config = &oauth2.Config{ClientID: c.opts.ClientID, ClientSecret: c.opts.ClientSecret, RedirectURL: c.opts.RedirectURL,
		Endpoint: p.Endpoint(), Scopes: []string{oidc.ScopeOpenID, "profile", "email"}}
	// Verify checks signature, issuer, audience (our client ID) and expiry; the nonce is ours.
	c.verifier = p.Verifier(&oidc.Config{ClientID: c.opts.ClientID})
	c.cliVerifier = p.Verifier(&oidc.Config{ClientID: c.opts.CLIClientID})
	c.deviceURL = p.Endpoint().DeviceAuthURL
	return c.config, c.verifier, nil
}

// pendingLogin is a sign-in in progress, kept in oidcPendingCookie.
type pendingLogin struct {
	State, Nonce, Verifier, Next string
	Expires                      time.Time
}

func (d *Dashboard) encodePending(p pendingLogin) string {
	payload := p.State + "|" + p.Nonce + "|" + p.Verifier + "|" + base64.RawURLEncoding.EncodeToString([]byte(p.Next)) + "|" +
		strconv.FormatInt(p.Expires.Unix(), 10)
	return base64.RawURLEncoding.EncodeToString([]byte(payload)) + "." + base64.RawURLEncoding.EncodeToString(d.mac("oidc-pending", payload))
}

func (d *Dashboard) readPending(r *http.Request) (*pendingLogin, bool) {
	c, err := r.Cookie(oidcPendingCookie)
	if err != nil {
		return nil, false
	}
	p64, m64, _ := strings.Cut(c.Value, ".")
	payload, err1 := base64.RawURLEncoding.DecodeString(p64)
	sum, err2 := base64.RawURLEncoding.DecodeString(m64)
	if err1 != nil || err2 != nil || !hmac.Equal(sum, d.mac("oidc-pending", string(payload))) {
		return nil, false
	}
	parts := strings.Split(string(payload), "|")
	if len(parts) != 5 {
		return nil, false
	}
	next, err1 := base64.RawURLEncoding.DecodeString(parts[3])
	exp, err2 := strconv.ParseInt(parts[4], 10, 64)
	if err1 != nil || err2 != nil || !d.opts.Now().Before(time.Unix(exp, 0)) {
		return nil, false
	}
	return &pendingLogin{State: parts[0], Nonce: parts[1], Verifier: parts[2], Next: string(next), Expires: time.Unix(exp, 0)}, true
}

func (d *Dashboard) setPendingCookie(w http.ResponseWriter, r *http.Request, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: oidcPendingCookie, Value: value, Path: "/ui/oidc/", MaxAge: maxAge, HttpOnly: true,
		SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https"})
}

// oidcError shows why a sign-in failed, with a way back to the sign-in page. It creates no
// session; msg never holds a code, token or secret.
func (d *Dashboard) oidcError(w http.ResponseWriter, r *http.Request, code int, msg string) error {
	d.render(w, r, code, "error", nil, errorPage{Code: code, Status: http.StatusText(code), Message: "Single sign-on failed: " + msg,
		Back: "/ui/login", BackText: "Back to sign-in"})
	return nil
}

// oidcLogin starts a sign-in: it keeps a fresh state, nonce and PKCE verifier in the pending
// cookie and sends the browser to the provider.
func (d *Dashboard) oidcLogin(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	cfg, _, err := d.oidc.discover(r.Context())
	if err != nil {
		return d.oidcError(w, r, http.StatusBadGateway, "the identity provider cannot be reached ("+err.Error()+"); try again later")
	}
	p := pendingLogin{Verifier: oauth2.GenerateVerifier(), Next: r.URL.Query().Get("next"), Expires: d.opts.Now().Add(oidcPendingTTL)}
	if p.State, err = randomString(24); err != nil {
		return err
	}
	if p.Nonce, err = randomString(24); err != nil {
		return err
	}
	d.setPendingCookie(w, r, d.encodePending(p), int(oidcPendingTTL.Seconds()))
	d.SetHeaders(w)
	http.Redirect(w, r, cfg.AuthCodeURL(p.State, oidc.Nonce(p.Nonce), oauth2.S256ChallengeOption(p.Verifier)), http.StatusFound)
	return nil
}

// oidcCallback finishes a sign-in: it checks the state, exchanges the code with the PKCE
// verifier, verifies the ID token and its nonce, maps the roles claim to a role, and starts a
// session. The pending cookie is cleared first, so a callback can be used once.
func (d *Dashboard) oidcCallback(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	pending, ok := d.readPending(r)
	d.setPendingCookie(w, r, "", -1)
	q := r.URL.Query()
	if !ok {
		return d.oidcError(w, r, http.StatusBadRequest, "no sign-in is in progress in this browser, or it took over 10 minutes; start again.")
	}
	// The state is checked before a provider's error is shown too, so that a crafted link cannot
	// put its own words on a Flotilla page.
	if state := q.Get("state"); state == "" || !hmac.Equal([]byte(state), []byte(pending.State)) {
		return d.oidcError(w, r, http.StatusBadRequest, "the answer does not belong to the sign-in this browser started (state mismatch); start again.")
	}
	if e := q.Get("error"); e != "" {
		msg := "the identity provider answered " + e
		if desc := q.Get("error_description"); desc != "" {
			msg += ": " + desc
		}
		return d.oidcError(w, r, http.StatusUnauthorized, msg+".")
	}
	cfg, verifier, err := d.oidc.discover(r.Context())
	if err != nil {
		return d.oidcError(w, r, http.StatusBadGateway, "the identity provider cannot be reached ("+err.Error()+"); try again later.")
	}
	tok, err := cfg.Exchange(r.Context(), q.Get("code"), oauth2.VerifierOption(pending.Verifier))
	if err != nil {
		msg := "the identity provider did not accept the sign-in code"
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.ErrorCode != "" {
			msg += " (" + re.ErrorCode + ")"
		}
		return d.oidcError(w, r, http.StatusUnauthorized, msg+"; start again.")
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return d.oidcError(w, r, http.StatusUnauthorized, "the identity provider sent no ID token.")
	}
	id, err := d.oidc.identify(r.Context(), verifier, raw)
	if err != nil {
		return d.oidcError(w, r, http.StatusUnauthorized, err.Error()+".")
	}
	if !hmac.Equal([]byte(id.Nonce), []byte(pending.Nonce)) {
		return d.oidcError(w, r, http.StatusUnauthorized, "the ID token was not issued for this sign-in (nonce mismatch); start again.")
	}
	if id.Role == "" {
		return d.oidcError(w, r, http.StatusForbidden, d.oidc.refusal(id))
	}
	name, role := id.Name, id.Role
	p := &auth.Principal{Name: name, Kind: auth.KindUser, Roles: []string{role}}
	return d.startSession(w, r, p, session{User: p.Name, Role: role}, pending.Next)
}

// identity is the person an ID token names, as verify read it.
type identity struct {
	// Name is the principal name ("oidc:<email or sub>"); Nonce the token's nonce claim.
	Name, Nonce string
	// Values are the values of the roles claim; Role is the role RoleMap gives them, "" for none.
	Values []string
	Role   string
}

// identify verifies a raw ID token (signature, issuer, audience and expiry, by verifier) and
// maps its claims to a principal name and role. It is the one place that turns an ID token into
// a person, for the dashboard's callback and the CLI's token exchange alike; a person without a
// role is not an error here, so that each caller can check its own things (the nonce) first.
func (c *oidcClient) identify(ctx context.Context, verifier *oidc.IDTokenVerifier, raw string) (*identity, error) {
	idt, err := verifier.Verify(ctx, raw)
	if err != nil {
		return nil, fmt.Errorf("the ID token is not valid: %w", err)
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return nil, errors.New("the ID token's claims cannot be read")
	}
	id := &identity{Name: personName(idt.Subject, claims), Nonce: idt.Nonce, Values: claimStrings(claims[c.opts.RolesClaim])}
	id.Role, _ = c.opts.RoleMap.Resolve(id.Values)
	return id, nil
}

// refusal says why a person who proved who they are gets no role.
func (c *oidcClient) refusal(id *identity) string {
	return fmt.Sprintf("%s signed in, but no Flotilla role is mapped to any value of the %q claim (%s). Ask an administrator to map one with --oidc-role-map.",
		id.Name, c.opts.RolesClaim, describeValues(id.Values))
}

// personName is the principal name of a person: "oidc:" and their email, or their subject when
// the provider sends no email or says it is unverified (anyone could claim an unverified one).
func personName(sub string, claims map[string]any) string {
	email, _ := claims["email"].(string)
	if verified, ok := claims["email_verified"].(bool); email == "" || ok && !verified {
		return "oidc:" + sub
	}
	return "oidc:" + email
}

// claimStrings reads a claim that is a string or a list of strings (providers send either).
func claimStrings(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// describeValues lists claim values for the refusal page, bounded.
func describeValues(vs []string) string {
	switch {
	case len(vs) == 0:
		return "the claim is missing or empty"
	case len(vs) > 10:
		return strings.Join(vs[:10], ", ") + fmt.Sprintf(" and %d more", len(vs)-10)
	}
	return strings.Join(vs, ", ")
}
