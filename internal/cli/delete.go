package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"flotilla.dev/flotilla/client"
)

func newDeleteCmd(g *globals) *cobra.Command {
	var rv string
	cmd := &cobra.Command{
		Use:               "delete KIND NAME",
		Short:             "Delete an object",
		Args:              cobra.ExactArgs(2),
		ValidArgsFunction: g.completeKindNames,
		RunE: func(cmd *cobra.Command, args []string) error {
			info, err := lookupKind(args[0])
			if err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			if _, err := c.Delete(cmd.Context(), info.Kind, args[1], client.DeleteOptions{ResourceVersion: rv}); err != nil {
				return err
			}
			_, err = fmt.Fprintf(g.streams.Out, "%s/%s deleted\n", strings.ToLower(info.Kind), args[1])
			return err
		},
	}
	cmd.Flags().StringVar(&rv, "resource-version", "", "delete only if the object still has this resourceVersion")
	return cmd
}
