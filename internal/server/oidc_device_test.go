package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/client"
	"flotilla.dev/flotilla/internal/dashboard"
	"flotilla.dev/flotilla/internal/oidctest"
)

// deviceIDToken signs username in with the provider's device flow, as `flotilla login --sso`
// does, confirming the code at the provider's device page, and returns the raw ID token.
func deviceIDToken(t *testing.T, provider, clientID, username string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cfg := &oauth2.Config{ClientID: clientID, Scopes: []string{"openid", "profile", "email"}, Endpoint: oauth2.Endpoint{
		DeviceAuthURL: provider + "/device_authorization", TokenURL: provider + "/oauth/token", AuthStyle: oauth2.AuthStyleInParams}}
	da, err := cfg.DeviceAuth(ctx)
	if err != nil {
		t.Fatalf("device authorization: %v", err)
	}
	if err := oidctest.ConfirmDevice(ctx, provider, da.UserCode, username, false); err != nil {
		t.Fatal(err)
	}
	tok, err := cfg.DeviceAccessToken(ctx, da)
	if err != nil {
		t.Fatalf("device access token: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		t.Fatal("the provider sent no ID token")
	}
	return raw
}

// exchange posts an ID token to the token exchange and returns the status and answer.
func exchange(e *env, idToken string) (int, v1.Token, string) {
	body, _ := json.Marshal(v1.OIDCTokenRequest{IDToken: idToken})
	resp, data := e.raw(http.MethodPost, "/api/v1/auth/oidc/token", "", "application/json", body)
	var tok v1.Token
	_ = json.Unmarshal(data, &tok)
	return resp.StatusCode, tok, string(data)
}

func TestOIDCInfoIsPublicAndAbsentWithoutSSO(t *testing.T) {
	plain := newEnv(t)
	if resp, body := plain.raw(http.MethodGet, "/api/v1/auth/oidc", "", "", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("without OIDC: %d %s, want 404", resp.StatusCode, body)
	}
	if code, _, body := exchange(plain, "x.y.z"); code != http.StatusNotFound {
		t.Errorf("exchange without OIDC: %d %s, want 404", code, body)
	}
	e, provider := newOIDCEnv(t)
	resp, body := e.raw(http.MethodGet, "/api/v1/auth/oidc", "", "", nil)
	var info v1.OIDCInfo
	if err := json.Unmarshal(body, &info); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/v1/auth/oidc: %d %s", resp.StatusCode, body)
	}
	if info.Issuer != provider || info.ClientID != oidctest.CLIClientID || info.DeviceAuthorizationEndpoint != provider+"/device_authorization" {
		t.Errorf("OIDC info %+v", info)
	}
}

