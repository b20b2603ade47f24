package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/client"
)

func newRolloutCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rollout",
		Short: "Plan, watch and steer rollouts",
		Long: `Plan, watch and steer rollouts.

A rollout moves one release of a service across its clusters, wave by wave, as its strategy says.
Every action is recorded in the audit trail (flotilla audit --kind RolloutAudit).`,
	}
	cmd.AddCommand(newRolloutPlanCmd(g), newRolloutStatusCmd(g))
	for _, a := range []struct{ name, short string }{
		{"approve", "Approve the rollout's open approval gate (your role must be one the gate names)"},
		{"promote", "Skip the current gate, time window or hold"},
		{"pause", "Pause the rollout; its deadlines stop running"},
		{"resume", "Resume a paused rollout; after a failure, try the failed step again"},
		{"abort", "Stop the rollout and send every touched cluster back to its previous release"},
		{"retry", "Retry the failed clusters of a paused rollout, or roll a failed release out again"},
	} {
		cmd.AddCommand(newRolloutActionCmd(g, a.name, a.short))
	}
	cmd.AddCommand(newRolloutRollbackCmd(g))
	return cmd
}

func newRolloutActionCmd(g *globals, action, short string) *cobra.Command {
	return &cobra.Command{
		Use:   action + " NAME",
		Short: short,
		Args:  cobra.ExactArgs(1),
		ValidArgsFunction: func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			return g.completeKindNames(cmd, append([]string{"rollout"}, args...), toComplete)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRolloutAction(cmd.Context(), g, args[0], action, "")
		},
	}
}

func newRolloutRollbackCmd(g *globals) *cobra.Command {
	var to string
	cmd := &cobra.Command{
		Use:   "rollback NAME",
		Short: "End the rollout, sending every touched cluster to --to or back to its previous release",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRolloutAction(cmd.Context(), g, args[0], "rollback", to)
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "release to send the touched clusters to (default: each one's previous release)")
	return cmd
}

func runRolloutAction(ctx context.Context, g *globals, name, action, to string) error {
	c, err := g.client()
	if err != nil {
		return err
	}
	ro, err := c.RolloutAction(ctx, name, action, to)
	if err != nil {
		return err
	}
	msg := ""
	if ro.Status.Message != "" {
		msg = ": " + ro.Status.Message
	}
	_, err = fmt.Fprintf(g.streams.Out, "rollout %s %s: now %s%s\n", name, pastTense(action), ro.Status.Phase, msg)
	return err
}

func pastTense(action string) string {
	switch action {
	case "approve":
		return "approved"
	case "promote":
		return "promoted"
	case "pause":
		return "paused"
	case "resume":
		return "resumed"
	case "abort":
		return "aborted"
	case "retry":
		return "retried"
	case "rollback":
		return "rolled back"
	}
	return action
}

func newRolloutPlanCmd(g *globals) *cobra.Command {
	var release, output string
	cmd := &cobra.Command{
		Use:   "plan SERVICE",
		Short: "Show which clusters fall in which wave before anything starts",
		Example: `  flotilla rollout plan web
  flotilla rollout plan web --release web-7f3a2c1 -o yaml`,
		Args: cobra.ExactArgs(1),
		ValidArgsFunction: func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			return g.completeKindNames(cmd, append([]string{"service"}, args...), toComplete)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			switch output {
			case outTable, outYAML, outJSON:
			default:
				return fmt.Errorf("output format %q: want table, yaml or json", output)
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			p, err := c.RolloutPlan(cmd.Context(), args[0], release)
			if err != nil {
				return err
			}
			return printPlan(g.streams.Out, p, output)
		},
	}
	cmd.Flags().StringVar(&release, "release", "", "release to plan (default: the service's latest release)")
	cmd.Flags().StringVarP(&output, "output", "o", outTable, "output format: table, yaml or json")
	return cmd
}

