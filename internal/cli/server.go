package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"sigs.k8s.io/yaml"

	"flotilla.dev/flotilla/internal/auth"
	"flotilla.dev/flotilla/internal/dashboard"
	"flotilla.dev/flotilla/internal/notify"
	"flotilla.dev/flotilla/internal/server"
	"flotilla.dev/flotilla/internal/store/open"
	"flotilla.dev/flotilla/internal/version"
)

// EnvServerConfig names the environment variable that gives `flotilla server` its config file.
const EnvServerConfig = "FLOTILLA_SERVER_CONFIG"

// serverSetting is one setting of `flotilla server`: its flag, environment variable and config file
// key. The value is taken from the first of flag, environment, file and default that is set.
type serverSetting struct {
	flag, env, key, def, usage string
	// list settings take several values: the flag repeated or
	// comma-separated, a comma-separated variable, a YAML list or string.
	list  bool
	value string
}

func serverSettings() []*serverSetting {
	return []*serverSetting{
		{flag: "listen", env: "FLOTILLA_LISTEN", key: "listen", def: "127.0.0.1:8080", usage: "address to listen on"},
		{flag: "data-dir", env: "FLOTILLA_DATA_DIR", key: "dataDir", def: ".", usage: "directory of the default SQLite database"},
		{flag: "db", env: "FLOTILLA_DB", key: "db", usage: "database DSN: a path or sqlite:///path.db, or postgres://... (default <data-dir>/flotilla.db)"},
		{flag: "admin-token-file", env: "FLOTILLA_ADMIN_TOKEN_FILE", key: "adminTokenFile", usage: "write the first admin token to this file (mode 0600) when it is created"},
		{flag: "log-level", env: "FLOTILLA_LOG_LEVEL", key: "logLevel", def: "info", usage: "debug, info, warn or error"},
		{flag: "log-format", env: "FLOTILLA_LOG_FORMAT", key: "logFormat", def: "text", usage: "text or json"},
		{flag: "max-body-bytes", env: "FLOTILLA_MAX_BODY_BYTES", key: "maxBodyBytes", def: "4194304", usage: "largest request body accepted"},
		{flag: "shutdown-timeout", env: "FLOTILLA_SHUTDOWN_TIMEOUT", key: "shutdownTimeout", def: "30s", usage: "how long to let in-flight requests finish on shutdown"},
		{flag: "max-long-polls", env: "FLOTILLA_MAX_LONG_POLLS", key: "maxLongPolls", def: "20000", usage: "agent long polls held at once; more are answered 429 with Retry-After"},
		{flag: "long-poll-timeout", env: "FLOTILLA_LONG_POLL_TIMEOUT", key: "longPollTimeout", def: "30s", usage: "how long an agent's long poll is held without a change"},
		{flag: "leader-lease-ttl", env: "FLOTILLA_LEADER_LEASE_TTL", key: "leaderLeaseTTL", def: "15s", usage: "how long the source controller's and the rollout runner's leadership lasts without renewal: how soon another replica takes over when the leader dies"},
		{flag: "agent-lease-ttl", env: "FLOTILLA_AGENT_LEASE_TTL", key: "agentLeaseTTL", def: "45s", usage: "how long an agent's lease on its cluster lasts without renewal: how soon a replacement agent is accepted when one dies"},
		{flag: "disconnect-after", env: "FLOTILLA_DISCONNECT_AFTER", key: "disconnectAfter", def: "90s", usage: "how long after its last report a cluster's agent shows as Disconnected"},
		{flag: "allow-local-sources", env: "FLOTILLA_ALLOW_LOCAL_SOURCES", key: "allowLocalSources", def: "false", usage: "allow file://, plain http and loopback or link-local Git URLs (tests and the local demo only)"},
		{flag: "session-key-file", env: "FLOTILLA_SESSION_KEY_FILE", key: "sessionKeyFile", usage: "file of at least 32 random bytes that signs dashboard sessions; give every replica the same one (default: a random key per process, so sessions end on restart)"},
		{flag: "secrets-dir", env: "FLOTILLA_SECRETS_DIR", key: "secretsDir", usage: "directory of secrets named by sources (DIR/NAME/token, username, ssh-privatekey, known_hosts, webhook-secret) and by webhook traffic routers (DIR/NAME/hmac-key)"},
		{flag: "oidc-issuer", env: "FLOTILLA_OIDC_ISSUER", key: "oidcIssuer", usage: "issuer URL of the OpenID Connect provider people sign in to the dashboard with (default: single sign-on off)"},
		{flag: "oidc-client-id", env: "FLOTILLA_OIDC_CLIENT_ID", key: "oidcClientID", usage: "client ID of Flotilla at the OIDC provider"},
		{flag: "oidc-client-secret-file", env: "FLOTILLA_OIDC_CLIENT_SECRET_FILE", key: "oidcClientSecretFile", usage: "file holding the OIDC client secret (omit for a public client)"},
		{flag: "oidc-redirect-url", env: "FLOTILLA_OIDC_REDIRECT_URL", key: "oidcRedirectURL", usage: "the server's external URL followed by /ui/oidc/callback, as registered at the provider (required with --oidc-issuer)"},
		{flag: "oidc-roles-claim", env: "FLOTILLA_OIDC_ROLES_CLAIM", key: "oidcRolesClaim", def: "groups", usage: "ID token claim (a string or a list) whose values --oidc-role-map maps to roles"},
		{flag: "oidc-cli-client-id", env: "FLOTILLA_OIDC_CLI_CLIENT_ID", key: "oidcCLIClientID", usage: "client ID `flotilla login --sso` runs the OIDC device flow as, a public client allowed the device grant (default: --oidc-client-id)"},
		{flag: "oidc-cli-token-ttl", env: "FLOTILLA_OIDC_CLI_TOKEN_TTL", key: "oidcCLITokenTTL", def: "12h", usage: "lifetime of the API token `flotilla login --sso` gets for a person"},
		{flag: "oidc-role-map", env: "FLOTILLA_OIDC_ROLE_MAP", key: "oidcRoleMap", usage: "claim values to roles, e.g. platform-admins=admin,developers=deployer,*=viewer; the highest matching role wins, \"*\" is the optional default, and a person matching nothing is refused"},
		{flag: "traffic-kubeconfig-dir", env: "FLOTILLA_TRAFFIC_KUBECONFIG_DIR", key: "trafficKubeconfigDir", usage: "directory of kubeconfig files named after clusters (DIR/CLUSTER), to reach the HTTPRoutes of gatewayAPI traffic routers"},
		{flag: "notify-webhook", env: "FLOTILLA_NOTIFY_WEBHOOK", key: "notifyWebhook", list: true, usage: "URL to POST rollout notifications to (repeatable or comma-separated)"},
		{flag: "notify-webhook-secret-file", env: "FLOTILLA_NOTIFY_WEBHOOK_SECRET_FILE", key: "notifyWebhookSecretFile", usage: "file holding the HMAC-SHA256 key that signs notifications (X-Flotilla-Signature, as for webhook traffic routers); unsigned when unset"},
		{flag: "notify-format", env: "FLOTILLA_NOTIFY_FORMAT", key: "notifyFormat", def: "json", usage: "body of notifications: json, or slack ({\"text\": ...}, for Slack and Mattermost incoming webhooks)"},
	}
}

