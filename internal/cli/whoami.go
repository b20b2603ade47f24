package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

func newWhoAmICmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "whoami",
		Short: "Show who the server takes you for",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			who, err := c.WhoAmI(cmd.Context())
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(g.streams.Out, "%s:%s (roles: %s) at %s\n", who.Kind, who.Name, strings.Join(who.Roles, ", "), c.Server())
			return err
		},
	}
}
