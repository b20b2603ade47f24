package cli

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/client"
)

func newAuditCmd(g *globals) *cobra.Command {
	var (
		opts         client.AuditOptions
		since, until string
		output       string
	)
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Show who changed what and when",
		Long: `Show the audit trail, oldest first: every change with its actor, time, and the digests of the
object's labels, annotations and spec before and after.`,
		Example: `  flotilla audit --kind service --name web
  flotilla audit --actor ci --since 24h`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != outTable && output != outYAML && output != outJSON {
				return fmt.Errorf("output format %q: want table, yaml or json", output)
			}
			now := time.Now()
			var err error
			if opts.Since, err = parseWhen("since", since, now); err != nil {
				return err
			}
			if opts.Until, err = parseWhen("until", until, now); err != nil {
				return err
			}
			if opts.Kind != "" {
				// Object kinds in any spelling; other names (Assignments, RolloutAudit, ...) are
				// audit-only kinds the server checks.
				if info, err := lookupKind(opts.Kind); err == nil {
					opts.Kind = info.Kind
				}
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			want := opts.Limit
			var events []v1.Event
			for {
				opts.Limit = 1000
				if want > 0 {
					opts.Limit = min(1000, want-len(events))
				}
				page, err := c.Audit(cmd.Context(), opts)
				if err != nil {
					return err
				}
				events = append(events, page.Items...)
				if page.Next == 0 || want > 0 && len(events) >= want {
					break
				}
				opts.After = page.Next
			}
			switch output {
			case outJSON, outYAML:
				data, err := json.MarshalIndent(v1.EventList{Items: events}, "", "  ")
				if err != nil {
					return err
				}
				if output == outYAML {
					if data, err = yaml.JSONToYAML(data); err != nil {
						return err
					}
				} else {
					data = append(data, '\n')
				}
				_, err = g.streams.Out.Write(data)
				return err
			}
			if len(events) == 0 {
				_, err := fmt.Fprintln(g.streams.Out, "No events found.")
				return err
			}
			tw := tabwriter.NewWriter(g.streams.Out, 0, 8, 3, ' ', 0)
			fmt.Fprintln(tw, "SEQ\tTIME\tACTOR\tTYPE\tKIND\tNAME\tDIGEST BEFORE -> AFTER")
			for _, e := range events {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Seq, e.Time.UTC().Format(time.RFC3339), e.Actor, e.Type, e.Kind, e.Name, digestChange(e))
			}
			return tw.Flush()
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Kind, "kind", "", "only changes to objects of this kind")
	f.StringVar(&opts.Name, "name", "", "only changes to objects with this name")
	f.StringVar(&opts.Actor, "actor", "", "only changes by this actor (token or user name)")
	f.StringVar(&since, "since", "", "only changes at or after this time: RFC 3339, or a duration ago such as 24h")
	f.StringVar(&until, "until", "", "only changes before this time: RFC 3339, or a duration ago")
	f.IntVar(&opts.Limit, "limit", 0, "show at most this many changes (0: all)")
	f.StringVarP(&output, "output", "o", outTable, "output format: table, yaml or json")
	_ = cmd.RegisterFlagCompletionFunc("kind", completeKinds)
	return cmd
}

// parseWhen reads an RFC 3339 time or a duration meaning "that long before now".
func parseWhen(flag, s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("--%s %q: want an RFC 3339 time (2026-01-02T15:04:05Z) or a duration ago (24h)", flag, s)
}
