package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"sigs.k8s.io/yaml"

	v1 "flotilla.dev/flotilla/api/v1"
)

// Output formats of get.
const (
	outTable = "table"
	outWide  = "wide"
	outYAML  = "yaml"
	outJSON  = "json"
)

func checkOutput(o string) error {
	switch o {
	case outTable, outWide, outYAML, outJSON:
		return nil
	}
	return fmt.Errorf("output format %q: want table, wide, yaml or json", o)
}

// column is one column of a kind's table: its header, whether only -o wide shows it, and how to
// read its cell from the object's JSON form.
type column struct {
	header string
	wide   bool
	cell   func(o doc, now time.Time) string
}

// doc is an object in its generic JSON form.
type doc map[string]any

// get returns the value at a dotted path, or nil.
func (d doc) get(path string) any {
	var cur any = map[string]any(d)
	for _, part := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[part]
	}
	return cur
}

// str returns the value at path as text; missing values print as "<none>" in kubectl's habit.
func (d doc) str(path string) string {
	switch v := d.get(path).(type) {
	case nil:
		return "<none>"
	case string:
		if v == "" {
			return "<none>"
		}
		return v
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	default:
		data, _ := json.Marshal(v)
		return string(data)
	}
}

func (d doc) count(path string) string {
	l, _ := d.get(path).([]any)
	return strconv.Itoa(len(l))
}

func (d doc) time(path string) (time.Time, bool) {
	s, _ := d.get(path).(string)
	t, err := time.Parse(time.RFC3339Nano, s)
	return t, err == nil
}

func field(path string) func(doc, time.Time) string {
	return func(d doc, _ time.Time) string { return d.str(path) }
}

func ageOf(path string) func(doc, time.Time) string {
	return func(d doc, now time.Time) string {
		t, ok := d.time(path)
		if !ok {
			return "<none>"
		}
		return humanAge(now.Sub(t))
	}
}

func shortSHA(path string) func(doc, time.Time) string {
	return func(d doc, _ time.Time) string {
		s := d.str(path)
		if len(s) > 12 && s != "<none>" {
			return s[:12]
		}
		return s
	}
}

// clusterPhase shows a cluster whose agent never reported as Pending.
func clusterPhase(d doc, _ time.Time) string {
	if p := d.str("status.phase"); p != "<none>" {
		return p
	}
	return string(v1.ClusterPending)
}

// shortDigest shows the first 12 hex digits of a sha256:<hex> digest.
func shortDigest(path string) func(doc, time.Time) string {
	return func(d doc, _ time.Time) string {
		s := strings.TrimPrefix(d.str(path), "sha256:")
		if len(s) > 12 && s != "<none>" {
			return s[:12]
		}
		return s
	}
}

func labelsCell(d doc, _ time.Time) string {
	m, _ := d.get("metadata.labels").(map[string]any)
	if len(m) == 0 {
		return "<none>"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%v", k, m[k])
	}
	return strings.Join(parts, ",")
}

func gitRef(d doc, _ time.Time) string {
	for _, k := range []string{"branch", "tag", "semver", "commit"} {
		if s, _ := d.get("spec.git.ref." + k).(string); s != "" {
			return k + ":" + s
		}
	}
	return "<none>"
}

// routerType names the kind of a TrafficRouter: haproxy, gatewayAPI or webhook.
func routerType(d doc, _ time.Time) string {
	for _, k := range []string{v1.RouterHAProxy, v1.RouterGatewayAPI, v1.RouterWebhook} {
		if d.get("spec."+k) != nil {
			return k
		}
	}
	return "<none>"
}

// routerTarget says where a TrafficRouter's weights are set.
func routerTarget(d doc, now time.Time) string {
	switch routerType(d, now) {
	case v1.RouterHAProxy:
		return d.str("spec.haproxy.runtimeAPI") + " backend " + d.str("spec.haproxy.backend")
	case v1.RouterGatewayAPI:
		return d.str("spec.gatewayAPI.cluster") + ":" + d.str("spec.gatewayAPI.httpRoute.namespace") + "/" + d.str("spec.gatewayAPI.httpRoute.name")
	case v1.RouterWebhook:
		return d.str("spec.webhook.url")
	}
	return "<none>"
}

// routerWeights lists the weights last read back from a TrafficRouter as cluster=percent.
func routerWeights(d doc, _ time.Time) string {
	l, _ := d.get("status.weights").([]any)
	var parts []string
	for _, x := range l {
		m, _ := x.(map[string]any)
		w, _ := m["weight"].(float64)
		parts = append(parts, fmt.Sprintf("%v=%d", m["cluster"], int(w)))
	}
	if len(parts) == 0 {
		return "<none>"
	}
	return strings.Join(parts, ",")
}

// humanAge renders a duration as kubectl does: 45s, 5m, 3h, 12d.
func humanAge(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < 2*time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < 2*time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	default:
		return fmt.Sprintf("%dd", int(d.Hours()/24))
	}
}