// printPlan writes a rollout plan: one block per wave with its limits, gates and clusters.
func printPlan(w io.Writer, p *v1.RolloutPlan, output string) error {
	switch output {
	case outJSON:
		data, err := json.MarshalIndent(p, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", data)
		return err
	case outYAML:
		data, err := yaml.Marshal(p)
		if err != nil {
			return err
		}
		_, err = w.Write(data)
		return err
	}
	strategy := p.Strategy
	if strategy == "" {
		strategy = "(none: every cluster at once)"
	}
	fmt.Fprintf(w, "Service %s, release %s, strategy %s (%s, on failure %s)", p.Service, p.Release, strategy, p.Type, p.OnFailure)
	if p.TrafficRouter != "" {
		fmt.Fprintf(w, ", traffic router %s", p.TrafficRouter)
	}
	fmt.Fprintln(w)
	if p.Weights != "" {
		fmt.Fprintf(w, "Weights: %s\n", p.Weights)
	}
	total := 0
	for i, wv := range p.Waves {
		total += len(wv.Clusters)
		limits := fmt.Sprintf("maxParallel %d, maxFailures %d, progressDeadline %s", wv.MaxParallel, wv.MaxFailures, wv.ProgressDeadline)
		if wv.Drain {
			limits += ", drain"
		}
		if len(wv.Steps) > 0 {
			var steps []string
			for _, s := range wv.Steps {
				steps = append(steps, fmt.Sprintf("%d%%", s))
			}
			limits += ", traffic steps " + strings.Join(steps, " ")
		}
		fmt.Fprintf(w, "\nWave %d: %s (%d clusters; %s)\n", i+1, wv.Name, len(wv.Clusters), limits)
		for _, gt := range wv.Gates {
			fmt.Fprintf(w, "  gate  %s\n", gt)
		}
		if len(wv.Clusters) == 0 {
			fmt.Fprintln(w, "  (no cluster)")
			continue
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  CLUSTER\tNOW RUNS\tWEIGHT")
		for _, c := range wv.Clusters {
			prev := c.Previous
			if prev == "" {
				prev = "-"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%d\n", c.Name, prev, c.Weight)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintf(w, "\n%d clusters in %d waves.\n", total, len(p.Waves))
	return err
}

func newRolloutStatusCmd(g *globals) *cobra.Command {
	var watch bool
	cmd := &cobra.Command{
		Use:   "status NAME",
		Short: "Show a rollout's progress per wave and cluster; --watch follows it to the end",
		Args:  cobra.ExactArgs(1),
		ValidArgsFunction: func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			return g.completeKindNames(cmd, append([]string{"rollout"}, args...), toComplete)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			obj, err := c.Get(cmd.Context(), v1.KindRollout, args[0])
			if err != nil {
				return err
			}
			ro := obj.(*v1.Rollout)
			if !watch {
				_, err := io.WriteString(g.streams.Out, strings.Join(rolloutLines(ro, time.Now()), "\n")+"\n")
				return err
			}
			return watchRollout(cmd.Context(), c, ro, g.streams.Out, isTerminal(g.streams.Out))
		},
	}
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "follow the rollout until it ends (in place on a terminal, a line per change otherwise)")
	return cmd
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// watchDone reports whether a watch of the rollout is over: it ended and, after a rollback, its
// clusters are restored (or none was touched).
func watchDone(st v1.RolloutStatus) bool {
	if !st.Phase.Terminal() {
		return false
	}
	if st.Phase != v1.RolloutRolledBack && st.Phase != v1.RolloutAborted || st.RestoredAt != nil {
		return true
	}
	return !slices.ContainsFunc(st.Clusters, func(c v1.RolloutCluster) bool { return c.Phase == v1.ClusterRolloutRolledBack })
}

// watchRollout follows the rollout through the watch stream until it is over. On a terminal it
// redraws the whole status in place; otherwise it prints one line per change.
func watchRollout(ctx context.Context, c *client.Client, ro *v1.Rollout, w io.Writer, tty bool) error {
	drawn := 0
	var last []string
	show := func(ro *v1.Rollout) {
		lines := rolloutLines(ro, time.Now())
		if tty {
			if drawn > 0 {
				fmt.Fprintf(w, "\x1b[%dA\x1b[J", drawn)
			}
			fmt.Fprint(w, strings.Join(lines, "\n")+"\n")
			drawn = len(lines)
			return
		}
		for _, l := range changeLines(last, ro) {
			fmt.Fprintf(w, "%s %s\n", time.Now().UTC().Format("15:04:05"), l)
		}
		last = summaryLines(ro)
	}
	show(ro)
	if watchDone(ro.Status) {
		return nil
	}
	var after int64
	fmt.Sscan(ro.Metadata.ResourceVersion, &after)
	errDone := errors.New("done")
	err := c.Watch(ctx, client.WatchOptions{Kinds: []string{v1.KindRollout}, After: after}, func(ev v1.Event) error {
		if ev.Name != ro.Metadata.Name || len(ev.Object) == 0 {
			return nil
		}
		if ev.Type == "Deleted" {
			return fmt.Errorf("rollout %s was deleted", ro.Metadata.Name)
		}
		var next v1.Rollout
		if err := json.Unmarshal(ev.Object, &next); err != nil {
			return fmt.Errorf("watch: rollout %s: %w", ro.Metadata.Name, err)
		}
		show(&next)
		if watchDone(next.Status) {
			return errDone
		}
		return nil
	})
	if errors.Is(err, errDone) {
		return nil
	}
	return err
}

// summaryLines are the facts a plain watch prints when they change: the phase and message, each
// cluster's state, each gate and the pending approval.
func summaryLines(ro *v1.Rollout) []string {
	st := ro.Status
	out := []string{fmt.Sprintf("rollout %s %s%s", ro.Metadata.Name, st.Phase, suffix(st.Message))}
	if st.CurrentWaveName != "" {
		out = append(out, fmt.Sprintf("wave %s", st.CurrentWaveName))
	}
	if st.WaitingFor != nil {
		out = append(out, fmt.Sprintf("waiting for approval by %s (gate %s)", strings.Join(st.WaitingFor.Roles, " or "), st.WaitingFor.Gate))
	}
	for _, c := range st.Clusters {
		out = append(out, fmt.Sprintf("cluster %s %s release %s health %s%s", c.Name, c.Phase, dash(c.Release), dash(c.Health), suffix(c.Message)))
	}
	for _, g := range st.Gates {
		out = append(out, "gate "+gateLine(g))
	}
	if st.RestoredAt != nil {
		out = append(out, "restored "+restoreLine(st))
	}
	return out
}

func changeLines(last []string, ro *v1.Rollout) []string {
	var out []string
	for _, l := range summaryLines(ro) {
		if !slices.Contains(last, l) {
			out = append(out, l)
		}
	}
	return out
}

func suffix(msg string) string {
	if msg == "" {
		return ""
	}
	return ": " + msg
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func gateLine(g v1.GateResult) string {
	pos := g.Position
	if g.Step != nil {
		pos = fmt.Sprintf("step %d", *g.Step)
	}
	s := fmt.Sprintf("%s/%s %s %s", g.Wave, pos, g.Type, g.Phase)
	if g.ApprovedBy != "" {
		s += " by " + g.ApprovedBy
	}
	return s + suffix(g.Message)
}

func restoreLine(st v1.RolloutStatus) string {
	if st.FailedAt == nil || st.RestoredAt == nil {
		return ""
	}
	return fmt.Sprintf("every touched cluster healthy on its previous release %s after the failure",
		st.RestoredAt.Sub(*st.FailedAt).Round(10*time.Millisecond))
}

// rolloutLines renders a rollout's status for people: a header, the pending approval, then each
// wave with its clusters, the gates, the analyses and the traffic.
func rolloutLines(ro *v1.Rollout, now time.Time) []string {
	st := ro.Status
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	from := st.PreviousRelease
	if from == "" {
		from = "-"
	}
	fmt.Fprintf(tw, "Rollout %s: service %s, %s -> %s\n", ro.Metadata.Name, ro.Spec.Service, from, ro.Spec.Release)
	phase := string(st.Phase)
	if phase == "" {
		phase = string(v1.RolloutPending)
	}
	if st.StartedAt != nil {
		end := now
		if st.FinishedAt != nil {
			end = *st.FinishedAt
		}
		phase += fmt.Sprintf(" (%s)", end.Sub(*st.StartedAt).Round(time.Second))
	}
	fmt.Fprintf(tw, "Phase: %s%s\n", phase, suffix(st.Message))
	if st.WaitingFor != nil {
		fmt.Fprintf(tw, "Waiting for: approval by %s (gate %s): flotilla rollout approve %s\n",
			strings.Join(st.WaitingFor.Roles, " or "), st.WaitingFor.Gate, ro.Metadata.Name)
	}
	byWave := map[string][]v1.RolloutCluster{}
	for _, c := range st.Clusters {
		byWave[c.Wave] = append(byWave[c.Wave], c)
	}
	waves := st.Waves
	for _, c := range st.Clusters {
		if !slices.Contains(waves, c.Wave) {
			waves = append(waves, c.Wave)
		}
	}
	for i, wv := range waves {
		cs := byWave[wv]
		mark := ""
		switch {
		case st.Phase.Terminal():
		case i == st.CurrentWave:
			mark = "  <- current"
		case i < st.CurrentWave:
			mark = "  done"
		}
		done := 0
		for _, c := range cs {
			if c.Phase == v1.ClusterRolloutHealthy {
				done++
			}
		}
		fmt.Fprintf(tw, "Wave %s: %d/%d healthy%s\n", wv, done, len(cs), mark)
		for _, c := range cs {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", c.Name, c.Phase, dash(c.Release), dash(c.Health), c.Message)
		}
	}
	if len(st.Gates) > 0 {
		fmt.Fprintln(tw, "Gates:")
		for _, g := range st.Gates {
			fmt.Fprintf(tw, "  %s\n", gateLine(g))
		}
	}
	if len(st.Analyses) > 0 {
		fmt.Fprintln(tw, "Analyses:")
		for _, a := range st.Analyses {
			fmt.Fprintf(tw, "  %s\t%s\t%s%s\n", a.ID, a.Template, a.Phase, suffix(a.Message))
			for _, m := range a.Metrics {
				vals := make([]string, 0, len(m.Measurements))
				for _, ms := range m.Measurements {
					switch {
					case ms.Value != nil:
						vals = append(vals, fmt.Sprintf("%.4g", *ms.Value))
					case ms.Raw != "":
						vals = append(vals, ms.Raw)
					default:
						vals = append(vals, ms.Phase)
					}
				}
				fmt.Fprintf(tw, "    %s %s\t%s\t%s\n", m.Name, m.Cluster, m.Phase, strings.Join(vals, " "))
			}
		}
	}
	if len(st.Traffic) > 0 {
		parts := make([]string, len(st.Traffic))
		for i, t := range st.Traffic {
			parts[i] = fmt.Sprintf("%s=%d", t.Cluster, t.Weight)
		}
		fmt.Fprintf(tw, "Traffic (%s): %s%s\n", st.Traffic[0].Router, strings.Join(parts, " "), suffix(st.TrafficMessage))
	}
	if st.RestoredAt != nil {
		fmt.Fprintf(tw, "Restored: %s\n", restoreLine(st))
	}
	_ = tw.Flush()
	return strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
}

// rolloutWaiting is the WAITING column of `get rollouts`: the pending approval and who may give it.
func rolloutWaiting(d doc, _ time.Time) string {
	roles, _ := d.get("status.waitingFor.roles").([]any)
	if roles == nil {
		return ""
	}
	names := make([]string, 0, len(roles))
	for _, r := range roles {
		names = append(names, fmt.Sprint(r))
	}
	return "approval by " + strings.Join(names, " or ")
}

// describeRollout adds a rollout's progress to `describe rollout`.
func describeRollout(w io.Writer, ro *v1.Rollout, now time.Time) {
	fmt.Fprintln(w, "Progress:")
	for _, l := range rolloutLines(ro, now) {
		fmt.Fprintf(w, "  %s\n", l)
	}
}
