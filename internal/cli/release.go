package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
)

func newReleaseCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "release",
		Short: "Create releases by hand and compare them",
	}
	cmd.AddCommand(newReleaseCreateCmd(g), newReleaseDiffCmd(g))
	return cmd
}

func newReleaseCreateCmd(g *globals) *cobra.Command {
	var ref string
	cmd := &cobra.Command{
		Use:   "create SERVICE [--ref REF]",
		Short: "Release a service at a ref of its source, rendered for every cluster it targets, and roll it out",
		Long: `Fetch REF of the service's source (default: the source's own ref), render the service for every
cluster its placement selects, store the bundles and create the release; then roll it out as a new
commit would be (a rollout when the service names a strategy, else every targeted cluster at once).

REF is a branch or tag name (tried in that order), branch:NAME, tag:NAME, semver:RANGE,
commit:SHA or a full commit id. A release of the same commit and service spec that exists already
is shown and not rolled out again.`,
		Example: `  flotilla release create web
  flotilla release create web --ref v1.4.2
  flotilla release create web --ref commit:3f2c...`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			rel, created, err := c.CreateRelease(cmd.Context(), args[0], ref)
			if err != nil {
				return err
			}
			verb := "created"
			if !created {
				verb = "exists already (unchanged, not rolled out again)"
			}
			clusters := 0
			for _, b := range rel.Status.Bundles {
				clusters += len(b.Clusters)
			}
			_, err = fmt.Fprintf(g.streams.Out, "release %s %s: commit %s %q, %d clusters, %d bundles\n",
				rel.Metadata.Name, verb, shortCommit(rel.Spec.Commit.SHA), commitTitle(rel.Spec.Commit.Message), clusters, len(rel.Status.Bundles))
			return err
		},
	}
	cmd.Flags().StringVar(&ref, "ref", "", "branch, tag, branch:NAME, tag:NAME, semver:RANGE, commit:SHA or a full commit id (default: the source's ref)")
	return cmd
}

func newReleaseDiffCmd(g *globals) *cobra.Command {
	var cluster string
	cmd := &cobra.Command{
		Use:   "diff FROM TO [--cluster NAME]",
		Short: "Show the unified diff of two releases' manifests, Secret data redacted",
		Long: `Compare the manifests of release FROM with those of release TO, object by object, for one cluster
or (by default) for every cluster, grouped by clusters that get the same pair of bundles. The values
of Secrets are replaced by placeholders: a changed value shows as a changed placeholder.`,
		Example: `  flotilla release diff web-1a2b3c4d5e-0f9e8d web-6f7a8b9c0d-0f9e8d --cluster prod-eu-1`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			d, err := c.ReleaseDiff(cmd.Context(), args[0], args[1], cluster)
			if err != nil {
				return err
			}
			if d.Diff == "" {
				_, err = fmt.Fprintf(g.streams.Err, "releases %s and %s render the same manifests\n", args[0], args[1])
				return err
			}
			_, err = fmt.Fprint(g.streams.Out, d.Diff)
			return err
		},
	}
	cmd.Flags().StringVar(&cluster, "cluster", "", "compare the bundles of this cluster only")
	return cmd
}

func shortCommit(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}

func commitTitle(s string) string {
	for i, r := range s {
		if r == '\n' {
			return s[:i]
		}
	}
	return s
}

// oneLine shows the first line of a text field, cut to n characters.
func oneLine(path string, n int) func(doc, time.Time) string {
	return func(d doc, _ time.Time) string {
		s := commitTitle(d.str(path))
		if r := []rune(s); len(r) > n {
			return string(r[:n-1]) + "…"
		}
		return s
	}
}
