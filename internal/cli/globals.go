package cli

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/client"
	"flotilla.dev/flotilla/internal/version"
)

// globals are the flags every client command shares; they pick the control plane and the token.
type globals struct {
	streams Streams
	server  string
	token   string
	context string
}

// connection resolves the server URL and token: a flag wins over the environment, which wins over
// the context of the config file.
func (g *globals) connection() (server, token string, err error) {
	server, token = firstSet(g.server, os.Getenv(EnvServer)), firstSet(g.token, os.Getenv(EnvToken))
	if server != "" && token != "" {
		return server, token, nil
	}
	path, err := clientConfigPath()
	if err != nil {
		return "", "", err
	}
	cfg, err := loadClientConfig(path)
	if err != nil {
		return "", "", err
	}
	name := firstSet(g.context, os.Getenv(EnvContext), cfg.CurrentContext)
	if name != "" {
		c := cfg.context(name)
		if c == nil {
			return "", "", fmt.Errorf("context %q is not in %s", name, path)
		}
		server, token = firstSet(server, c.Server), firstSet(token, c.Token)
	}
	if server == "" {
		return "", "", fmt.Errorf("no server: run `flotilla login --server URL --token TOKEN`, or pass --server (or set %s)", EnvServer)
	}
	return server, token, nil
}

// client returns an API client for the resolved connection.
func (g *globals) client() (*client.Client, error) {
	server, token, err := g.connection()
	if err != nil {
		return nil, err
	}
	return client.New(client.Options{Server: server, Token: token, UserAgent: "flotilla/" + version.Version})
}

func firstSet(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// lookupKind resolves a kind argument, listing the known kinds when it is unknown.
func lookupKind(arg string) (v1.KindInfo, error) {
	info, ok := v1.LookupKind(arg)
	if !ok {
		return v1.KindInfo{}, fmt.Errorf("unknown kind %q: known kinds are %s", arg, strings.Join(kindNames(), ", "))
	}
	return info, nil
}

func kindNames() []string {
	var out []string
	for _, k := range v1.Kinds() {
		out = append(out, strings.ToLower(k.Kind))
	}
	return out
}

// completeKinds offers kind names (and their plurals and short names) for the first argument.
func completeKinds(_ *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []cobra.Completion
	for _, k := range v1.Kinds() {
		for _, n := range append([]string{strings.ToLower(k.Kind), k.Plural}, k.ShortNames...) {
			if strings.HasPrefix(n, strings.ToLower(toComplete)) {
				out = append(out, cobra.CompletionWithDesc(n, k.Kind))
			}
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// completeKindNames completes the kind first, then object names of that kind from the server.
func (g *globals) completeKindNames(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	if len(args) == 0 {
		return completeKinds(cmd, args, toComplete)
	}
	if len(args) > 1 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	c, err := g.client()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	objs, err := c.ListAll(cmd.Context(), args[0], client.ListOptions{})
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []cobra.Completion
	for _, o := range objs {
		if n := o.GetMetadata().Name; strings.HasPrefix(n, toComplete) {
			out = append(out, n)
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}
