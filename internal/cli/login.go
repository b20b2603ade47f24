package cli

import (
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"flotilla.dev/flotilla/client"
	"flotilla.dev/flotilla/internal/version"
)

func newLoginCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "login --server URL --token TOKEN [--context NAME]",
		Short: "Check a token against a server and save them as a context",
		Long: `Check the token against the server, then save the pair as a named context in the config file
(` + "`<user config dir>/flotilla/config.yaml`" + `, or ` + EnvConfig + `; written with mode 0600) and make it current.
The context is named after the server's host and port unless --context names it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			server, token := firstSet(g.server, os.Getenv(EnvServer)), firstSet(g.token, os.Getenv(EnvToken))
			if server == "" || token == "" {
				return fmt.Errorf("login needs --server and --token")
			}
			c, err := client.New(client.Options{Server: server, Token: token, UserAgent: "flotilla/" + version.Version})
			if err != nil {
				return err
			}
			who, err := c.WhoAmI(cmd.Context())
			if err != nil {
				return fmt.Errorf("login to %s: %w", server, err)
			}
			name := g.context
			if name == "" {
				name = contextNameFor(server)
			}
			path, err := clientConfigPath()
			if err != nil {
				return err
			}
			cfg, err := loadClientConfig(path)
			if err != nil {
				return err
			}
			cfg.upsert(ClientContext{Name: name, Server: c.Server(), Token: token})
			cfg.CurrentContext = name
			if err := cfg.save(path); err != nil {
				return err
			}
			_, err = fmt.Fprintf(g.streams.Out, "Logged in to %s as %s:%s (roles: %s).\nContext %q saved in %s and made current.\n",
				c.Server(), who.Kind, who.Name, strings.Join(who.Roles, ", "), name, path)
			return err
		},
	}
}

// contextNameFor names a context after the server's host and port.
func contextNameFor(server string) string {
	u, err := url.Parse(server)
	if err != nil || u.Host == "" {
		return "default"
	}
	return strings.NewReplacer(":", "-", "[", "", "]", "").Replace(u.Host)
}
