package rollout

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"

	v1 "flotilla.dev/flotilla/api/v1"
)

var update = flag.Bool("update", false, "rewrite the expected output of testdata/*.txt")

// A script is a list of commands. Each command is a line, an optional
// body, then "----" and the expected output up to a blank line:
//
//	plan service=web release=r2 [date=2026-11-23]   body: YAML {strategy, clusters}
//	<time> <event> [args]                            time: HH:MM[:SS], +DURATION or RFC 3339
//
// Events: start, status CLUSTER[,CLUSTER] RELEASE HEALTH, analysis ID|- RESULT,
// approve USER ROLE[,ROLE], promote, pause, resume, abort, retry, tick,
// rollback [RELEASE], superseded BY. Between commands the state goes
// through JSON, as the runner persists it.
func TestScripts(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts in testdata: %v", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) { runScript(t, f) })
	}
}

type command struct {
	comments []string
	line     string
	body     []string
	output   string
	hasOut   bool
}

func parseScript(t *testing.T, data string) []command {
	t.Helper()
	var cmds []command
	var comments []string
	lines := strings.Split(data, "\n")
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if strings.TrimSpace(l) == "" || strings.HasPrefix(l, "#") {
			comments = append(comments, l)
			continue
		}
		c := command{comments: comments, line: l}
		comments = nil
		for i+1 < len(lines) && lines[i+1] != "----" && strings.TrimSpace(lines[i+1]) != "" {
			i++
			c.body = append(c.body, lines[i])
		}
		if i+1 < len(lines) && lines[i+1] == "----" {
			i++
			c.hasOut = true
			var out []string
			for i+1 < len(lines) && strings.TrimSpace(lines[i+1]) != "" {
				i++
				out = append(out, lines[i])
			}
			c.output = strings.Join(out, "\n")
		}
		cmds = append(cmds, c)
	}
	return cmds
}

type scriptCluster struct {
	Name     string            `json:"name"`
	Labels   map[string]string `json:"labels"`
	Release  string            `json:"release"`
	Weight   *int              `json:"weight"`
	Capacity int               `json:"capacity"`
}

type scriptRun struct {
	t     *testing.T
	state State
	ready bool
	now   time.Time
	date  time.Time
}

func runScript(t *testing.T, file string) {
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	cmds := parseScript(t, string(data))
	r := &scriptRun{t: t, date: time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)}
	var rewritten strings.Builder
	for _, c := range cmds {
		got := r.exec(c)
		for _, cm := range c.comments {
			rewritten.WriteString(cm + "\n")
		}
		rewritten.WriteString(c.line + "\n")
		for _, b := range c.body {
			rewritten.WriteString(b + "\n")
		}
		rewritten.WriteString("----\n" + got + "\n")
		if !*update && (!c.hasOut || got != c.output) {
			t.Errorf("%s: %s: output differs (-want +got):\n%s", file, c.line, cmp.Diff(c.output, got))
		}
	}
	if *update {
		out := strings.TrimRight(rewritten.String(), "\n") + "\n"
		if err := os.WriteFile(file, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func (r *scriptRun) exec(c command) string {
	t := r.t
	t.Helper()
	f := strings.Fields(c.line)
	if f[0] == "plan" {
		return r.plan(f[1:], strings.Join(c.body, "\n"))
	}
	if !r.ready {
		t.Fatalf("%q: no plan yet", c.line)
	}
	if err := r.clock(f[0]); err != nil {
		t.Fatalf("%q: %v", c.line, err)
	}
	evs, err := r.events(f[1:])
	if err != nil {
		t.Fatalf("%q: %v", c.line, err)
	}
	var out []string
	for _, ev := range evs {
		before := r.state.Clone()
		next, acts, err := Step(r.state, ev, r.now)
		if err != nil {
			out = append(out, "error: "+err.Error())
			if diff := cmp.Diff(before, next); diff != "" {
				t.Errorf("%q: state changed on error (-before +after):\n%s", c.line, diff)
			}
			if len(acts) != 0 {
				t.Errorf("%q: actions on error: %v", c.line, acts)
			}
			continue
		}
		for _, a := range acts {
			out = append(out, a.String())
		}
		r.state = roundTrip(t, next)
	}
	out = append(out, compact(r.state)...)
	return strings.Join(out, "\n")
}

func roundTrip(t *testing.T, s State) State {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatalf("marshal state: %v", err)
	}
	var back State
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&back); err != nil {
		t.Fatalf("unmarshal state: %v", err)
	}
	return back
}

func (r *scriptRun) plan(args []string, body string) string {
	t := r.t
	opts := map[string]string{"service": "web", "release": "r2"}
	for _, a := range args {
		k, v, _ := strings.Cut(a, "=")
		opts[k] = v
	}
	if d, ok := opts["date"]; ok {
		var err error
		if r.date, err = time.Parse(time.DateOnly, d); err != nil {
			t.Fatalf("plan date: %v", err)
		}
	}
	r.now = r.date
	var in struct {
		Strategy v1.RolloutStrategySpec `json:"strategy"`
		Clusters []scriptCluster        `json:"clusters"`
	}
	if err := yaml.UnmarshalStrict([]byte(body), &in); err != nil {
		t.Fatalf("plan body: %v", err)
	}
	clusters := make([]ClusterInfo, len(in.Clusters))
	for i, c := range in.Clusters {
		w := 100
		if c.Weight != nil {
			w = *c.Weight
		}
		clusters[i] = ClusterInfo{Name: c.Name, Labels: c.Labels, Release: c.Release, Weight: w, Capacity: c.Capacity}
	}
	p, err := NewPlan(in.Strategy, clusters)
	if err != nil {
		r.ready = false
		return "error: " + err.Error()
	}
	r.state, r.ready = NewState(p, opts["service"], opts["release"]), true
	var out []string
	for i, w := range p.Waves {
		out = append(out, fmt.Sprintf("wave %d %s: %s (maxParallel %d, maxFailures %d, deadline %s)",
			i, w.Name, strings.Join(w.Clusters, " "), w.MaxParallel, w.MaxFailures, w.ProgressDeadline))
	}
	return strings.Join(out, "\n")
}

