package cli

import (
	"fmt"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"
)

func newServiceCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "service",
		Aliases: []string{"svc"},
		Short:   "Work with services: preview what they render to",
	}
	cmd.AddCommand(newServicePreviewCmd(g))
	return cmd
}

func newServicePreviewCmd(g *globals) *cobra.Command {
	var cluster, ref string
	cmd := &cobra.Command{
		Use:   "preview SERVICE --cluster NAME [--ref REF]",
		Short: "Print the manifests a service renders to for one cluster, Secret data redacted",
		Long: `Render the service for one cluster, on the server, exactly as a release would, and print the
manifests as YAML documents in the order the agent applies them. Nothing is created.

Without --ref the commit its source was last fetched at is used; REF is a branch or tag name,
branch:NAME, tag:NAME, semver:RANGE, commit:SHA or a full commit id.`,
		Example: `  flotilla service preview web --cluster prod-eu-1
  flotilla service preview web --cluster prod-eu-1 --ref feature/new-limits`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cluster == "" {
				return fmt.Errorf("--cluster is required: the cluster to render for")
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			pv, err := c.Preview(cmd.Context(), args[0], cluster, ref)
			if err != nil {
				return err
			}
			out := g.streams.Out
			fmt.Fprintf(out, "# service %s for cluster %s at commit %s %q\n# bundle %s\n", pv.Service, pv.Cluster,
				shortCommit(pv.Commit.SHA), commitTitle(pv.Commit.Message), pv.Digest)
			for _, m := range pv.Manifests {
				y, err := yaml.JSONToYAML(m)
				if err != nil {
					return fmt.Errorf("manifest: %w", err)
				}
				if _, err := fmt.Fprintf(out, "---\n%s", y); err != nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&cluster, "cluster", "", "the cluster to render for (required)")
	cmd.Flags().StringVar(&ref, "ref", "", "the revision to render (default: the source's last fetched commit)")
	return cmd
}
