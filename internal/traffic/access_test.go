package traffic_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"flotilla.dev/flotilla/internal/traffic"
)

func TestDirSecrets(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "lb-key"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "lb-key", traffic.SecretFileHMAC), []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	get := traffic.DirSecrets(dir)
	ctx := context.Background()
	if k, err := get(ctx, "lb-key"); err != nil || string(k) != "s3cret" {
		t.Fatalf("lb-key = %q, %v", k, err)
	}
	if _, err := get(ctx, "other"); !errors.Is(err, traffic.ErrNoAccess) {
		t.Errorf("missing secret: %v", err)
	}
	for _, bad := range []string{"../lb-key", "lb-key/../x", ".hidden", ""} {
		if _, err := get(ctx, bad); err == nil {
			t.Errorf("secret %q resolved", bad)
		}
	}
	if _, err := traffic.DirSecrets("")(ctx, "lb-key"); !errors.Is(err, traffic.ErrNoAccess) {
		t.Errorf("no directory: %v", err)
	}
}

func TestKubeconfigDir(t *testing.T) {
	dir := t.TempDir()
	kc := `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:6443"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`
	if err := os.WriteFile(filepath.Join(dir, "edge-1"), []byte(kc), 0o600); err != nil {
		t.Fatal(err)
	}
	get := traffic.KubeconfigDir(dir)
	cfg, err := get(context.Background(), "edge-1")
	if err != nil || cfg.Host != "https://127.0.0.1:6443" || cfg.BearerToken != "t" {
		t.Fatalf("edge-1 = %+v, %v", cfg, err)
	}
	if _, err := get(context.Background(), "edge-2"); !errors.Is(err, traffic.ErrNoAccess) {
		t.Errorf("missing kubeconfig: %v", err)
	}
	if _, err := get(context.Background(), "../edge-1"); err == nil {
		t.Error("a path outside the directory resolved")
	}
}