func (r *scriptRun) clock(s string) error {
	switch {
	case strings.HasPrefix(s, "+"):
		d, err := time.ParseDuration(s[1:])
		if err != nil {
			return err
		}
		r.now = r.now.Add(d)
	case strings.Contains(s, "T"):
		for _, layout := range []string{time.RFC3339, "2006-01-02T15:04"} {
			if tm, err := time.Parse(layout, s); err == nil {
				r.now = tm.UTC()
				r.date = time.Date(tm.Year(), tm.Month(), tm.Day(), 0, 0, 0, 0, time.UTC)
				return nil
			}
		}
		return fmt.Errorf("bad time %q", s)
	default:
		for _, layout := range []string{"15:04:05", "15:04"} {
			if tm, err := time.Parse(layout, s); err == nil {
				r.now = r.date.Add(time.Duration(tm.Hour())*time.Hour + time.Duration(tm.Minute())*time.Minute +
					time.Duration(tm.Second())*time.Second)
				return nil
			}
		}
		return fmt.Errorf("bad time %q", s)
	}
	return nil
}

func (r *scriptRun) events(f []string) ([]Event, error) {
	if len(f) == 0 {
		return nil, errors.New("missing event")
	}
	arg := func(i int) string {
		if i < len(f) {
			return f[i]
		}
		return ""
	}
	switch f[0] {
	case "start":
		return []Event{Start{}}, nil
	case "status":
		if len(f) != 4 {
			return nil, errors.New("status CLUSTER[,CLUSTER] RELEASE HEALTH")
		}
		rel := f[2]
		if rel == "-" {
			rel = ""
		}
		var evs []Event
		for c := range strings.SplitSeq(f[1], ",") {
			evs = append(evs, ClusterStatus{Cluster: c, Release: rel, Health: f[3]})
		}
		return evs, nil
	case "analysis":
		id := arg(1)
		if id == "-" {
			id = r.state.AnalysisID
		}
		return []Event{AnalysisResult{ID: id, Result: arg(2)}}, nil
	case "approve":
		return []Event{Approval{User: arg(1), Roles: strings.Split(arg(2), ",")}}, nil
	case "promote":
		return []Event{Promote{}}, nil
	case "pause":
		return []Event{Pause{}}, nil
	case "resume":
		return []Event{Resume{}}, nil
	case "abort":
		return []Event{Abort{}}, nil
	case "retry":
		return []Event{Retry{}}, nil
	case "tick":
		return []Event{Tick{}}, nil
	case "rollback":
		return []Event{Rollback{To: arg(1)}}, nil
	case "superseded":
		return []Event{Superseded{By: arg(1)}}, nil
	}
	return nil, fmt.Errorf("unknown event %q", f[0])
}

// compact prints the state in a few lines.
func compact(s State) []string {
	pos := "-"
	if s.Wave >= 0 && s.Wave < len(s.Plan.Waves) {
		pos = fmt.Sprintf("%d:%s", s.Wave, s.Plan.Waves[s.Wave].Name)
	}
	step := "-"
	if s.Step >= 0 {
		step = fmt.Sprint(s.Step)
	}
	head := fmt.Sprintf("=> %s wave=%s stage=%s step=%s gate=%d progress=%d/%d/%d", s.Phase, pos, orDash(string(s.Stage)),
		step, s.Gate, s.Progress.Updating, s.Progress.Healthy, s.Progress.Failed)
	if s.Halt != "" {
		head += " halt=" + s.Halt
	}
	out := []string{head}
	var cl []string
	for _, c := range s.Clusters {
		x := fmt.Sprintf("%s=%s:%s", c.Name, c.Phase, orDash(c.Release))
		if c.Health != "" && c.Health != HealthHealthy {
			x += "(" + c.Health + ")"
		}
		cl = append(cl, x)
	}
	out = append(out, "   "+strings.Join(cl, " "))
	if s.Plan.Router != "" {
		var tw []string
		for _, c := range s.Clusters {
			tw = append(tw, fmt.Sprintf("%s=%d", c.Name, c.Weight))
		}
		out = append(out, "   traffic "+strings.Join(tw, " "))
	}
	if n := len(s.Gates); n > 0 {
		g := s.Gates[n-1]
		x := fmt.Sprintf("   last gate %s/%s/%d %s %s", g.Wave, g.Position, g.Index, g.Type, g.Phase)
		if g.Step != nil {
			x = fmt.Sprintf("   last gate %s/step%d/%d %s %s", g.Wave, *g.Step, g.Index, g.Type, g.Phase)
		}
		if g.Message != "" {
			x += ": " + g.Message
		}
		if g.ApprovedBy != "" {
			x += " (by " + g.ApprovedBy + ")"
		}
		out = append(out, x)
	}
	if s.Message != "" {
		out = append(out, "   message "+s.Message)
	}
	return out
}
