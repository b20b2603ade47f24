package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/spf13/cobra"
	"golang.org/x/oauth2"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/client"
	"flotilla.dev/flotilla/internal/version"
)

func newLoginCmd(g *globals) *cobra.Command {
	var sso bool
	cmd := &cobra.Command{
		Use:   "login --server URL (--token TOKEN | --sso) [--context NAME]",
		Short: "Sign in to a server with a token or single sign-on and save it as a context",
		Long: `Sign in to a server and save the server and token as a named context in the config file
(` + "`<user config dir>/flotilla/config.yaml`" + `, or ` + EnvConfig + `; written with mode 0600), made current.
The context is named after the server's host and port unless --context names it.

With --token, the token (made by an administrator with ` + "`flotilla token create`" + `) is checked
against the server and saved.

With --sso, a person signs in with the server's OpenID Connect provider, no token needed: the
command prints a web address and a code ("Open https://... and enter ABCD-EFGH"), and waits while
you open the address in any browser, sign in and approve (the OAuth 2.0 device authorization
grant, RFC 8628). The server then checks the provider's ID token and gives you an API token with
the role your groups map to; it expires after the server's --oidc-cli-token-ttl (12h by default),
and ` + "`flotilla login --sso`" + ` again gets a new one. An administrator sees it in ` + "`flotilla token list`" + `
under your name (oidc:<email>) and can revoke it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			server, token := firstSet(g.server, os.Getenv(EnvServer)), firstSet(g.token, os.Getenv(EnvToken))
			switch {
			case sso && g.token != "":
				return fmt.Errorf("login takes --token or --sso, not both")
			case server == "":
				return fmt.Errorf("login needs --server")
			case !sso && token == "":
				return fmt.Errorf("login needs --token, or --sso to sign in with the server's identity provider")
			}
			var expires string
			if sso {
				t, err := ssoLogin(cmd.Context(), server, g.streams.Err)
				if err != nil {
					return fmt.Errorf("login to %s with single sign-on: %w", server, err)
				}
				token = t.Secret
				if t.ExpiresAt != nil {
					expires = fmt.Sprintf("The token expires at %s; run `flotilla login --sso` again then.\n", t.ExpiresAt.Local().Format(time.RFC1123))
				}
			}
			c, err := client.New(client.Options{Server: server, Token: token, UserAgent: "flotilla/" + version.Version})
			if err != nil {
				return err
			}
			who, err := c.WhoAmI(cmd.Context())
			if err != nil {
				return fmt.Errorf("login to %s: %w", server, err)
			}
			name := g.context
			if name == "" {
				name = contextNameFor(server)
			}
			path, err := clientConfigPath()
			if err != nil {
				return err
			}
			cfg, err := loadClientConfig(path)
			if err != nil {
				return err
			}
			cfg.upsert(ClientContext{Name: name, Server: c.Server(), Token: token})
			cfg.CurrentContext = name
			if err := cfg.save(path); err != nil {
				return err
			}
			_, err = fmt.Fprintf(g.streams.Out, "Logged in to %s as %s:%s (roles: %s).\n%sContext %q saved in %s and made current.\n",
				c.Server(), who.Kind, who.Name, strings.Join(who.Roles, ", "), expires, name, path)
			return err
		},
	}
	cmd.Flags().BoolVar(&sso, "sso", false, "sign in with the server's OpenID Connect provider from this terminal (device flow) instead of --token")
	return cmd
}

// ssoLogin signs a person in with the device authorization grant at the provider the server
// names, and exchanges the ID token for a Flotilla API token. It writes to out only the address
// and user code the person must type; the tokens are never shown.
func ssoLogin(ctx context.Context, server string, out io.Writer) (*v1.Token, error) {
	anon, err := client.New(client.Options{Server: server, UserAgent: "flotilla/" + version.Version})
	if err != nil {
		return nil, err
	}
	info, err := anon.OIDCInfo(ctx)
	if apiErr, ok := errors.AsType[*client.APIError](err); ok && apiErr.Status.Code == http.StatusNotFound {
		return nil, errors.New("the server has no single sign-on configured (--oidc-issuer); log in with --token")
	}
	if err != nil {
		return nil, err
	}
	// The provider's requests get a timeout of their own; polling is bounded by the code's expiry.
	ctx = context.WithValue(ctx, oauth2.HTTPClient, &http.Client{Timeout: 30 * time.Second})
	provider, err := oidc.NewProvider(ctx, info.Issuer)
	if err != nil {
		return nil, fmt.Errorf("identity provider %s: %w", info.Issuer, err)
	}
	endpoint := provider.Endpoint()
	// The CLI is a public client: it sends its client ID in the form, with no secret to put in a
	// Basic header (auto-detection would try that first and fail once every poll).
	endpoint.AuthStyle = oauth2.AuthStyleInParams
	if endpoint.DeviceAuthURL == "" {
		return nil, fmt.Errorf("identity provider %s: its discovery document has no device_authorization_endpoint, so it cannot sign in a terminal", info.Issuer)
	}
	cfg := &oauth2.Config{ClientID: info.ClientID, Endpoint: endpoint, Scopes: []string{oidc.ScopeOpenID, "profile", "email"}}
	da, err := cfg.DeviceAuth(ctx)
	if err != nil {
		return nil, fmt.Errorf("identity provider %s: start the device sign-in: %w", info.Issuer, describeOAuthError(err))
	}
	if _, err := fmt.Fprintf(out, "Open %s and enter %s\n", da.VerificationURI, da.UserCode); err != nil {
		return nil, err
	}
	if da.VerificationURIComplete != "" {
		fmt.Fprintf(out, "(or open %s)\n", da.VerificationURIComplete)
	}
	fmt.Fprintln(out, "Waiting for you to sign in and approve...")
	// DeviceAccessToken polls at the provider's interval, slows down when told to, and gives up
	// when the code expires.
	tok, err := cfg.DeviceAccessToken(ctx, da)
	if errors.Is(err, context.DeadlineExceeded) {
		return nil, errors.New("the code expired before the sign-in was approved; run the command again")
	}
	if err != nil {
		return nil, fmt.Errorf("identity provider %s: %w", info.Issuer, describeOAuthError(err))
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return nil, fmt.Errorf("identity provider %s sent no ID token (is the openid scope allowed for client %s?)", info.Issuer, info.ClientID)
	}
	return anon.ExchangeIDToken(ctx, raw)
}

// describeOAuthError keeps the provider's error code and description, and drops the raw answer
// body, which could hold more than a person needs to read.
func describeOAuthError(err error) error {
	re, ok := errors.AsType[*oauth2.RetrieveError](err)
	if !ok || re.ErrorCode == "" {
		return err
	}
	switch re.ErrorCode {
	case "access_denied":
		return errors.New("the sign-in was denied at the identity provider")
	case "expired_token":
		return errors.New("the code expired before the sign-in was approved; run the command again")
	}
	msg := "the identity provider answered " + re.ErrorCode
	if re.ErrorDescription != "" {
		msg += ": " + re.ErrorDescription
	}
	return errors.New(msg)
}

// contextNameFor names a context after the server's host and port.
func contextNameFor(server string) string {
	u, err := url.Parse(server)
	if err != nil || u.Host == "" {
		return "default"
	}
	return strings.NewReplacer(":", "-", "[", "", "]", "").Replace(u.Host)
}
