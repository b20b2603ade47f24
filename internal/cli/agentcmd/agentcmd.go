// Package agentcmd is the `flotilla agent` command. It lives apart from the rest of the CLI so
// that the agent-only binary, cmd/flotilla-agent, links the agent and nothing of the server, the
// renderers or the other commands: that binary is a quarter of the size of flotilla and the
// agent's resident memory is about a third of what it is when run as `flotilla agent`
// (docs/performance.md). Flags are parsed here only; the agent packages take Options.
package agentcmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/tools/clientcmd"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/client"
	"flotilla.dev/flotilla/internal/agent"
	"flotilla.dev/flotilla/internal/agent/apply"
	"flotilla.dev/flotilla/internal/agent/state"
	"flotilla.dev/flotilla/internal/version"
)

// Environment variables read when --server or --token is not given; the same names the rest of
// the CLI reads.
const (
	EnvServer = "FLOTILLA_SERVER"
	EnvToken  = "FLOTILLA_TOKEN"
)

// Options connect the command to the command line it is part of.
type Options struct {
	// Server and Token point at the values of the enclosing CLI's global --server and --token
	// flags; nil makes the command define those flags itself (the agent-only binary).
	Server, Token *string
	// Err receives the agent's log.
	Err io.Writer
}

// New returns the agent command.
func New(o Options) *cobra.Command {
	var (
		kubeconfig, stateDir, stateNamespace, holder string
		observe                                      time.Duration
	)
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run the agent of one cluster: converge it to its assignments and report back",
		Long: `Runs the agent of one cluster. It connects out to the server only, holds the cluster's lease,
long-polls its desired state, applies each assigned bundle with server-side apply, prunes what is
no longer assigned, and reports health and drift.

--token takes the one-time bootstrap token printed by 'flotilla cluster register' (the agent
exchanges it for a cluster credential and keeps that in its state) or a cluster credential.

The agent keeps the last desired state the server sent, with its bundles, in --state-dir or, with
--state-namespace, in Secrets of that namespace of the cluster (what the install manifest uses).
While the server cannot be reached it goes on enforcing that state, across restarts too, and
reports what it did when the server is back.`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			server, token := firstSet(*o.Server, os.Getenv(EnvServer)), firstSet(*o.Token, os.Getenv(EnvToken))
			if server == "" || token == "" {
				return errors.New("agent: --server and --token are required (or " + EnvServer + " and " + EnvToken + ")")
			}
			cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
			if err != nil {
				return fmt.Errorf("agent: kubeconfig: %w", err)
			}
			dc, err := discovery.NewDiscoveryClientForConfig(cfg)
			if err != nil {
				return fmt.Errorf("agent: %w", err)
			}
			kv := ""
			if info, err := dc.ServerVersion(); err == nil {
				kv = info.GitVersion
			}
			var st state.Store = state.NewDir(stateDir)
			if stateNamespace != "" {
				if st, err = state.NewSecrets(cfg, stateNamespace); err != nil {
					return err
				}
			}
			ctx := cmd.Context()
			cred, err := credential(ctx, server, token, st, kv)
			if err != nil {
				return err
			}
			c, err := client.New(client.Options{Server: server, Token: cred, UserAgent: "flotilla-agent/" + version.Version})
			if err != nil {
				return err
			}
			eng, err := apply.New(cfg, apply.Options{})
			if err != nil {
				return err
			}
			if holder == "" {
				host, _ := os.Hostname()
				holder = fmt.Sprintf("%s-%d", host, os.Getpid())
			}
			a, err := agent.New(agent.Options{Client: c, Applier: eng, State: st, Holder: holder, ObserveInterval: observe,
				AgentVersion: version.Version, KubernetesVersion: kv,
				Logger: slog.New(slog.NewTextHandler(o.Err, nil))})
			if err != nil {
				return err
			}
			if err := a.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
				return err
			}
			return nil
		},
	}
	f := cmd.Flags()
	if o.Server == nil {
		o.Server, o.Token = new(string), new(string)
		f.StringVar(o.Server, "server", "", "control plane URL (env "+EnvServer+")")
		f.StringVar(o.Token, "token", "", "bootstrap token or cluster credential (env "+EnvToken+")")
	}
	f.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig of the cluster (default: in-cluster configuration)")
	f.StringVar(&stateDir, "state-dir", "flotilla-agent-state", "directory for the agent's credential and last desired state")
	f.StringVar(&stateNamespace, "state-namespace", "", "keep the credential and last desired state in Secrets of this namespace of the cluster instead of --state-dir")
	f.StringVar(&holder, "holder", "", "name of this agent process in the cluster's lease (default: host name and pid)")
	f.DurationVar(&observe, "observe-interval", 30*time.Second, "how often to check health and drift and report")
	return cmd
}

// credential returns the cluster credential to use: token itself, or, for a bootstrap token,
// the credential it was exchanged for, which is kept in the state store so that a restarted agent
// does not need a new bootstrap token.
func credential(ctx context.Context, server, token string, st state.Store, kubeVersion string) (string, error) {
	if !strings.HasPrefix(token, "flb_") {
		return token, nil
	}
	cred, err := st.Credential(ctx)
	if err != nil {
		return "", fmt.Errorf("agent: %w", err)
	}
	if cred != "" {
		return cred, nil
	}
	anon, err := client.New(client.Options{Server: server})
	if err != nil {
		return "", err
	}
	resp, err := anon.Register(ctx, v1.RegisterRequest{Token: token, AgentVersion: version.Version, KubernetesVersion: kubeVersion})
	if err != nil {
		return "", fmt.Errorf("agent: register: %w", err)
	}
	if err := st.SaveCredential(ctx, resp.Credential); err != nil {
		return "", fmt.Errorf("agent: keep credential: %w", err)
	}
	return resp.Credential, nil
}

func firstSet(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}