// resolveSettings fills every setting's value: flag > environment > config file > default. Unknown
// keys in the file are errors.
func resolveSettings(flags *pflag.FlagSet, settings []*serverSetting, configPath string) error {
	file := map[string]any{}
	if configPath != "" {
		data, err := os.ReadFile(configPath)
		if err != nil {
			return fmt.Errorf("config %s: %w", configPath, err)
		}
		if err := yaml.Unmarshal(data, &file); err != nil {
			return fmt.Errorf("config %s: %w", configPath, err)
		}
		known := map[string]bool{}
		for _, s := range settings {
			known[s.key] = true
		}
		var unknown []string
		for k := range file {
			if !known[k] {
				unknown = append(unknown, k)
			}
		}
		if len(unknown) > 0 {
			sort.Strings(unknown)
			return fmt.Errorf("config %s: unknown setting(s) %s", configPath, strings.Join(unknown, ", "))
		}
	}
	for _, s := range settings {
		switch {
		case flags.Changed(s.flag):
			s.value = flags.Lookup(s.flag).Value.String()
		case os.Getenv(s.env) != "":
			s.value = os.Getenv(s.env)
		case file[s.key] != nil:
			s.value = fmt.Sprint(file[s.key])
			if l, ok := file[s.key].([]any); ok && s.list {
				parts := make([]string, len(l))
				for i, x := range l {
					parts[i] = fmt.Sprint(x)
				}
				s.value = strings.Join(parts, ",")
			}
		default:
			s.value = s.def
		}
	}
	return nil
}

