package cli

import (
	"log/slog"

	"flotilla.dev/flotilla/internal/store"
	"flotilla.dev/flotilla/internal/traffic"
)

// newTrafficManager builds the traffic manager the rollout runner uses. Webhook routers find their
// HMAC key in secretsDir (DIR/<secretRef>/hmac-key); Gateway API routers reach their edge cluster
// with the kubeconfig file kubeconfigDir/<cluster>. Either directory may be empty: routers that
// need it then fail with a clear reason, which pauses their rollout. Failures to record a router's
// status (the weights themselves were set) are logged.
func newTrafficManager(st store.Store, secretsDir, kubeconfigDir string, logger *slog.Logger) *traffic.Manager {
	opts := traffic.Options{Store: st, StatusError: func(router string, err error) {
		logger.Warn("traffic router status not recorded", "router", router, "err", err)
	}}
	if secretsDir != "" {
		opts.Secret = traffic.DirSecrets(secretsDir)
	}
	if kubeconfigDir != "" {
		opts.RESTConfig = traffic.KubeconfigDir(kubeconfigDir)
	}
	return traffic.NewManager(opts)
}
