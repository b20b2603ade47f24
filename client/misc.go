package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"

	v1 "flotilla.dev/flotilla/api/v1"
)

// AuditOptions filter the audit trail. Zero fields do not filter.
type AuditOptions struct {
	Kind  string
	Name  string
	Actor string
	Since time.Time
	Until time.Time
	// Limit is the most events to return; 0 lets the server choose.
	Limit int
	// After returns only events with a greater sequence number (for paging, pass EventList.Next).
	After int64
}

// Audit returns one page of the audit trail, oldest first.
func (c *Client) Audit(ctx context.Context, opts AuditOptions) (*v1.EventList, error) {
	q := url.Values{}
	set := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	set("kind", opts.Kind)
	set("name", opts.Name)
	set("actor", opts.Actor)
	if !opts.Since.IsZero() {
		q.Set("since", opts.Since.UTC().Format(time.RFC3339Nano))
	}
	if !opts.Until.IsZero() {
		q.Set("until", opts.Until.UTC().Format(time.RFC3339Nano))
	}
	if opts.Limit > 0 {
		q.Set("limit", strconv.Itoa(opts.Limit))
	}
	if opts.After > 0 {
		q.Set("after", strconv.FormatInt(opts.After, 10))
	}
	var out v1.EventList
	if err := c.do(ctx, request{method: http.MethodGet, path: "/api/v1/audit", query: q}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// CreateToken creates an API token. The answer's Secret is the token itself, shown only this once.
func (c *Client) CreateToken(ctx context.Context, req v1.TokenRequest) (*v1.Token, error) {
	body, err := encode(req)
	if err != nil {
		return nil, err
	}
	var out v1.Token
	if err := c.do(ctx, request{method: http.MethodPost, path: "/api/v1/tokens", body: body}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Tokens lists the API tokens (never their secrets).
func (c *Client) Tokens(ctx context.Context) ([]v1.Token, error) {
	var out v1.TokenList
	if err := c.do(ctx, request{method: http.MethodGet, path: "/api/v1/tokens"}, &out); err != nil {
		return nil, err
	}
	return out.Items, nil
}

// DeleteToken revokes the token with the given ID; it stops working at once.
func (c *Client) DeleteToken(ctx context.Context, id string) error {
	return c.do(ctx, request{method: http.MethodDelete, path: "/api/v1/tokens/" + url.PathEscape(id)}, nil)
}

// WhoAmI returns the caller as the server sees it: name, kind and roles.
func (c *Client) WhoAmI(ctx context.Context) (*v1.WhoAmI, error) {
	var out v1.WhoAmI
	if err := c.do(ctx, request{method: http.MethodGet, path: "/api/v1/whoami"}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// OIDCInfo returns the OpenID Connect provider and client the server signs people in with; an
// *APIError with code 404 means single sign-on is off. It needs no token.
func (c *Client) OIDCInfo(ctx context.Context) (*v1.OIDCInfo, error) {
	var out v1.OIDCInfo
	if err := c.do(ctx, request{method: http.MethodGet, path: "/api/v1/auth/oidc"}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ExchangeIDToken trades an ID token from the server's OpenID Connect provider for a short-lived
// API token of the person it names. The answer's Secret is the token, shown only this once.
func (c *Client) ExchangeIDToken(ctx context.Context, idToken string) (*v1.Token, error) {
	body, err := encode(v1.OIDCTokenRequest{IDToken: idToken})
	if err != nil {
		return nil, err
	}
	var out v1.Token
	if err := c.do(ctx, request{method: http.MethodPost, path: "/api/v1/auth/oidc/token", body: body}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