// serverConfig is the resolved configuration of `flotilla server`.
type serverConfig struct {
	Listen          string
	DSN             string
	AdminTokenFile  string
	Logger          *slog.Logger
	MaxBodyBytes    int64
	ShutdownTimeout time.Duration
	MaxLongPolls    int
	LongPollTimeout time.Duration
	// Leases: leadership of the source controller and rollout runner, agents' cluster leases,
	// and when a silent agent counts as disconnected.
	LeaderLeaseTTL, AgentLeaseTTL, DisconnectAfter time.Duration
	// Sources: where fetched repositories and checkouts live, whether local URLs are allowed,
	// and where secrets named by sources are read from.
	SourcesDir        string
	AllowLocalSources bool
	SecretsDir        string
	// SessionKey signs dashboard sessions; nil for a random key per process.
	SessionKey []byte
	// TrafficKubeconfigDir holds the kubeconfigs of the edge clusters of gatewayAPI traffic routers.
	TrafficKubeconfigDir string
	// OIDC configures single sign-on to the dashboard; nil when it is off.
	OIDC *dashboard.OIDCOptions
	// OIDCCLITokenTTL is the lifetime of the API tokens of `flotilla login --sso`.
	OIDCCLITokenTTL time.Duration
	// Notify configures rollout notifications; nil URLs sends none. Its Key is a secret: never
	// logged.
	Notify notify.Options
}

