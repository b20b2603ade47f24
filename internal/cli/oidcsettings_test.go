package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"flotilla.dev/flotilla/internal/auth"
)

// oidcSettings returns the resolved settings with the given values, the others at their defaults.
func oidcSettings(values map[string]string) map[string]string {
	v := map[string]string{}
	for _, s := range serverSettings() {
		v[s.flag] = s.def
	}
	for k, val := range values {
		v[k] = val
	}
	return v
}

func TestOIDCSettings(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "client-secret")
	if err := os.WriteFile(secretFile, []byte("s3cr3t\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	emptyFile := filepath.Join(dir, "empty")
	if err := os.WriteFile(emptyFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	good := map[string]string{
		"oidc-issuer":             "https://login.example.com",
		"oidc-client-id":          "flotilla",
		"oidc-client-secret-file": secretFile,
		"oidc-redirect-url":       "https://flotilla.example.com/ui/oidc/callback",
		"oidc-role-map":           "platform-admins=admin,developers=deployer,*=viewer",
	}
	o, err := parseOIDCSettings(oidcSettings(good))
	if err != nil {
		t.Fatal(err)
	}
	if o.ClientSecret != "s3cr3t" || o.RolesClaim != "groups" || o.RoleMap.Default != auth.RoleViewer || o.RoleMap.ByValue["developers"] != auth.RoleDeployer {
		t.Errorf("parseOIDCSettings = %+v", o)
	}
	if o, err := parseOIDCSettings(oidcSettings(nil)); o != nil || err != nil {
		t.Errorf("no issuer: %+v, %v; want single sign-on off", o, err)
	}
	for _, bad := range []struct{ flag, value, want string }{
		{"oidc-issuer", "login.example.com", "oidc issuer"},
		{"oidc-client-id", "", "--oidc-client-id is required"},
		{"oidc-redirect-url", "", "oidc redirect URL"},
		{"oidc-redirect-url", "https://flotilla.example.com/callback", "/ui/oidc/callback"},
		{"oidc-role-map", "", "nobody could sign in"},
		{"oidc-role-map", "ops=root", "unknown role"},
		{"oidc-role-map", "ops", "want claim-value=role"},
		{"oidc-client-secret-file", filepath.Join(dir, "missing"), "oidc client secret file"},
		{"oidc-client-secret-file", emptyFile, "is empty"},
		{"oidc-roles-claim", "", "roles-claim is empty"},
	} {
		vals := map[string]string{}
		for k, v := range good {
			vals[k] = v
		}
		vals[bad.flag] = bad.value
		if _, err := parseOIDCSettings(oidcSettings(vals)); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("--%s %q: %v, want an error saying %q", bad.flag, bad.value, err, bad.want)
		}
	}
	if o, err := parseOIDCSettings(oidcSettings(good)); err != nil || o.CLIClientID != "" {
		t.Errorf("no CLI client: %+v, %v; want it empty (the server uses --oidc-client-id)", o, err)
	}
	vals := map[string]string{"oidc-cli-client-id": "flotilla-cli"}
	for k, v := range good {
		vals[k] = v
	}
	if o, err := parseOIDCSettings(oidcSettings(vals)); err != nil || o.CLIClientID != "flotilla-cli" {
		t.Errorf("--oidc-cli-client-id: %+v, %v", o, err)
	}
	if _, err := parseOIDCSettings(oidcSettings(map[string]string{"oidc-cli-client-id": "x"})); err == nil || !strings.Contains(err.Error(), "--oidc-issuer is not") {
		t.Errorf("CLI client without issuer: %v, want an error", err)
	}
	// Settings that only make sense with an issuer are refused without one.
	if _, err := parseOIDCSettings(oidcSettings(map[string]string{"oidc-role-map": "*=viewer"})); err == nil || !strings.Contains(err.Error(), "--oidc-issuer is not") {
		t.Errorf("role map without issuer: %v, want an error", err)
	}
}
