package demo

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	v1 "flotilla.dev/flotilla/api/v1"
)

// narrator turns changes of rollouts, releases and sources into one line each for a person
// watching the terminal. It remembers what it said, so a repeated state says nothing.
type narrator struct {
	out   io.Writer
	start time.Time

	mu       sync.Mutex
	rollouts map[string]*v1.RolloutStatus
	measured map[string]int // analysis id/metric/cluster -> measurements told
	releases map[string]bool
	sources  map[string]string
}

func newNarrator(out io.Writer) *narrator {
	return &narrator{out: out, start: time.Now(), rollouts: map[string]*v1.RolloutStatus{},
		measured: map[string]int{}, releases: map[string]bool{}, sources: map[string]string{}}
}

func (n *narrator) say(format string, args ...any) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.sayLocked(format, args...)
}

func (n *narrator) sayLocked(format string, args ...any) {
	el := time.Since(n.start).Truncate(time.Second)
	fmt.Fprintf(n.out, "[%6s] %s\n", el, fmt.Sprintf(format, args...))
}

// source tells of a new commit seen or a fetch error.
func (n *narrator) source(s *v1.Source) {
	n.mu.Lock()
	defer n.mu.Unlock()
	key := s.Status.Message
	if s.Status.Commit != nil {
		key = s.Status.Commit.SHA + key
	}
	if key == "" || n.sources[s.Metadata.Name] == key {
		return
	}
	n.sources[s.Metadata.Name] = key
	if s.Status.Commit != nil {
		n.sayLocked("source %s: commit %s %q", s.Metadata.Name, short(s.Status.Commit.SHA), firstLine(s.Status.Commit.Message))
	}
	if s.Status.Message != "" {
		n.sayLocked("source %s: %s", s.Metadata.Name, s.Status.Message)
	}
}

// release tells of a release cut.
func (n *narrator) release(r *v1.Release) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.releases[r.Metadata.Name] {
		return
	}
	n.releases[r.Metadata.Name] = true
	n.sayLocked("release %s of %s cut from commit %s %q: %d bundle(s) for %d cluster(s)", r.Metadata.Name, r.Spec.Service,
		short(r.Spec.Commit.SHA), firstLine(r.Spec.Commit.Message), len(r.Status.Bundles), countClusters(r))
}

// rollout tells what changed in a rollout since the last call.
func (n *narrator) rollout(r *v1.Rollout) {
	n.mu.Lock()
	defer n.mu.Unlock()
	name, st := r.Metadata.Name, r.Status
	prev := n.rollouts[name]
	if prev == nil {
		prev = &v1.RolloutStatus{CurrentWave: -2}
		n.sayLocked("rollout %s: %s to release %s", name, r.Spec.Service, r.Spec.Release)
	}
	if st.CurrentWaveName != "" && st.CurrentWaveName != prev.CurrentWaveName {
		n.sayLocked("rollout %s: wave %q begins", name, st.CurrentWaveName)
	}
	before := map[string]v1.RolloutCluster{}
	for _, c := range prev.Clusters {
		before[c.Name] = c
	}
	for _, c := range st.Clusters {
		b := before[c.Name]
		if c.Phase != b.Phase && c.Phase != v1.ClusterRolloutPending {
			msg := ""
			if c.Message != "" {
				msg = ": " + c.Message
			}
			n.sayLocked("  %-10s %-10s %s%s", c.Name, c.Phase, c.Release, msg)
		}
	}
	gatesBefore := len(prev.Gates)
	for i, g := range st.Gates {
		if i < gatesBefore && prev.Gates[i].Phase == g.Phase {
			continue
		}
		if g.Phase == v1.GatePending {
			continue
		}
		who := ""
		if g.ApprovedBy != "" {
			who = " by " + g.ApprovedBy
		}
		msg := ""
		if g.Message != "" {
			msg = ": " + g.Message
		}
		n.sayLocked("  gate %s %s of wave %s: %s%s%s", g.Type, g.Position, g.Wave, g.Phase, who, msg)
	}
	for _, a := range st.Analyses {
		for _, m := range a.Metrics {
			key := name + "/" + a.ID + "/" + m.Name + "/" + m.Cluster
			for _, ms := range m.Measurements[min(n.measured[key], len(m.Measurements)):] {
				val := ms.Raw
				if ms.Value != nil {
					val = fmt.Sprintf("%.4f", *ms.Value)
				}
				mark := map[string]string{v1.MeasurementSuccessful: "ok", v1.MeasurementFailed: "FAILED"}[ms.Phase]
				if mark == "" {
					mark = strings.ToLower(ms.Phase)
				}
				n.sayLocked("  analysis %s on %s: %s = %s (want %s) %s", a.Template, m.Cluster, m.Name, val, m.Condition, mark)
			}
			n.measured[key] = len(m.Measurements)
		}
	}
	if traffic := weights(st.Traffic); traffic != "" && traffic != weights(prev.Traffic) {
		n.sayLocked("  traffic: %s", traffic)
	}
	if st.Phase != prev.Phase {
		msg := ""
		if st.Message != "" {
			msg = ": " + st.Message
		}
		n.sayLocked("rollout %s: %s%s", name, st.Phase, msg)
	}
	cp := st
	n.rollouts[name] = &cp
}

// weights renders traffic weights as "router: cluster=weight ...".
func weights(ws []v1.TrafficWeight) string {
	var b strings.Builder
	for i, w := range ws {
		if i == 0 || ws[i-1].Router != w.Router {
			if i > 0 {
				b.WriteString("; ")
			}
			b.WriteString(w.Router + ":")
		}
		fmt.Fprintf(&b, " %s=%d%%", w.Cluster, w.Weight)
	}
	return b.String()
}

func countClusters(r *v1.Release) int {
	n := 0
	for _, b := range r.Status.Bundles {
		n += len(b.Clusters)
	}
	return n
}

func short(sha string) string {
	if len(sha) > 8 {
		return sha[:8]
	}
	return sha
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}
