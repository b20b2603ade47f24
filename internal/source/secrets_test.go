package source

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestDirSecrets(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "git", SecretFileToken), "tok\n")
	writeFile(t, filepath.Join(dir, "git", SecretFileUsername), "bot\r\n")
	writeFile(t, filepath.Join(dir, "git", SecretFileKnownHosts), "host ssh-ed25519 AAAA\n")
	writeFile(t, filepath.Join(dir, "hook", SecretFileWebhook), "s3cret\n")
	writeFile(t, filepath.Join(dir, "outside"), "not a secret directory")
	d := DirSecrets{Dir: dir}
	ctx := context.Background()
	s, err := d.Secret(ctx, "git")
	if err != nil {
		t.Fatal(err)
	}
	if s.Token != "tok" || s.Username != "bot" || string(s.KnownHosts) != "host ssh-ed25519 AAAA\n" || s.SSHKey != nil {
		t.Errorf("secret %+v: want trimmed one-line values and known_hosts kept as is", s)
	}
	if k, err := d.WebhookSecret(ctx, "hook"); err != nil || string(k) != "s3cret" {
		t.Errorf("webhook secret %q, %v", k, err)
	}
	if _, err := d.WebhookSecret(ctx, "git"); !errors.Is(err, ErrNoSecret) {
		t.Errorf("webhook secret of a secret without one: %v, want ErrNoSecret", err)
	}
	for _, ref := range []string{"", "nosuch", "../" + filepath.Base(dir), "outside", ".", "..", "git/../hook", "/etc"} {
		if _, err := d.Secret(ctx, ref); !errors.Is(err, ErrNoSecret) {
			t.Errorf("secret %q: %v, want ErrNoSecret", ref, err)
		}
	}
	if _, err := (DirSecrets{}).Secret(ctx, "git"); !errors.Is(err, ErrNoSecret) {
		t.Errorf("no directory configured: %v", err)
	}
	if err := os.Chmod(filepath.Join(dir, "git", SecretFileToken), 0); err == nil && os.Geteuid() != 0 {
		if _, err := d.Secret(ctx, "git"); err == nil {
			t.Errorf("an unreadable key must be an error")
		}
	}
}
