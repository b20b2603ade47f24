// Package oidctest runs an OpenID Connect provider in-process for tests: zitadel's example OP
// over its in-memory storage, with Flotilla registered as a web client (and the CLI as a public
// client allowed the device authorization grant, RFC 8628) and three people whose
// ID tokens carry an email and a "groups" claim. Tests drive it through its real login form, so
// the whole authorization code flow (PKCE, nonce, signed ID tokens) is the provider's own.
package oidctest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// The client Flotilla is registered as, the public client `flotilla login --sso` runs the device
// flow as, and every person's password.
const (
	ClientID     = "flotilla"
	CLIClientID  = "flotilla-cli"
	ClientSecret = "client-secret-for-tests"
	Password     = "verysecure"
)

// People of the provider, by username: alice is in readers and platform-admins, victor in
// readers, nora (who has no email, so her subject names her) in sales.
const (
	Alice  = "alice"
	Victor = "victor"
	Nora   = "nora"
)

// person is a user of the example storage plus the groups its ID tokens carry.
type person struct {
	storage.User
	groups []string
}

// people is the provider's user store (storage.UserStore), by user ID.
type people map[string]*person

func (u people) GetUserByID(id string) *storage.User {
	if p := u[id]; p != nil {
		return &p.User
	}
	return nil
}

func (u people) GetUserByUsername(name string) *storage.User {
	for _, p := range u {
		if p.Username == name {
			return &p.User
		}
	}
	return nil
}

func (u people) ExampleClientID() string { return storage.ServiceUserID }

// store adds email and groups claims to ID tokens: the example storage puts only the subject
// there for web clients (the rest is at its userinfo endpoint).
type store struct {
	*storage.Storage
	people people
}

func (s *store) SetUserinfoFromRequest(ctx context.Context, info *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	if err := s.Storage.SetUserinfoFromRequest(ctx, info, req, scopes); err != nil {
		return err
	}
	p := s.people[req.GetSubject()]
	info.Email, info.EmailVerified = p.Email, oidc.Bool(p.EmailVerified)
	info.AppendClaims("groups", p.groups)
	return nil
}

// GetClientByClientID allows the CLI's client the device grant, which the example's public
// (native) client lacks; every other client is the example's own.
func (s *store) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	c, err := s.Storage.GetClientByClientID(ctx, id)
	if err != nil || id != CLIClientID {
		return c, err
	}
	return deviceClient{c}, nil
}

// deviceClient is a client that may also use the device authorization grant.
type deviceClient struct{ op.Client }

func (c deviceClient) GrantTypes() []oidc.GrantType {
	return append(c.Client.GrantTypes(), oidc.GrantTypeDeviceCode)
}

// CompleteDeviceAuthorization records the person by user ID: the example's device form passes
// the username, which its storage cannot find claims for.
func (s *store) CompleteDeviceAuthorization(ctx context.Context, userCode, username string) error {
	for id, p := range s.people {
		if p.Username == username {
			return s.Storage.CompleteDeviceAuthorization(ctx, userCode, id)
		}
	}
	return errors.New("unknown user " + username)
}

// ConfirmDevice signs username in at the provider's device page and approves the device
// authorization of userCode, as a person would in their browser after `flotilla login --sso`
// showed them the code; deny refuses it instead.
func ConfirmDevice(ctx context.Context, issuer, userCode, username string, deny bool) error {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return err
	}
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	body := url.Values{"user_code": {userCode}, "username": {username}, "password": {Password}}
	resp, err := post(ctx, c, issuer+"/device/login", body)
	if err != nil {
		return err
	}
	// The form answers the confirmation page, or redirects back to itself with the error.
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("device login as %s: %s %s", username, resp.Status, resp.Header.Get("Location"))
	}
	action := "allowed"
	if deny {
		action = "denied"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, issuer+"/device/confirm?action="+action, nil)
	if err != nil {
		return err
	}
	resp, err = c.Do(req)
	if err != nil {
		return fmt.Errorf("device confirm: %w", err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), "Device authorization "+action) {
		return fmt.Errorf("device confirm: %s %s %s", resp.Status, resp.Header.Get("Location"), page)
	}
	return nil
}

func post(ctx context.Context, c *http.Client, u string, form url.Values) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("post %s: %w", u, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp, nil
}

// Start runs the provider until the test ends, with Flotilla's client redirecting to
// redirectURL. host names the provider in its issuer URL ("127.0.0.1" or "localhost"; a
// browser test uses the other name than Flotilla's so that the redirects are cross-site). It
// returns the issuer URL.
func Start(t testing.TB, host, redirectURL string) string {
	t.Helper()
	ps := people{
		"id-admin":  {storage.User{ID: "id-admin", Username: Alice, Password: Password, Email: "alice@example.com", EmailVerified: true}, []string{"readers", "platform-admins"}},
		"id-viewer": {storage.User{ID: "id-viewer", Username: Victor, Password: Password, Email: "victor@example.com", EmailVerified: true}, []string{"readers"}},
		"id-nobody": {storage.User{ID: "id-nobody", Username: Nora, Password: Password}, []string{"sales"}},
	}
	clients := map[string]*storage.Client{ClientID: storage.WebClient(ClientID, ClientSecret, redirectURL), CLIClientID: storage.NativeClient(CLIClientID)}
	st := &store{Storage: storage.NewStorageWithClients(ps, clients), people: ps}
	ts := httptest.NewUnstartedServer(nil)
	_, port, _ := net.SplitHostPort(ts.Listener.Addr().String())
	issuer := "http://" + net.JoinHostPort(host, port)
	ts.Config.Handler = exampleop.SetupServer(issuer, st, nil, false)
	ts.Start()
	t.Cleanup(ts.Close)
	return issuer
}
