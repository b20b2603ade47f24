package auth

import (
	"context"
	"errors"
)

// Sentinel errors of the package. The server answers ErrUnauthenticated with 401 and ErrForbidden
// with 403.
var (
	// ErrUnauthenticated means the request carries no credential, or one that is unknown or expired.
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrForbidden means the caller is known but none of its roles grants the permission.
	ErrForbidden = errors.New("forbidden")
	// ErrUnknownRole means a role name is not one the server knows.
	ErrUnknownRole = errors.New("unknown role")
	// ErrMalformedToken means a string is not a Flotilla API token.
	ErrMalformedToken = errors.New("malformed token")
)

// PrincipalKind says what sort of caller a Principal is.
type PrincipalKind string

// The kinds of principals. Users are people signed in with OIDC (the dashboard); tokens are API tokens for automation;
// agents are per-cluster agent credentials; system is the control plane acting on its own.
const (
	KindUser   PrincipalKind = "user"
	KindToken  PrincipalKind = "token"
	KindAgent  PrincipalKind = "agent"
	KindSystem PrincipalKind = "system"
)

// Principal is an authenticated caller: who it is and which roles it holds.
type Principal struct {
	Name  string        `json:"name"`
	Kind  PrincipalKind `json:"kind"`
	Roles []string      `json:"roles"`
}

// String returns "kind:name", the form written to logs and the audit trail.
func (p *Principal) String() string {
	if p == nil {
		return "anonymous"
	}
	return string(p.Kind) + ":" + p.Name
}

type principalKey struct{}

// WithPrincipal returns a copy of ctx carrying p.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal stored in ctx by WithPrincipal, or nil.
func PrincipalFrom(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}