func parseServerConfig(settings []*serverSetting, errOut io.Writer) (*serverConfig, error) {
	v := map[string]string{}
	for _, s := range settings {
		v[s.flag] = s.value
	}
	c := &serverConfig{Listen: v["listen"], DSN: v["db"], AdminTokenFile: v["admin-token-file"]}
	if c.DSN == "" {
		dir := v["data-dir"]
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("data dir: %w", err)
		}
		c.DSN = filepath.Join(dir, "flotilla.db")
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(v["log-level"])); err != nil {
		return nil, fmt.Errorf("log level %q: want debug, info, warn or error", v["log-level"])
	}
	hopts := &slog.HandlerOptions{Level: level}
	switch v["log-format"] {
	case "text":
		c.Logger = slog.New(slog.NewTextHandler(errOut, hopts))
	case "json":
		c.Logger = slog.New(slog.NewJSONHandler(errOut, hopts))
	default:
		return nil, fmt.Errorf("log format %q: want text or json", v["log-format"])
	}
	n, err := strconv.ParseInt(v["max-body-bytes"], 10, 64)
	if err != nil || n < 1024 {
		return nil, fmt.Errorf("max body bytes %q: want a whole number of at least 1024", v["max-body-bytes"])
	}
	c.MaxBodyBytes = n
	d, err := time.ParseDuration(v["shutdown-timeout"])
	if err != nil || d <= 0 {
		return nil, fmt.Errorf("shutdown timeout %q: want a positive duration such as 30s", v["shutdown-timeout"])
	}
	c.ShutdownTimeout = d
	polls, err := strconv.Atoi(v["max-long-polls"])
	if err != nil || polls < 1 {
		return nil, fmt.Errorf("max long polls %q: want a whole number of at least 1", v["max-long-polls"])
	}
	c.MaxLongPolls = polls
	if c.LongPollTimeout, err = time.ParseDuration(v["long-poll-timeout"]); err != nil || c.LongPollTimeout < time.Second {
		return nil, fmt.Errorf("long poll timeout %q: want a duration of at least 1s", v["long-poll-timeout"])
	}
	for _, d := range []struct {
		flag string
		to   *time.Duration
	}{{"leader-lease-ttl", &c.LeaderLeaseTTL}, {"agent-lease-ttl", &c.AgentLeaseTTL}, {"disconnect-after", &c.DisconnectAfter}} {
		if *d.to, err = time.ParseDuration(v[d.flag]); err != nil || *d.to < 3*time.Second {
			return nil, fmt.Errorf("%s %q: want a duration of at least 3s", strings.ReplaceAll(d.flag, "-", " "), v[d.flag])
		}
	}
	if c.AllowLocalSources, err = strconv.ParseBool(v["allow-local-sources"]); err != nil {
		return nil, fmt.Errorf("allow local sources %q: want true or false", v["allow-local-sources"])
	}
	c.SourcesDir, c.SecretsDir = filepath.Join(v["data-dir"], "sources"), v["secrets-dir"]
	c.TrafficKubeconfigDir = v["traffic-kubeconfig-dir"]
	if f := v["session-key-file"]; f != "" {
		key, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("session key file: %w", err)
		}
		if len(bytes.TrimSpace(key)) < 32 {
			return nil, fmt.Errorf("session key file %s: has %d bytes, want at least 32 (for example: head -c 48 /dev/urandom | base64 > %s)", f, len(bytes.TrimSpace(key)), f)
		}
		c.SessionKey = bytes.TrimSpace(key)
	}
	for _, u := range strings.Split(v["notify-webhook"], ",") {
		if u = strings.TrimSpace(u); u != "" {
			c.Notify.URLs = append(c.Notify.URLs, u)
		}
	}
	if f := v["notify-webhook-secret-file"]; f != "" {
		key, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("notify webhook secret file: %w", err)
		}
		if c.Notify.Key = bytes.TrimSpace(key); len(c.Notify.Key) == 0 {
			return nil, fmt.Errorf("notify webhook secret file %s: is empty", f)
		}
	}
	c.Notify.Format = notify.Format(v["notify-format"])
	if len(c.Notify.URLs) > 0 {
		// New checks the URLs and format; the notifier itself is made when the server starts.
		if _, err := notify.New(c.Notify); err != nil {
			return nil, err
		}
	} else if c.Notify.Format != notify.FormatJSON && c.Notify.Format != notify.FormatSlack {
		return nil, fmt.Errorf("notify format %q: want json or slack", c.Notify.Format)
	}
	if c.OIDC, err = parseOIDCSettings(v); err != nil {
		return nil, err
	}
	// A minute at least: the token must outlive the sign-in that made it.
	if c.OIDCCLITokenTTL, err = time.ParseDuration(v["oidc-cli-token-ttl"]); err != nil || c.OIDCCLITokenTTL < time.Minute {
		return nil, fmt.Errorf("oidc cli token ttl %q: want a duration of at least 1m, such as 12h", v["oidc-cli-token-ttl"])
	}
	return c, nil
}

