// Package oidctest runs an OpenID Connect provider in-process for tests: zitadel's example OP
// over its in-memory storage, with Flotilla registered as a web client and three people whose
// ID tokens carry an email and a "groups" claim. Tests drive it through its real login form, so
// the whole authorization code flow (PKCE, nonce, signed ID tokens) is the provider's own.
package oidctest

import (
	"context"
	"net"
	"net/http/httptest"
	"testing"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// The client Flotilla is registered as, and every person's password.
const (
	ClientID     = "flotilla"
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
	clients := map[string]*storage.Client{ClientID: storage.WebClient(ClientID, ClientSecret, redirectURL)}
	st := &store{Storage: storage.NewStorageWithClients(ps, clients), people: ps}
	ts := httptest.NewUnstartedServer(nil)
	_, port, _ := net.SplitHostPort(ts.Listener.Addr().String())
	issuer := "http://" + net.JoinHostPort(host, port)
	ts.Config.Handler = exampleop.SetupServer(issuer, st, nil, false)
	ts.Start()
	t.Cleanup(ts.Close)
	return issuer
}
