package cli

import (
	"fmt"
	"path/filepath"

	"flotilla.dev/flotilla/internal/deploy"
	"flotilla.dev/flotilla/internal/source"
	"flotilla.dev/flotilla/internal/store"
)

// newDeployer builds the source and release controller of `flotilla server`: a fetcher caching
// repositories under the data directory, secrets read from --secrets-dir.
func newDeployer(st store.Store, cfg *serverConfig) (*deploy.Controller, error) {
	var creds source.Credentials
	var hooks deploy.WebhookSecrets
	if cfg.SecretsDir != "" {
		ds := source.DirSecrets{Dir: cfg.SecretsDir}
		creds, hooks = ds, ds
	}
	f, err := source.NewFetcher(source.Options{CacheDir: filepath.Join(cfg.SourcesDir, "cache"), AllowLocal: cfg.AllowLocalSources, Credentials: creds})
	if err != nil {
		return nil, fmt.Errorf("sources: %w", err)
	}
	return deploy.New(deploy.Options{Store: st, Fetcher: f, WorkDir: cfg.SourcesDir, Secrets: hooks, Logger: cfg.Logger, LeaseTTL: cfg.LeaderLeaseTTL})
}
