package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/client"
)

// describeEvents is how many recent events describe shows.
const describeEvents = 10

func newDescribeCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:               "describe KIND NAME",
		Short:             "Show an object in detail, with its recent changes",
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
			obj, err := c.Get(cmd.Context(), info.Kind, args[1])
			if err != nil {
				return err
			}
			var events []v1.Event
			// The audit trail is readable by every built-in role, but a custom role may lack it:
			// then describe shows the object without its history.
			for after := int64(0); ; {
				page, err := c.Audit(cmd.Context(), client.AuditOptions{Kind: info.Kind, Name: args[1], After: after, Limit: 1000})
				if err != nil {
					if client.IsForbidden(err) {
						events = nil
						break
					}
					return err
				}
				events = append(events, page.Items...)
				if len(events) > describeEvents {
					events = events[len(events)-describeEvents:]
				}
				if page.Next == 0 {
					break
				}
				after = page.Next
			}
			var agentRep *v1.AgentReport
			if info.Kind == v1.KindCluster {
				// A cluster whose agent never reported has no report (404); a role without
				// access to it sees the cluster without its agent's details.
				agentRep, err = c.AgentReport(cmd.Context(), args[1])
				if err != nil && !client.IsNotFound(err) && !client.IsForbidden(err) {
					return err
				}
			}
			return describe(g.streams.Out, obj, agentRep, events, time.Now())
		},
	}
}

// describe writes obj for people: metadata as aligned fields, spec and status as YAML, then the
// latest events. agentRep, for a Cluster, is its agent's latest report (nil when there is none).
func describe(w io.Writer, obj v1.Object, agentRep *v1.AgentReport, events []v1.Event, now time.Time) error {
	d, err := toDoc(obj)
	if err != nil {
		return err
	}
	m := obj.GetMetadata()
	row := func(k, v string) { fmt.Fprintf(w, "%-18s%s\n", k+":", v) }
	row("Name", m.Name)
	row("Kind", obj.GetTypeMeta().Kind)
	row("Labels", mapLines(m.Labels, 18))
	row("Annotations", mapLines(m.Annotations, 18))
	if m.CreationTimestamp != nil {
		row("Created", fmt.Sprintf("%s (%s ago)", m.CreationTimestamp.UTC().Format(time.RFC3339), humanAge(now.Sub(*m.CreationTimestamp))))
	}
	if m.UpdateTimestamp != nil {
		row("Updated", fmt.Sprintf("%s (%s ago)", m.UpdateTimestamp.UTC().Format(time.RFC3339), humanAge(now.Sub(*m.UpdateTimestamp))))
	}
	row("Resource Version", m.ResourceVersion)
	row("Generation", fmt.Sprint(m.Generation))
	row("UID", m.UID)
	for _, section := range []string{"spec", "status"} {
		v := d[section]
		if mm, ok := v.(map[string]any); v == nil || ok && len(mm) == 0 {
			fmt.Fprintf(w, "%s:\n  <none>\n", strings.ToUpper(section[:1])+section[1:])
			continue
		}
		data, err := json.Marshal(v)
		if err != nil {
			return err
		}
		y, err := yaml.JSONToYAML(data)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "%s:\n", strings.ToUpper(section[:1])+section[1:])
		for _, line := range strings.Split(strings.TrimRight(string(y), "\n"), "\n") {
			fmt.Fprintf(w, "  %s\n", line)
		}
	}
	if ro, ok := obj.(*v1.Rollout); ok {
		describeRollout(w, ro, now)
	}
	if cl, ok := obj.(*v1.Cluster); ok {
		describeCluster(w, cl, agentRep, now)
	}
	fmt.Fprintln(w, "Events:")
	if len(events) == 0 {
		fmt.Fprintln(w, "  <none>")
		return nil
	}
	for _, e := range events {
		fmt.Fprintf(w, "  %-6d %-8s %-14s %s by %s\n", e.Seq, humanAge(now.Sub(e.Time)), e.Type, digestChange(e), e.Actor)
	}
	return nil
}

func mapLines(m map[string]string, indent int) string {
	if len(m) == 0 {
		return "<none>"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	lines := make([]string, len(keys))
	for i, k := range keys {
		lines[i] = k + "=" + m[k]
	}
	return strings.Join(lines, "\n"+strings.Repeat(" ", indent))
}

// digestChange renders the before and after digests of an event briefly.
func digestChange(e v1.Event) string {
	short := func(s string) string {
		if s == "" {
			return "-"
		}
		return s[:min(12, len(s))]
	}
	return short(e.DigestBefore) + " -> " + short(e.DigestAfter)
}