// parseOIDCSettings returns the single sign-on configuration, nil when --oidc-issuer is not set.
// Everything is checked here, so that a mistake stops the server at start rather than at the
// first person's sign-in.
func parseOIDCSettings(v map[string]string) (*dashboard.OIDCOptions, error) {
	if v["oidc-issuer"] == "" {
		for _, f := range []string{"oidc-client-id", "oidc-cli-client-id", "oidc-client-secret-file", "oidc-redirect-url", "oidc-role-map"} {
			if v[f] != "" {
				return nil, fmt.Errorf("oidc: --%s is set but --oidc-issuer is not", f)
			}
		}
		return nil, nil
	}
	o := &dashboard.OIDCOptions{Issuer: v["oidc-issuer"], ClientID: v["oidc-client-id"], RedirectURL: v["oidc-redirect-url"], RolesClaim: v["oidc-roles-claim"],
		CLIClientID: v["oidc-cli-client-id"]}
	if u, err := url.Parse(o.Issuer); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("oidc issuer %q: want an http(s) URL such as https://login.example.com", o.Issuer)
	}
	if o.ClientID == "" {
		return nil, errors.New("oidc: --oidc-client-id is required with --oidc-issuer")
	}
	if u, err := url.Parse(o.RedirectURL); o.RedirectURL == "" || err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" ||
		u.Path != "/ui/oidc/callback" {
		return nil, fmt.Errorf("oidc redirect URL %q: want the server's external URL followed by /ui/oidc/callback, such as https://flotilla.example.com/ui/oidc/callback", o.RedirectURL)
	}
	if o.RolesClaim == "" {
		return nil, errors.New("oidc: --oidc-roles-claim is empty")
	}
	if f := v["oidc-client-secret-file"]; f != "" {
		secret, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("oidc client secret file: %w", err)
		}
		if o.ClientSecret = string(bytes.TrimSpace(secret)); o.ClientSecret == "" {
			return nil, fmt.Errorf("oidc client secret file %s: is empty", f)
		}
	}
	// Role names are the same whatever resources the roles cover.
	m, err := auth.ParseRoleMap(v["oidc-role-map"], auth.DefaultRoles(nil))
	if err != nil {
		return nil, fmt.Errorf("oidc: %w", err)
	}
	if m.Empty() {
		return nil, errors.New("oidc: --oidc-role-map is empty, so nobody could sign in; map at least one claim value (or \"*\") to a role")
	}
	o.RoleMap = m
	return o, nil
}

// listValue is a pflag value that collects a list setting: each use of the flag adds its
// comma-separated values.
type listValue struct{ vals []string }

func (l *listValue) Set(s string) error {
	l.vals = append(l.vals, strings.Split(s, ",")...)
	return nil
}
func (l *listValue) String() string { return strings.Join(l.vals, ",") }
func (l *listValue) Type() string   { return "strings" }

// addServerFlags defines a flag for every setting.
func addServerFlags(f *pflag.FlagSet, settings []*serverSetting) {
	for _, st := range settings {
		if st.list {
			f.Var(&listValue{}, st.flag, st.usage+" (env "+st.env+")")
			continue
		}
		f.String(st.flag, st.def, st.usage+" (env "+st.env+")")
	}
}

