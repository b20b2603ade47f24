package cli

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	v1 "flotilla.dev/flotilla/api/v1"
)

// Agent connectivity as describe shows it: an agent that has not reported for disconnectedAfter
// is taken as disconnected, as the server does for the cluster's phase.
const disconnectedAfter = 90 * time.Second

// describeObjects bounds the object rows of `describe cluster`: objects that are not healthy or
// have drifted come first and are always shown; healthy ones fill up to this many rows.
const describeObjects = 50

// describeCluster adds the agent's details, the services and their objects to `describe cluster`.
func describeCluster(w io.Writer, cl *v1.Cluster, rep *v1.AgentReport, now time.Time) {
	row := func(k, v string) { fmt.Fprintf(w, "  %-16s%s\n", k+":", v) }
	fmt.Fprintln(w, "Agent:")
	if rep == nil {
		fmt.Fprintln(w, "  <no report yet: run the agent printed by 'flotilla cluster register'>")
		return
	}
	r := rep.Report
	since := now.Sub(rep.LastHeartbeat)
	conn := "Connected"
	if since > disconnectedAfter {
		conn = "Disconnected"
	}
	row("Connectivity", fmt.Sprintf("%s (last heartbeat %s ago, %s)", conn, humanAge(since), rep.LastHeartbeat.UTC().Format(time.RFC3339)))
	row("Version", orNone(r.AgentVersion))
	row("Kubernetes", orNone(r.KubernetesVersion))
	row("Lease epoch", fmt.Sprint(rep.Epoch))
	row("Health", orNone(r.Health))
	sync := "in sync"
	if r.AppliedDigest != r.DesiredDigest {
		sync = "not yet applied in full"
	}
	row("Desired state", fmt.Sprintf("%s, applied %s (%s)", digest12(r.DesiredDigest), digest12(r.AppliedDigest), sync))
	if p := r.Offline; p != nil {
		until := "still offline"
		if !p.Until.IsZero() {
			until = fmt.Sprintf("until %s, %s", p.Until.UTC().Format(time.RFC3339), humanAge(p.Until.Sub(p.Since)))
		}
		row("Last offline", fmt.Sprintf("from %s %s: %d corrections, %d applies, %d errors, %d restarts",
			p.Since.UTC().Format(time.RFC3339), until, p.Corrections, p.Applies, p.Errors, p.Restarts))
		for _, ev := range p.Events[max(0, len(p.Events)-5):] {
			fmt.Fprintf(w, "  %-16s%s %s %s\n", "", ev.Time.UTC().Format(time.RFC3339), ev.Reason, strings.TrimSpace(ev.Service+" "+ev.Object+" "+ev.Message))
		}
	}

	fmt.Fprintln(w, "Services:")
	if len(r.Services) == 0 {
		fmt.Fprintln(w, "  <none>")
	} else {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  SERVICE\tRELEASE\tBUNDLE\tHEALTH\tOBJECTS\tDRIFTED\tERRORS")
		for _, sr := range r.Services {
			drifted := 0
			for _, o := range sr.Objects {
				if o.Drifted {
					drifted++
				}
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%d\t%d\t%d\n", sr.Service, orNone(sr.Release), digest12(sr.Bundle), orNone(sr.Health), len(sr.Objects), drifted, len(sr.Errors))
		}
		tw.Flush()
	}

	type objRow struct {
		svc string
		o   v1.ObjectReport
	}
	var rows []objRow
	for _, sr := range r.Services {
		for _, o := range sr.Objects {
			rows = append(rows, objRow{sr.Service, o})
		}
	}
	notable := func(x objRow) bool { return x.o.Drifted || x.o.Health != v1.HealthHealthy }
	slices.SortStableFunc(rows, func(a, b objRow) int {
		switch na, nb := notable(a), notable(b); {
		case na && !nb:
			return -1
		case nb && !na:
			return 1
		}
		return 0
	})
	shown := 0
	for shown < len(rows) && (shown < describeObjects || notable(rows[shown])) {
		shown++
	}
	fmt.Fprintln(w, "Objects:")
	if len(rows) == 0 {
		fmt.Fprintln(w, "  <none>")
	} else {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  SERVICE\tOBJECT\tHEALTH\tDRIFT\tMESSAGE")
		for _, x := range rows[:shown] {
			drift := "-"
			if x.o.Drifted {
				drift = "drifted"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", x.svc, objectName(x.o), x.o.Health, drift, x.o.Message)
		}
		tw.Flush()
		if n := len(rows) - shown; n > 0 {
			fmt.Fprintf(w, "  ... and %d more, healthy and without drift (all of them: GET /api/v1/clusters/%s/agent)\n", n, cl.Metadata.Name)
		}
	}
	var errs []string
	for _, sr := range r.Services {
		for _, e := range sr.Errors {
			errs = append(errs, strings.TrimSpace(sr.Service+" "+e.Object)+": "+e.Message)
		}
	}
	for _, e := range r.Errors {
		errs = append(errs, strings.TrimSpace(e.Object+" ")+": "+e.Message)
	}
	if len(errs) > 0 {
		fmt.Fprintln(w, "Errors:")
		for _, e := range errs {
			fmt.Fprintf(w, "  %s\n", e)
		}
	}
}

// objectName names a reported object as Kind[.group]/[namespace/]name.
func objectName(o v1.ObjectReport) string {
	var b strings.Builder
	b.WriteString(o.Kind)
	if o.Group != "" {
		b.WriteString("." + o.Group)
	}
	b.WriteString("/")
	if o.Namespace != "" {
		b.WriteString(o.Namespace + "/")
	}
	b.WriteString(o.Name)
	return b.String()
}

func digest12(d string) string {
	d = strings.TrimPrefix(d, "sha256:")
	if d == "" {
		return "<none>"
	}
	return d[:min(12, len(d))]
}

func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}
