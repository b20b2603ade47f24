package cli

import (
	"time"

	"github.com/spf13/cobra"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/client"
)

func newGetCmd(g *globals) *cobra.Command {
	var selector, output string
	cmd := &cobra.Command{
		Use:   "get KIND [NAME]",
		Short: "List objects of a kind, or show one",
		Example: `  flotilla get clusters
  flotilla get svc web -o yaml
  flotilla get clusters -l env=prod,region=eu -o wide`,
		Args:              cobra.RangeArgs(1, 2),
		ValidArgsFunction: g.completeKindNames,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			info, err := lookupKind(args[0])
			if err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			var objs []v1.Object
			if len(args) == 2 {
				o, err := c.Get(cmd.Context(), info.Kind, args[1])
				if err != nil {
					return err
				}
				objs = []v1.Object{o}
			} else {
				objs, err = c.ListAll(cmd.Context(), info.Kind, client.ListOptions{LabelSelector: selector})
				if err != nil {
					return err
				}
			}
			return printObjects(g.streams.Out, info.Kind, objs, output, len(args) == 2, time.Now())
		},
	}
	cmd.Flags().StringVarP(&selector, "selector", "l", "", "label selector, e.g. env=prod,region in (eu,us)")
	cmd.Flags().StringVarP(&output, "output", "o", outTable, "output format: table, wide, yaml or json")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{outTable, outWide, outYAML, outJSON}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}