// columnsOf returns the table columns of kind: NAME first, AGE last, per-kind columns between.
func columnsOf(kind string) []column {
	var mid []column
	switch kind {
	case v1.KindCluster:
		mid = []column{{header: "PHASE", cell: clusterPhase}, {header: "HEALTH", cell: field("status.health")},
			{header: "AGENT", cell: field("status.agentVersion")}, {header: "KUBERNETES", cell: field("status.kubernetesVersion")},
			{header: "LAST SEEN", cell: ageOf("status.lastSeen")}, {header: "DESIRED", wide: true, cell: shortDigest("status.desiredDigest")},
			{header: "APPLIED", wide: true, cell: shortDigest("status.appliedDigest")}, {header: "LABELS", wide: true, cell: labelsCell}}
	case v1.KindSource:
		mid = []column{{header: "URL", cell: field("spec.git.url")}, {header: "REF", cell: gitRef},
			{header: "COMMIT", cell: shortSHA("status.commit.sha")}, {header: "FETCHED", cell: ageOf("status.lastFetched")},
			{header: "ERROR", cell: oneLine("status.message", 60)}, {header: "INTERVAL", wide: true, cell: field("spec.git.interval")},
			{header: "WEBHOOK", wide: true, cell: ageOf("status.lastWebhook.time")},
			{header: "SUBJECT", wide: true, cell: oneLine("status.commit.message", 50)}}
	case v1.KindService:
		mid = []column{{header: "SOURCE", cell: field("spec.source.name")}, {header: "NAMESPACE", cell: field("spec.namespace")},
			{header: "STRATEGY", cell: field("spec.strategy")}, {header: "RELEASE", cell: field("status.latestRelease")},
			{header: "PATH", wide: true, cell: field("spec.source.path")}, {header: "ROLLOUT", wide: true, cell: field("status.activeRollout")},
			{header: "LABELS", wide: true, cell: labelsCell}}
	case v1.KindRolloutStrategy:
		mid = []column{{header: "TYPE", cell: field("spec.type")}, {header: "WAVES", cell: func(d doc, _ time.Time) string { return d.count("spec.waves") }},
			{header: "ON FAILURE", cell: field("spec.onFailure")}, {header: "ROUTER", wide: true, cell: field("spec.trafficRouter")}}
	case v1.KindAnalysisTemplate:
		mid = []column{{header: "METRICS", cell: func(d doc, _ time.Time) string { return d.count("spec.metrics") }}}
	case v1.KindRelease:
		mid = []column{{header: "SERVICE", cell: field("spec.service")}, {header: "COMMIT", cell: shortSHA("spec.commit.sha")},
			{header: "PHASE", cell: field("status.phase")}, {header: "MESSAGE", wide: true, cell: field("status.message")}}
	case v1.KindTrafficRouter:
		mid = []column{{header: "TYPE", cell: routerType}, {header: "TARGET", cell: routerTarget},
			{header: "WEIGHTS", cell: routerWeights}, {header: "TIMEOUT", wide: true, cell: field("spec.timeout")},
			{header: "MESSAGE", wide: true, cell: field("status.message")}}
	case v1.KindRollout:
		mid = []column{{header: "SERVICE", cell: field("spec.service")}, {header: "RELEASE", cell: field("spec.release")},
			{header: "PHASE", cell: field("status.phase")}, {header: "WAVE", cell: field("status.currentWaveName")},
			{header: "WAITING", cell: rolloutWaiting}, {header: "MESSAGE", wide: true, cell: field("status.message")}}
	}
	cols := []column{{header: "NAME", cell: field("metadata.name")}}
	cols = append(cols, mid...)
	return append(cols, column{header: "AGE", cell: ageOf("metadata.creationTimestamp")})
}

// toDoc converts an object to its generic JSON form.
func toDoc(obj v1.Object) (doc, error) {
	data, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", obj.GetTypeMeta().Kind, err)
	}
	var d doc
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, fmt.Errorf("encode %s: %w", obj.GetTypeMeta().Kind, err)
	}
	return d, nil
}

// printObjects writes objs of kind in format. single says the user asked for one object by name,
// so yaml and json print it alone rather than in a list.
func printObjects(w io.Writer, kind string, objs []v1.Object, format string, single bool, now time.Time) error {
	switch format {
	case outJSON, outYAML:
		var v any
		if single && len(objs) == 1 {
			v = objs[0]
		} else {
			items := make([]v1.Object, len(objs))
			copy(items, objs)
			v = map[string]any{"apiVersion": v1.APIVersion, "kind": kind + "List", "items": items}
		}
		data, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return fmt.Errorf("encode: %w", err)
		}
		if format == outYAML {
			if data, err = yaml.JSONToYAML(data); err != nil {
				return fmt.Errorf("encode: %w", err)
			}
			_, err = w.Write(data)
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", data)
		return err
	}
	if len(objs) == 0 {
		_, err := fmt.Fprintf(w, "No %s found.\n", kind+" objects")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	cols := columnsOf(kind)
	var headers []string
	for _, c := range cols {
		if !c.wide || format == outWide {
			headers = append(headers, c.header)
		}
	}
	fmt.Fprintln(tw, strings.Join(headers, "\t"))
	for _, o := range objs {
		d, err := toDoc(o)
		if err != nil {
			return err
		}
		var cells []string
		for _, c := range cols {
			if !c.wide || format == outWide {
				cells = append(cells, c.cell(d, now))
			}
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	return tw.Flush()
}
