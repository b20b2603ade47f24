package demo

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// appVersion is one version of the sample application: its image tag and the share of requests
// it fails.
type appVersion struct {
	Version   string
	ErrorRate string
	Message   string
}

// manifests returns the sample application's plain-YAML manifests for v. ${cluster.name} is a
// per-cluster variable the server fills when it renders the release.
func manifests(v appVersion) map[string]string {
	return map[string]string{
		"namespace.yaml": `apiVersion: v1
kind: Namespace
metadata:
  name: shop
`,
		"config.yaml": fmt.Sprintf(`apiVersion: v1
kind: ConfigMap
metadata:
  name: web
  namespace: shop
data:
  version: %q
  errorRate: %q
  cluster: ${cluster.name}
`, v.Version, v.ErrorRate),
		"deployment.yaml": fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
      annotations: {shop.example/version: %q}
    spec:
      containers:
      - name: web
        image: registry.example/shop/web:%s
        ports: [{containerPort: 8080}]
`, v.Version, v.Version),
	}
}

// repo is the demo's Git repository, driven with the git command.
type repo struct{ dir string }

func newRepo(dir string) (*repo, error) {
	r := &repo{dir: dir}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if _, err := r.git("init", "-q", "-b", "main"); err != nil {
		return nil, err
	}
	return r, nil
}

// commit writes v's manifests to deploy/web and commits them; it returns the commit id.
func (r *repo) commit(v appVersion) (string, error) {
	dir := filepath.Join(r.dir, "deploy", "web")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	for name, body := range manifests(v) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			return "", err
		}
	}
	if _, err := r.git("add", "-A"); err != nil {
		return "", err
	}
	if _, err := r.git("commit", "-q", "-m", v.Message); err != nil {
		return "", err
	}
	out, err := r.git("rev-parse", "HEAD")
	return strings.TrimSpace(out), err
}

func (r *repo) git(args ...string) (string, error) {
	cmd := exec.Command("git", append([]string{"-C", r.dir}, args...)...)
	cmd.Env = append(os.Environ(),
		"GIT_AUTHOR_NAME=Dana Demo", "GIT_AUTHOR_EMAIL=dana@shop.example",
		"GIT_COMMITTER_NAME=Dana Demo", "GIT_COMMITTER_EMAIL=dana@shop.example",
		"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}
