package auth

import (
	"context"
	"errors"
	"testing"
	"time"

	"flotilla.dev/flotilla/internal/store"
)

// tokensByHash is a TokenFinder over a map.
type tokensByHash map[string]store.Token

func (m tokensByHash) TokenByHash(_ context.Context, hash string) (*store.Token, error) {
	if t, ok := m[hash]; ok {
		return &t, nil
	}
	return nil, store.ErrNotFound
}

func TestSSOTokensAuthenticateAsThePerson(t *testing.T) {
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	exp := now.Add(time.Hour)
	sso, _ := NewToken()
	api, _ := NewToken()
	a := &Authenticator{Now: func() time.Time { return now }, Tokens: tokensByHash{
		HashToken(sso): {Name: "oidc:alice@example.com", Role: RoleAdmin, ExpiresAt: &exp},
		HashToken(api): {Name: "ci", Role: RoleDeployer},
	}}
	p, err := a.AuthenticateToken(context.Background(), sso)
	if err != nil || p.String() != "user:oidc:alice@example.com" || p.Roles[0] != RoleAdmin {
		t.Errorf("SSO token: %v, %v; want user:oidc:alice@example.com", p, err)
	}
	p, err = a.AuthenticateToken(context.Background(), api)
	if err != nil || p.String() != "token:ci" {
		t.Errorf("API token: %v, %v; want token:ci", p, err)
	}
	a.Now = func() time.Time { return exp }
	if _, err := a.AuthenticateToken(context.Background(), sso); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("expired SSO token: %v, want ErrUnauthenticated", err)
	}
}
