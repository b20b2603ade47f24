package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"flotilla.dev/flotilla/internal/version"
)

func newVersionCmd(s Streams) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of this binary",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(s.Out, "flotilla", version.String())
			return err
		},
	}
}
