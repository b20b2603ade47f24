package cli

import (
	"github.com/spf13/cobra"

	"flotilla.dev/flotilla/internal/demo"
)

func newDemoCmd(s Streams) *cobra.Command {
	var (
		opts demo.Options
	)
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the demonstration: a control plane, a local fleet with agents, Git, Prometheus, HAProxy and canary rollouts",
		Long: `Run Flotilla's demonstration on this machine, without Docker or a cloud account: a control plane
on SQLite, a local fleet of four real Kubernetes API servers (a canary and two regions) with one
agent each, a Git repository holding a sample application served by one backend per cluster behind
an HAProxy with steady user traffic, and a Prometheus scraping the application's request metrics. A
good release passes the canary's traffic steps and analysis and reaches every wave; a bad one fails
the analysis at the canary and is rolled back by itself, traffic first. The run is narrated here;
the dashboard URL and a login token are printed. Ctrl-C stops everything.

It needs the local fleet program (make fleet) and the prometheus, haproxy and git commands; ` + "`make demo`" + `
builds and installs what is missing.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.Out = s.Out
			return demo.Run(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Dir, "dir", ".demo", "directory for the demo's state and logs (cleared at start)")
	f.StringVar(&opts.Listen, "listen", "127.0.0.1:8080", "address of the control plane (a free port is used when it is taken)")
	f.BoolVar(&opts.ExitAfterScenario, "exit-after-scenario", false, "stop once the scenario is over, failing if it went wrong (for tests)")
	f.DurationVar(&opts.StepTimeout, "step-timeout", 0, "longest wait for each step of the scenario (default 5m)")
	return cmd
}
