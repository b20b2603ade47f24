package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func TestServerSessionKeyFile(t *testing.T) {
	dir := t.TempDir()
	for _, s := range serverSettings() {
		t.Setenv(s.env, "")
	}
	parse := func(key string) (*serverConfig, error) {
		t.Helper()
		path := filepath.Join(dir, "session.key")
		if err := os.WriteFile(path, []byte(key), 0o600); err != nil {
			t.Fatal(err)
		}
		settings := serverSettings()
		fs := pflag.NewFlagSet("server", pflag.ContinueOnError)
		for _, s := range settings {
			fs.String(s.flag, s.def, s.usage)
		}
		if err := fs.Parse([]string{"--session-key-file", path, "--data-dir", dir}); err != nil {
			t.Fatal(err)
		}
		if err := resolveSettings(fs, settings, ""); err != nil {
			t.Fatal(err)
		}
		return parseServerConfig(settings, os.Stderr)
	}
	key := strings.Repeat("s3cr3t-", 7) + "\n"
	cfg, err := parse(key)
	if err != nil || string(cfg.SessionKey) != strings.TrimSpace(key) {
		t.Fatalf("session key file: %v, key %q", err, cfg.SessionKey)
	}
	if _, err := parse("short\n"); err == nil || !strings.Contains(err.Error(), "at least 32") {
		t.Errorf("a short session key: %v, want an error saying the size", err)
	}
}
