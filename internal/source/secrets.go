package source

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ErrNoSecret means a secret reference names no secret.
var ErrNoSecret = errors.New("no such secret")

// Files of a secret in a DirSecrets directory.
const (
	SecretFileUsername      = "username"
	SecretFileToken         = "token"
	SecretFileSSHKey        = "ssh-privatekey"
	SecretFileSSHPassphrase = "ssh-passphrase"
	SecretFileKnownHosts    = "known_hosts"
	SecretFileWebhook       = "webhook-secret"
)

// DirSecrets resolves secret references from a directory on the server,
// laid out like a mounted Kubernetes Secret: the secret named ref is the
// directory Dir/ref, each key a file in it (username, token,
// ssh-privatekey, ssh-passphrase, known_hosts, webhook-secret). Files are
// read on every lookup, so a rotated secret is used at once. Trailing
// newlines of the one-line values are dropped. It implements Credentials.
type DirSecrets struct {
	Dir string
}

var _ Credentials = DirSecrets{}

func (d DirSecrets) dir(ref string) (string, error) {
	if d.Dir == "" {
		return "", fmt.Errorf("secret %q: %w: no secrets directory configured", ref, ErrNoSecret)
	}
	if ref == "" || !filepath.IsLocal(ref) || strings.ContainsAny(ref, `/\`) || strings.HasPrefix(ref, ".") {
		return "", fmt.Errorf("secret %q: %w: not a secret name", ref, ErrNoSecret)
	}
	p := filepath.Join(d.Dir, ref)
	st, err := os.Stat(p)
	if err != nil || !st.IsDir() {
		return "", fmt.Errorf("secret %q: %w", ref, ErrNoSecret)
	}
	return p, nil
}

func readKey(dir, key string, line bool) ([]byte, error) {
	data, err := os.ReadFile(filepath.Join(dir, key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", key, err)
	}
	if line {
		data = []byte(strings.TrimRight(string(data), "\r\n"))
	}
	return data, nil
}

// Secret returns the fetch credentials of the secret named ref.
func (d DirSecrets) Secret(_ context.Context, ref string) (*Secret, error) {
	dir, err := d.dir(ref)
	if err != nil {
		return nil, err
	}
	var s Secret
	var user, token, pass []byte
	for _, k := range []struct {
		name string
		line bool
		to   *[]byte
	}{
		{SecretFileUsername, true, &user}, {SecretFileToken, true, &token}, {SecretFileSSHKey, false, &s.SSHKey},
		{SecretFileSSHPassphrase, true, &pass}, {SecretFileKnownHosts, false, &s.KnownHosts},
	} {
		if *k.to, err = readKey(dir, k.name, k.line); err != nil {
			return nil, fmt.Errorf("secret %q: %w", ref, err)
		}
	}
	s.Username, s.Token, s.SSHKeyPassphrase = string(user), string(token), string(pass)
	return &s, nil
}

// WebhookSecret returns the webhook key (GitHub HMAC secret or GitLab
// token) of the secret named ref.
func (d DirSecrets) WebhookSecret(_ context.Context, ref string) ([]byte, error) {
	dir, err := d.dir(ref)
	if err != nil {
		return nil, err
	}
	key, err := readKey(dir, SecretFileWebhook, true)
	if err != nil {
		return nil, fmt.Errorf("secret %q: %w", ref, err)
	}
	if len(key) == 0 {
		return nil, fmt.Errorf("secret %q: %w: it has no %s", ref, ErrNoSecret, SecretFileWebhook)
	}
	return key, nil
}
