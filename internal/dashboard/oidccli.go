package dashboard

import (
	"context"
	"errors"
	"fmt"

	"flotilla.dev/flotilla/internal/auth"
)

// ErrProviderUnavailable means the identity provider's discovery document cannot be read, so no
// ID token can be checked now.
var ErrProviderUnavailable = errors.New("identity provider unavailable")

// SSOInfo is what `flotilla login --sso` needs to start the device flow with the provider.
type SSOInfo struct {
	Issuer   string
	ClientID string
	// DeviceAuthorizationEndpoint is the provider's, when it could be read and it has one; the
	// CLI reads the discovery document itself anyway.
	DeviceAuthorizationEndpoint string
}

// SSO returns the provider and client the CLI signs in with, and false when single sign-on is
// off.
func (d *Dashboard) SSO(ctx context.Context) (SSOInfo, bool) {
	if d.oidc == nil {
		return SSOInfo{}, false
	}
	info := SSOInfo{Issuer: d.oidc.opts.Issuer, ClientID: d.oidc.opts.CLIClientID}
	// A provider that is down does not hide the issuer: the CLI will say it cannot reach it.
	if _, _, err := d.oidc.discover(ctx); err == nil {
		d.oidc.mu.Lock()
		info.DeviceAuthorizationEndpoint = d.oidc.deviceURL
		d.oidc.mu.Unlock()
	}
	return info, true
}

// IdentifyCLI verifies an ID token the CLI got with the device flow (signature, issuer,
// audience CLIClientID, expiry) and returns the person it names with the role RoleMap gives
// them, exactly as a dashboard sign-in would. An invalid token wraps auth.ErrUnauthenticated, a
// person without a role auth.ErrForbidden. The device flow has no nonce of ours to check; the
// token's expiry bounds how long it can be exchanged.
func (d *Dashboard) IdentifyCLI(ctx context.Context, rawIDToken string) (*auth.Principal, error) {
	if d.oidc == nil {
		return nil, fmt.Errorf("single sign-on: %w", auth.ErrUnauthenticated)
	}
	if _, _, err := d.oidc.discover(ctx); err != nil {
		return nil, fmt.Errorf("single sign-on: %w: %w", ErrProviderUnavailable, err)
	}
	d.oidc.mu.Lock()
	verifier := d.oidc.cliVerifier
	d.oidc.mu.Unlock()
	id, err := d.oidc.identify(ctx, verifier, rawIDToken)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", auth.ErrUnauthenticated, err)
	}
	if id.Role == "" {
		return nil, fmt.Errorf("%w: %s", auth.ErrForbidden, d.oidc.refusal(id))
	}
	return &auth.Principal{Name: id.Name, Kind: auth.KindUser, Roles: []string{id.Role}}, nil
}