func TestOIDCTokenExchange(t *testing.T) {
	e, provider := newOIDCEnv(t)
	ctx := context.Background()

	// alice is in platform-admins: an admin token named after her, expiring in 12h, audited.
	code, tok, body := exchange(e, deviceIDToken(t, provider, oidctest.CLIClientID, oidctest.Alice))
	if code != http.StatusCreated || tok.Secret == "" || tok.Name != "oidc:alice@example.com" || tok.Role != "admin" || tok.CreatedBy != "system:sso" {
		t.Fatalf("exchange for alice: %d %s", code, body)
	}
	if tok.ExpiresAt == nil || tok.ExpiresAt.Sub(e.clock.Now()) > 12*time.Hour || tok.ExpiresAt.Sub(e.clock.Now()) < 11*time.Hour {
		t.Errorf("expiry %v, want in 12h", tok.ExpiresAt)
	}
	alice := e.client(tok.Secret)
	who, err := alice.WhoAmI(ctx)
	if err != nil || who.Name != "oidc:alice@example.com" || who.Kind != "user" || strings.Join(who.Roles, ",") != "admin" {
		t.Fatalf("whoami: %+v %v", who, err)
	}
	ts, err := e.admin.Tokens(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var listed bool
	for _, x := range ts {
		listed = listed || x.ID == tok.ID && x.Name == "oidc:alice@example.com" && x.CreatedBy == "system:sso"
	}
	if !listed {
		t.Errorf("token list %+v lacks alice's SSO token", ts)
	}
	events, err := e.admin.Audit(ctx, client.AuditOptions{Kind: "Token", Name: "oidc:alice@example.com"})
	if err != nil || len(events.Items) != 1 || events.Items[0].Actor.String() != "system:sso" {
		t.Errorf("audit of alice's token: %+v %v", events, err)
	}

	// victor is a reader: he may read but not create tokens.
	code, vtok, body := exchange(e, deviceIDToken(t, provider, oidctest.CLIClientID, oidctest.Victor))
	if code != http.StatusCreated || vtok.Role != "viewer" {
		t.Fatalf("exchange for victor: %d %s", code, body)
	}
	victor := e.client(vtok.Secret)
	if _, err := victor.Audit(ctx, client.AuditOptions{Limit: 1}); err != nil {
		t.Errorf("victor reads the audit trail: %v", err)
	}
	if _, err := victor.CreateToken(ctx, v1.TokenRequest{Name: "mine", Role: "admin"}); err == nil {
		t.Error("victor created a token")
	} else {
		wantStatus(t, err, http.StatusForbidden, v1.ReasonForbidden)
	}

	// nora's groups map to nothing: 403 with the reason, and no token.
	before, _ := e.admin.Tokens(ctx)
	code, _, body = exchange(e, deviceIDToken(t, provider, oidctest.CLIClientID, oidctest.Nora))
	if code != http.StatusForbidden || !strings.Contains(body, "no Flotilla role is mapped") || !strings.Contains(body, "sales") {
		t.Errorf("exchange for nora: %d %s, want 403 saying no role is mapped", code, body)
	}
	if after, _ := e.admin.Tokens(ctx); len(after) != len(before) {
		t.Errorf("nora's refusal created a token: %d tokens, were %d", len(after), len(before))
	}

	// A tampered ID token (alice's claims, another signature) is refused.
	raw := deviceIDToken(t, provider, oidctest.CLIClientID, oidctest.Victor)
	parts := strings.Split(raw, ".")
	parts[2] = strings.Repeat("A", len(parts[2]))
	if code, _, body := exchange(e, strings.Join(parts, ".")); code != http.StatusUnauthorized {
		t.Errorf("tampered ID token: %d %s, want 401", code, body)
	}
	if code, _, body := exchange(e, "not a token"); code != http.StatusUnauthorized {
		t.Errorf("garbage ID token: %d %s, want 401", code, body)
	}
	// The body is limited to 64 KiB, well below the 4 MiB of other requests.
	big, _ := json.Marshal(v1.OIDCTokenRequest{IDToken: strings.Repeat("a", 100<<10)})
	if resp, _ := e.raw(http.MethodPost, "/api/v1/auth/oidc/token", "", "application/json", big); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("huge body: %d, want 413", resp.StatusCode)
	}

	// The token stops working when it expires.
	e.clock.Advance(12*time.Hour + time.Second)
	if _, err := alice.WhoAmI(ctx); err == nil {
		t.Error("alice's SSO token works after 12h")
	} else {
		wantStatus(t, err, http.StatusUnauthorized, v1.ReasonUnauthorized)
	}
}

func TestOIDCTokenExchangeChecksAudience(t *testing.T) {
	// The server expects ID tokens for the web client; the device flow's are for the CLI client.
	e, provider := newOIDCEnv(t, func(o *dashboard.OIDCOptions) { o.CLIClientID = oidctest.ClientID })
	code, _, body := exchange(e, deviceIDToken(t, provider, oidctest.CLIClientID, oidctest.Alice))
	if code != http.StatusUnauthorized || !strings.Contains(body, "audience") {
		t.Errorf("ID token for another audience: %d %s, want 401", code, body)
	}
}