func newServerCmd(s Streams) *cobra.Command {
	settings := serverSettings()
	var configPath string
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the control plane: API, store and audit trail",
		Long: `Run the control plane.

Settings come from flags, then FLOTILLA_* environment variables, then the YAML file given by
--config (or ` + EnvServerConfig + `), then defaults. File keys: listen, dataDir, db, adminTokenFile,
logLevel, logFormat, maxBodyBytes, shutdownTimeout, maxLongPolls, longPollTimeout, leaderLeaseTTL,
agentLeaseTTL, disconnectAfter, allowLocalSources, secretsDir, trafficKubeconfigDir, sessionKeyFile,
oidcIssuer, oidcClientID, oidcClientSecretFile, oidcRedirectURL, oidcRolesClaim, oidcRoleMap,
oidcCLIClientID, oidcCLITokenTTL,
notifyWebhook (a list), notifyWebhookSecretFile, notifyFormat.

Single sign-on: with --oidc-issuer, people sign in to the dashboard (/ui/) with an OpenID Connect
provider (authorization code flow with PKCE) besides API tokens. Register Flotilla at the provider
with the redirect URL <external URL>/ui/oidc/callback and give --oidc-client-id,
--oidc-client-secret-file (none for a public client) and --oidc-redirect-url. Each person's role
comes from the values of the ID token claim --oidc-roles-claim (default groups) through
--oidc-role-map, for example:

    --oidc-role-map 'platform-admins=admin,developers=deployer,*=viewer'

The highest matching role wins; "*" is the optional role of everyone else; without it a person
whose values match nothing is refused.

People sign in from a terminal with ` + "`flotilla login --sso --server URL`" + `: the CLI runs the OAuth 2.0
device authorization grant (RFC 8628) with the provider as --oidc-cli-client-id (default
--oidc-client-id; it must be a public client allowed the device grant, since the CLI is given no
secret), and the server exchanges the verified ID token for an API token of the person, with the
role --oidc-role-map gives them, that expires after --oidc-cli-token-ttl (default 12h).

On the first start with no API token in the store, the server creates an admin token and prints it
once to standard error (and to --admin-token-file when given).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if configPath == "" {
				configPath = os.Getenv(EnvServerConfig)
			}
			if err := resolveSettings(cmd.Flags(), settings, configPath); err != nil {
				return err
			}
			cfg, err := parseServerConfig(settings, s.Err)
			if err != nil {
				return err
			}
			st, err := open.Open(ctx, cfg.DSN)
			if err != nil {
				return fmt.Errorf("open store: %w", err)
			}
			defer st.Close()
			secret, created, err := server.BootstrapAdminToken(ctx, st)
			if err != nil {
				return err
			}
			if created {
				fmt.Fprintf(s.Err, "\nflotilla: created the first admin token; it is shown only this once:\n\n    %s\n\n", secret)
				if cfg.AdminTokenFile != "" {
					if err := writeSecretFile(cfg.AdminTokenFile, secret+"\n"); err != nil {
						return fmt.Errorf("admin token file: %w", err)
					}
					cfg.Logger.Info("wrote the admin token", "file", cfg.AdminTokenFile)
				}
			} else if cfg.AdminTokenFile != "" {
				cfg.Logger.Info("the store already has API tokens; no admin token was created or written", "file", cfg.AdminTokenFile)
			}
			// Background loops stop when the server does: stopLoops runs before loops.Wait.
			var loops sync.WaitGroup
			defer loops.Wait()
			ctx, stopLoops := context.WithCancel(ctx)
			defer stopLoops()
			dep, err := newDeployer(st, cfg)
			if err != nil {
				return err
			}
			loops.Go(func() {
				if err := dep.Run(ctx); err != nil {
					cfg.Logger.Error("source and release controller stopped", "err", err)
				}
			})
			// One registry for the server's and the rollout runner's metrics, served on /metrics.
			reg := prometheus.NewRegistry()
			reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
			nt, err := startNotifier(ctx, &loops, cfg.Notify, reg, cfg.Logger)
			if err != nil {
				return err
			}
			tm := newTrafficManager(st, cfg.SecretsDir, cfg.TrafficKubeconfigDir, cfg.Logger)
			stopRunner, err := startRolloutRunner(ctx, st, cfg.Logger, tm, cfg.LeaderLeaseTTL, reg, nt)
			if err != nil {
				return err
			}
			defer stopRunner()
			srv, err := server.New(server.Options{Store: st, Logger: cfg.Logger, Registry: reg, MaxBodyBytes: cfg.MaxBodyBytes, ShutdownTimeout: cfg.ShutdownTimeout,
				MaxLongPolls: cfg.MaxLongPolls, LongPollTimeout: cfg.LongPollTimeout, Deploy: dep, SessionKey: cfg.SessionKey,
				TrafficWeights: tm, LeaseTTL: cfg.AgentLeaseTTL, DisconnectAfter: cfg.DisconnectAfter, OIDC: cfg.OIDC,
				OIDCCLITokenTTL: cfg.OIDCCLITokenTTL})
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", cfg.Listen)
			if err != nil {
				return fmt.Errorf("listen: %w", err)
			}
			cfg.Logger.Info("flotilla server listening", "addr", ln.Addr().String(), "version", version.String(), "store", open.Describe(cfg.DSN))
			err = srv.Serve(ctx, ln)
			cfg.Logger.Info("flotilla server stopped")
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&configPath, "config", "", "YAML file with server settings (env "+EnvServerConfig+")")
	addServerFlags(f, settings)
	f.Lookup("allow-local-sources").NoOptDefVal = "true"
	return cmd
}

// writeSecretFile writes data to path with mode 0600, replacing any existing file.
func writeSecretFile(path, data string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.WriteString(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
