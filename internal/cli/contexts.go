package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"sigs.k8s.io/yaml"
)

// EnvConfig names the environment variable that overrides the path of the contexts file.
const EnvConfig = "FLOTILLA_CONFIG"

// Environment variables the client commands read when the matching global flag is not given.
const (
	EnvServer  = "FLOTILLA_SERVER"
	EnvToken   = "FLOTILLA_TOKEN"
	EnvContext = "FLOTILLA_CONTEXT"
)

// ClientConfig is the contexts file written by `flotilla login`: named pairs of server URL and token,
// and the one in use. It holds secrets, so it is written with mode 0600.
type ClientConfig struct {
	CurrentContext string          `json:"currentContext,omitempty"`
	Contexts       []ClientContext `json:"contexts,omitempty"`
}

// ClientContext is one named control plane and the token to use with it.
type ClientContext struct {
	Name   string `json:"name"`
	Server string `json:"server"`
	Token  string `json:"token,omitempty"`
}

// clientConfigPath returns FLOTILLA_CONFIG, else <user config dir>/flotilla/config.yaml.
func clientConfigPath() (string, error) {
	if p := os.Getenv(EnvConfig); p != "" {
		return p, nil
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("config: find the user config directory (set %s): %w", EnvConfig, err)
	}
	return filepath.Join(dir, "flotilla", "config.yaml"), nil
}

// loadClientConfig reads the contexts file at path; a missing file is an empty configuration.
func loadClientConfig(path string) (*ClientConfig, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return &ClientConfig{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	var c ClientConfig
	if err := yaml.UnmarshalStrict(data, &c); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return &c, nil
}

// save writes the configuration to path atomically with mode 0600, creating the directory (0700).
func (c *ClientConfig) save(path string) error {
	data, err := yaml.Marshal(c)
	if err != nil {
		return fmt.Errorf("config %s: encode: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".config-*.yaml")
	if err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("config %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("config %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	return nil
}

// context returns the context called name, or nil.
func (c *ClientConfig) context(name string) *ClientContext {
	i := slices.IndexFunc(c.Contexts, func(x ClientContext) bool { return x.Name == name })
	if i < 0 {
		return nil
	}
	return &c.Contexts[i]
}

// upsert adds or replaces the context with ctx's name.
func (c *ClientConfig) upsert(ctx ClientContext) {
	if cur := c.context(ctx.Name); cur != nil {
		*cur = ctx
		return
	}
	c.Contexts = append(c.Contexts, ctx)
}
