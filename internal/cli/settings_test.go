package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/pflag"
)

func TestServerSettingsPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "server.yaml")
	if err := os.WriteFile(file, []byte("listen: 0.0.0.0:1\ndb: /from/file.db\nlogLevel: warn\nmaxBodyBytes: 2048\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, s := range serverSettings() {
		t.Setenv(s.env, "")
	}
	t.Setenv("FLOTILLA_LISTEN", "0.0.0.0:2")
	t.Setenv("FLOTILLA_LOG_LEVEL", "debug")
	settings := serverSettings()
	fs := pflag.NewFlagSet("server", pflag.ContinueOnError)
	for _, s := range settings {
		fs.String(s.flag, s.def, s.usage)
	}
	if err := fs.Parse([]string{"--listen", "0.0.0.0:3"}); err != nil {
		t.Fatal(err)
	}
	if err := resolveSettings(fs, settings, file); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, s := range settings {
		got[s.flag] = s.value
	}
	want := map[string]string{
		"listen":            "0.0.0.0:3",     // flag beats env and file
		"log-level":         "debug",         // env beats file
		"db":                "/from/file.db", // file beats default
		"max-body-bytes":    "2048",          // file, numeric
		"data-dir":          ".",             // default
		"admin-token-file":  "",
		"log-format":        "text",
		"shutdown-timeout":  "30s",
		"max-long-polls":    "20000",
		"long-poll-timeout": "30s",
		"leader-lease-ttl":  "15s",
		"agent-lease-ttl":   "45s",
		"disconnect-after":  "90s",
		// defaults of the source and traffic settings
		"allow-local-sources":    "false",
		"secrets-dir":            "",
		"traffic-kubeconfig-dir": "",
		"session-key-file":       "",
		// single sign-on is off by default
		"oidc-issuer":             "",
		"oidc-client-id":          "",
		"oidc-client-secret-file": "",
		"oidc-redirect-url":       "",
		"oidc-roles-claim":        "groups",
		"oidc-role-map":           "",
		"oidc-cli-client-id":      "",
		"oidc-cli-token-ttl":      "12h",
		// defaults of the notification settings
		"notify-webhook":             "",
		"notify-webhook-secret-file": "",
		"notify-format":              "json",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("settings (-want +got):\n%s", diff)
	}
	cfg, err := parseServerConfig(settings, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DSN != "/from/file.db" || cfg.MaxBodyBytes != 2048 || cfg.Listen != "0.0.0.0:3" ||
		cfg.LeaderLeaseTTL != 15*time.Second || cfg.AgentLeaseTTL != 45*time.Second || cfg.DisconnectAfter != 90*time.Second ||
		cfg.OIDCCLITokenTTL != 12*time.Hour {
		t.Errorf("config = %+v", cfg)
	}
}

func TestServerSettingsRejectUnknownKeysAndBadValues(t *testing.T) {
	file := filepath.Join(t.TempDir(), "server.yaml")
	if err := os.WriteFile(file, []byte("listen: x\nlisten_addr: y\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	settings := serverSettings()
	fs := pflag.NewFlagSet("server", pflag.ContinueOnError)
	for _, s := range settings {
		fs.String(s.flag, s.def, s.usage)
	}
	err := resolveSettings(fs, settings, file)
	if err == nil || !contains(err.Error(), "listen_addr") {
		t.Errorf("unknown key: %v, want an error naming listen_addr", err)
	}
	// Each bad value, the others at their defaults, is refused with an error naming it.
	for _, bad := range []struct{ flag, value, want string }{
		{"log-format", "xml", "xml"},
		{"leader-lease-ttl", "500ms", `leader lease ttl "500ms"`},
		{"disconnect-after", "soon", `disconnect after "soon"`},
		{"oidc-cli-token-ttl", "10s", `oidc cli token ttl "10s"`},
		{"oidc-cli-token-ttl", "a day", `oidc cli token ttl "a day"`},
	} {
		for _, s := range settings {
			s.value = s.def
			if s.flag == bad.flag {
				s.value = bad.value
			}
		}
		if _, err := parseServerConfig(settings, os.Stderr); err == nil || !contains(err.Error(), bad.want) {
			t.Errorf("--%s %s: %v, want an error naming it", bad.flag, bad.value, err)
		}
	}
}

func TestServerNotifySettings(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "notify-key")
	if err := os.WriteFile(keyFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, s := range serverSettings() {
		t.Setenv(s.env, "")
	}
	parse := func(t *testing.T, file string, args ...string) (*serverConfig, error) {
		t.Helper()
		settings := serverSettings()
		fs := pflag.NewFlagSet("server", pflag.ContinueOnError)
		addServerFlags(fs, settings)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		if err := resolveSettings(fs, settings, file); err != nil {
			t.Fatal(err)
		}
		return parseServerConfig(settings, os.Stderr)
	}
	t.Run("flags repeated and comma-separated", func(t *testing.T) {
		cfg, err := parse(t, "", "--notify-webhook", "https://a.example/hook", "--notify-webhook", "https://b.example/x,https://c.example/y",
			"--notify-webhook-secret-file", keyFile, "--notify-format", "slack")
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"https://a.example/hook", "https://b.example/x", "https://c.example/y"}
		if diff := cmp.Diff(want, cfg.Notify.URLs); diff != "" {
			t.Errorf("URLs (-want +got):\n%s", diff)
		}
		if string(cfg.Notify.Key) != "s3cret" || cfg.Notify.Format != "slack" {
			t.Errorf("key %q format %q; want the file's key, trimmed, and slack", cfg.Notify.Key, cfg.Notify.Format)
		}
	})
	t.Run("file list and environment", func(t *testing.T) {
		file := filepath.Join(dir, "server.yaml")
		if err := os.WriteFile(file, []byte("notifyWebhook:\n- https://a.example/1\n- https://b.example/2\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := parse(t, file)
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"https://a.example/1", "https://b.example/2"}; !cmp.Equal(want, cfg.Notify.URLs) {
			t.Errorf("URLs from the file %v; want %v", cfg.Notify.URLs, want)
		}
		if cfg.Notify.Format != "json" || cfg.Notify.Key != nil {
			t.Errorf("format %q key %q; want json and no key by default", cfg.Notify.Format, cfg.Notify.Key)
		}
		t.Setenv("FLOTILLA_NOTIFY_WEBHOOK", "https://env.example/a,https://env.example/b")
		cfg, err = parse(t, file)
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"https://env.example/a", "https://env.example/b"}; !cmp.Equal(want, cfg.Notify.URLs) {
			t.Errorf("URLs from the environment %v; want %v", cfg.Notify.URLs, want)
		}
	})
	t.Run("no hook", func(t *testing.T) {
		cfg, err := parse(t, "")
		if err != nil || len(cfg.Notify.URLs) != 0 {
			t.Errorf("config %+v, %v; want no hooks", cfg, err)
		}
	})
	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"--notify-webhook", "ftp://x"}, `"ftp://x" is not an http or https URL`},
		{[]string{"--notify-webhook", "https://x", "--notify-format", "xml"}, `format "xml"`},
		{[]string{"--notify-format", "xml"}, `notify format "xml"`},
		{[]string{"--notify-webhook", "https://x", "--notify-webhook-secret-file", filepath.Join(dir, "missing")}, "notify webhook secret file"},
	} {
		if _, err := parse(t, "", bad.args...); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%v: %v; want an error containing %q", bad.args, err, bad.want)
		}
	}
}

func TestClientConfigRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "config.yaml")
	cfg, err := loadClientConfig(path)
	if err != nil || len(cfg.Contexts) != 0 {
		t.Fatalf("missing file = %+v, %v; want an empty config", cfg, err)
	}
	cfg.upsert(ClientContext{Name: "a", Server: "http://a", Token: "t1"})
	cfg.upsert(ClientContext{Name: "b", Server: "http://b"})
	cfg.upsert(ClientContext{Name: "a", Server: "http://a2", Token: "t2"})
	cfg.CurrentContext = "a"
	if err := cfg.save(path); err != nil {
		t.Fatal(err)
	}
	back, err := loadClientConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(cfg, back); diff != "" {
		t.Errorf("round trip (-saved +loaded):\n%s", diff)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	if err := os.WriteFile(path, []byte("contexts: [{name: a, sever: typo}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadClientConfig(path); err == nil {
		t.Error("a config file with an unknown field loaded without error")
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
