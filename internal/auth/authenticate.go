package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"flotilla.dev/flotilla/internal/store"
)

// TokenFinder looks a token record up by the hash of its secret; store.Store implements it.
type TokenFinder interface {
	TokenByHash(ctx context.Context, hash string) (*store.Token, error)
}

// Authenticator turns an API token into a Principal.
type Authenticator struct {
	Tokens TokenFinder
	// Now returns the current time for expiry checks; nil uses time.Now.
	Now func() time.Time
}

// AuthenticateToken returns the principal of token. It returns an error wrapping
// ErrUnauthenticated, saying why, when the token is empty, malformed, unknown or expired; other
// errors come from the store.
func (a *Authenticator) AuthenticateToken(ctx context.Context, token string) (*Principal, error) {
	if token == "" {
		return nil, fmt.Errorf("%w: no API token given (send the header \"Authorization: Bearer <token>\")", ErrUnauthenticated)
	}
	if CheckTokenFormat(token) != nil {
		return nil, fmt.Errorf("%w: the API token is malformed", ErrUnauthenticated)
	}
	t, err := a.Tokens.TokenByHash(ctx, HashToken(token))
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: the API token is not known (revoked, or issued by another server)", ErrUnauthenticated)
	}
	if err != nil {
		return nil, fmt.Errorf("authenticate token: %w", err)
	}
	now := time.Now
	if a.Now != nil {
		now = a.Now
	}
	if t.ExpiresAt != nil && !now().Before(*t.ExpiresAt) {
		return nil, fmt.Errorf("%w: the API token %q expired at %s", ErrUnauthenticated, t.Name, t.ExpiresAt.UTC().Format(time.RFC3339))
	}
	kind := KindToken
	if IsSSOTokenName(t.Name) {
		kind = KindUser
	}
	return &Principal{Name: t.Name, Kind: kind, Roles: []string{t.Role}}, nil
}

// SSOTokenPrefix starts the name of a token issued to a person by single sign-on
// (`flotilla login --sso`): the name is the person's principal name, "oidc:<email or sub>".
// Tokens made through the API have DNS-label names, which cannot hold the colon, so no one can
// mint a token that passes for a person.
const SSOTokenPrefix = "oidc:"

// IsSSOTokenName reports whether a token name is that of a single sign-on session; such a token
// authenticates as the person (KindUser), like their dashboard session.
func IsSSOTokenName(name string) bool { return strings.HasPrefix(name, SSOTokenPrefix) }

// Actor returns the store actor that records p's changes in the event log.
func (p *Principal) Actor() store.Actor {
	if p == nil {
		return store.Actor{Kind: string(KindSystem), Name: "anonymous"}
	}
	return store.Actor{Kind: string(p.Kind), Name: p.Name}
}
