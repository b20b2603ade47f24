package traffic

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// SecretFileHMAC is the key file of a webhook router's secret: the secret
// named ref is the directory DIR/ref, laid out like a mounted Kubernetes
// Secret, as for Git sources.
const SecretFileHMAC = "hmac-key"

// ErrNoAccess: the server has no secret or kubeconfig for what a router
// names.
var ErrNoAccess = errors.New("not configured on this server")

// DirSecrets returns an Options.Secret that reads DIR/<name>/hmac-key on
// every call (so a rotated key is used at once), without its trailing
// newline.
func DirSecrets(dir string) func(ctx context.Context, name string) ([]byte, error) {
	return func(_ context.Context, name string) ([]byte, error) {
		p, err := localFile(dir, name, SecretFileHMAC)
		if err != nil {
			return nil, fmt.Errorf("secret %s: %w", name, err)
		}
		data, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("secret %s: %w: no file %s", name, ErrNoAccess, p)
		}
		if err != nil {
			return nil, fmt.Errorf("secret %s: %w", name, err)
		}
		key := []byte(strings.TrimRight(string(data), "\r\n"))
		if len(key) == 0 {
			return nil, fmt.Errorf("secret %s: %s is empty", name, p)
		}
		return key, nil
	}
}

// KubeconfigDir returns an Options.RESTConfig that reads the kubeconfig
// file DIR/<cluster> (its current context) on every call.
func KubeconfigDir(dir string) func(ctx context.Context, cluster string) (*rest.Config, error) {
	return func(_ context.Context, cluster string) (*rest.Config, error) {
		p, err := localFile(dir, cluster)
		if err != nil {
			return nil, fmt.Errorf("kubeconfig of cluster %s: %w", cluster, err)
		}
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("kubeconfig of cluster %s: %w: %w", cluster, ErrNoAccess, err)
		}
		cfg, err := clientcmd.BuildConfigFromFlags("", p)
		if err != nil {
			return nil, fmt.Errorf("kubeconfig of cluster %s: %w", cluster, err)
		}
		return cfg, nil
	}
}

// localFile joins dir and a name that must stay inside it.
func localFile(dir, name string, more ...string) (string, error) {
	if dir == "" {
		return "", fmt.Errorf("%w: no directory given", ErrNoAccess)
	}
	if name == "" || !filepath.IsLocal(name) || strings.ContainsAny(name, `/\`) || strings.HasPrefix(name, ".") {
		return "", fmt.Errorf("%q is not a plain name", name)
	}
	return filepath.Join(append([]string{dir, name}, more...)...), nil
}
