package rollout

import (
	"fmt"
	"slices"
	"strings"
	"text/template"
	"time"

	"k8s.io/apimachinery/pkg/labels"

	v1 "flotilla.dev/flotilla/api/v1"
)

// ClusterInfo is what the planner needs to know about one targeted cluster.
type ClusterInfo struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels,omitempty"`
	// Release is the release the cluster is assigned now: the target of a
	// rollback ("" when the service is new there).
	Release string `json:"release,omitempty"`
	// Weight is the traffic weight (0 to 100) the router gives the cluster
	// now. It is restored after a drain, after the canary and on rollback,
	// and it tells which blue/green group is live.
	Weight int `json:"weight"`
	// Capacity is the largest share of the router's traffic, in percent,
	// the cluster can carry (Cluster.spec.traffic); 0 means undeclared,
	// which counts as 100. A drain waits until the clusters left in
	// rotation can carry the traffic (see internal/traffic/capacity).
	Capacity int `json:"capacity,omitempty"`
}

// Gate kinds.
const (
	GateApproval = "approval"
	GateBake     = "bake"
	GateAnalysis = "analysis"
	GateWindow   = "window"
	GateDeadline = "deadline"
)

// PlannedGate is one gate with its durations parsed.
type PlannedGate struct {
	Kind     string          `json:"kind"`
	Roles    []string        `json:"roles,omitempty"`
	Bake     time.Duration   `json:"bake,omitempty"`
	Analysis *v1.AnalysisRef `json:"analysis,omitempty"`
}

// PlannedStep is one canary traffic step; its gates are its analyses
// followed by its bake, run one after the other.
type PlannedStep struct {
	Weight int           `json:"weight"`
	Gates  []PlannedGate `json:"gates,omitempty"`
}

// PlannedWave is a wave with its clusters resolved (sorted by name) and
// its limits turned into numbers.
type PlannedWave struct {
	Name     string   `json:"name"`
	Clusters []string `json:"clusters"`
	// Members holds the index in Plan.Clusters of each of Clusters.
	Members          []int         `json:"members"`
	MaxParallel      int           `json:"maxParallel"`
	MaxFailures      int           `json:"maxFailures"`
	Drain            bool          `json:"drain,omitempty"`
	ProgressDeadline time.Duration `json:"progressDeadline"`
	Steps            []PlannedStep `json:"steps,omitempty"`
	Before           []PlannedGate `json:"before,omitempty"`
	After            []PlannedGate `json:"after,omitempty"`
}

// Plan is a strategy applied to a set of clusters. Blue/green plans have
// two waves: the idle group (its After gates are the verify gates) and the
// live group, updated after the hold only when AfterHold is "update".
type Plan struct {
	Type      v1.StrategyType  `json:"type"`
	Router    string           `json:"router,omitempty"`
	OnFailure v1.FailurePolicy `json:"onFailure"`
	Windows   []v1.TimeWindow  `json:"windows,omitempty"`
	Waves     []PlannedWave    `json:"waves"`
	Hold      time.Duration    `json:"hold,omitempty"`
	AfterHold string           `json:"afterHold,omitempty"`
	// Clusters is every targeted cluster, sorted by name.
	Clusters []ClusterInfo `json:"clusters"`
}

// String summarises the plan as "type; wave: clusters; ...".
func (p Plan) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s", p.Type)
	for _, w := range p.Waves {
		fmt.Fprintf(&b, "; %s: %s", w.Name, strings.Join(w.Clusters, ","))
	}
	return b.String()
}

// NewPlan assigns each targeted cluster to the first wave whose selector
// matches it (for blue/green: the idle group first, then the live one) and
// resolves the strategy's limits. A cluster in no wave is an error naming
// it. The strategy is defaulted on a copy; the caller's value is untouched.
func NewPlan(strategy v1.RolloutStrategySpec, clusters []ClusterInfo) (Plan, error) {
	spec := cloneSpec(strategy)
	spec.Default()
	p := Plan{Type: spec.Type, Router: spec.TrafficRouter, OnFailure: spec.OnFailure, Windows: spec.Windows}
	p.Clusters = slices.Clone(clusters)
	slices.SortFunc(p.Clusters, func(a, b ClusterInfo) int { return strings.Compare(a.Name, b.Name) })
	for i, c := range p.Clusters {
		if c.Name == "" {
			return Plan{}, fmt.Errorf("plan: a cluster has no name: %w", ErrInvalidStrategy)
		}
		if c.Weight < 0 || c.Weight > 100 {
			return Plan{}, fmt.Errorf("plan: cluster %q: weight must be from 0 to 100, got %d: %w", c.Name, c.Weight, ErrInvalidStrategy)
		}
		if c.Capacity < 0 || c.Capacity > 100 {
			return Plan{}, fmt.Errorf("plan: cluster %q: capacity must be from 0 to 100, got %d: %w", c.Name, c.Capacity, ErrInvalidStrategy)
		}
		if i > 0 && c.Name == p.Clusters[i-1].Name {
			return Plan{}, fmt.Errorf("plan: cluster %q listed twice: %w", p.Clusters[i].Name, ErrInvalidStrategy)
		}
	}
	for i, w := range spec.Windows {
		if err := checkWindow(w); err != nil {
			return Plan{}, fmt.Errorf("plan: windows[%d]: %w: %w", i, err, ErrInvalidStrategy)
		}
	}
	var waves []v1.Wave
	switch spec.Type {
	case v1.StrategyRolling, v1.StrategyCanary:
		if len(spec.Waves) == 0 {
			return Plan{}, fmt.Errorf("plan: %s strategy has no waves: %w", spec.Type, ErrInvalidStrategy)
		}
		waves = spec.Waves
	case v1.StrategyBlueGreen:
		bg := spec.BlueGreen
		if bg == nil {
			return Plan{}, fmt.Errorf("plan: blueGreen strategy without blueGreen settings: %w", ErrInvalidStrategy)
		}
		if p.Router == "" {
			return Plan{}, fmt.Errorf("plan: blueGreen needs a trafficRouter: %w", ErrInvalidStrategy)
		}
		hold, err := bg.Hold.Parse()
		if err != nil {
			return Plan{}, fmt.Errorf("plan: blueGreen.hold: %w: %w", err, ErrInvalidStrategy)
		}
		p.Hold, p.AfterHold = hold, bg.AfterHold
		blue := v1.Wave{Name: "blue", Clusters: bg.Groups.Blue, MaxParallel: "100%", ProgressDeadline: v1.DefaultProgressDeadline}
		green := v1.Wave{Name: "green", Clusters: bg.Groups.Green, MaxParallel: "100%", ProgressDeadline: v1.DefaultProgressDeadline}
		waves = []v1.Wave{blue, green}
	default:
		return Plan{}, fmt.Errorf("plan: unsupported strategy type %q: %w", spec.Type, ErrInvalidStrategy)
	}

	sels := make([]labels.Selector, len(waves))
	for i, w := range waves {
		if w.Clusters == nil {
			return Plan{}, fmt.Errorf("plan: wave %q: clusters selector is required: %w", w.Name, ErrInvalidStrategy)
		}
		sel, err := w.Clusters.Selector()
		if err != nil {
			return Plan{}, fmt.Errorf("plan: wave %q: %w: %w", w.Name, err, ErrInvalidStrategy)
		}
		sels[i] = sel
	}
	members := make([][]string, len(waves))
	indexes := make([][]int, len(waves))
	var unplaced []string
	for ci, c := range p.Clusters {
		placed := false
		for i, sel := range sels {
			if sel.Matches(labels.Set(c.Labels)) {
				members[i] = append(members[i], c.Name)
				indexes[i] = append(indexes[i], ci)
				placed = true
				break
			}
		}
		if !placed {
			unplaced = append(unplaced, c.Name)
		}
	}
	if len(unplaced) > 0 {
		return Plan{}, fmt.Errorf("plan: %s: %w", quoteAll(unplaced), ErrUnplacedCluster)
	}

	for i, w := range waves {
		pw, err := planWave(spec, i, w, members[i])
		if err != nil {
			return Plan{}, fmt.Errorf("plan: wave %q: %w: %w", w.Name, err, ErrInvalidStrategy)
		}
		pw.Members = indexes[i]
		p.Waves = append(p.Waves, pw)
	}
	if spec.Type == v1.StrategyBlueGreen {
		idle, live := 1, 0 // green idle unless green carries more traffic
		if groupWeight(p, p.Waves[1].Clusters) > groupWeight(p, p.Waves[0].Clusters) {
			idle, live = 0, 1
		}
		p.Waves = []PlannedWave{p.Waves[idle], p.Waves[live]}
		gates, err := planGates(spec.BlueGreen.Verify)
		if err != nil {
			return Plan{}, fmt.Errorf("plan: blueGreen.verify: %w: %w", err, ErrInvalidStrategy)
		}
		p.Waves[0].After = gates
	}
	if spec.Type == v1.StrategyCanary && len(p.Waves[0].Steps) == 0 {
		return Plan{}, fmt.Errorf("plan: canary wave %q has no traffic steps: %w", p.Waves[0].Name, ErrInvalidStrategy)
	}
	if spec.Type == v1.StrategyCanary && len(p.Waves[0].Clusters) == 0 {
		return Plan{}, fmt.Errorf("plan: canary wave %q selects no cluster: %w", p.Waves[0].Name, ErrInvalidStrategy)
	}
	if spec.Type == v1.StrategyBlueGreen {
		for _, w := range p.Waves {
			if len(w.Clusters) == 0 {
				return Plan{}, fmt.Errorf("plan: blueGreen group %q selects no cluster: %w", w.Name, ErrInvalidStrategy)
			}
		}
	}
	return p, nil
}

func planWave(spec v1.RolloutStrategySpec, i int, w v1.Wave, members []string) (PlannedWave, error) {
	mp := w.MaxParallel
	if mp == "" {
		mp = v1.DefaultMaxParallel
	}
	n, err := mp.Resolve(len(members))
	if err != nil {
		return PlannedWave{}, fmt.Errorf("maxParallel: %w", err)
	}
	pd := w.ProgressDeadline
	if pd == "" {
		pd = v1.DefaultProgressDeadline
	}
	deadline, err := pd.Parse()
	if err != nil || deadline <= 0 {
		return PlannedWave{}, fmt.Errorf("progressDeadline %q must be a positive duration", pd)
	}
	if w.MaxFailures < 0 {
		return PlannedWave{}, fmt.Errorf("maxFailures must not be negative, got %d", w.MaxFailures)
	}
	if (w.Drain || len(w.Steps) > 0) && spec.TrafficRouter == "" {
		return PlannedWave{}, fmt.Errorf("drain and traffic steps need a trafficRouter")
	}
	if len(w.Steps) > 0 && (spec.Type != v1.StrategyCanary || i != 0) {
		return PlannedWave{}, fmt.Errorf("only the first wave of a canary strategy may have traffic steps")
	}
	pw := PlannedWave{Name: w.Name, Clusters: members, MaxParallel: max(n, 1), MaxFailures: w.MaxFailures,
		Drain: w.Drain, ProgressDeadline: deadline}
	if pw.Before, err = planGates(w.Before); err != nil {
		return PlannedWave{}, fmt.Errorf("before: %w", err)
	}
	if pw.After, err = planGates(w.After); err != nil {
		return PlannedWave{}, fmt.Errorf("after: %w", err)
	}
	last := 0
	for j, st := range w.Steps {
		if st.Weight <= last || st.Weight > 100 {
			return PlannedWave{}, fmt.Errorf("steps[%d].weight %d must be above %d and at most 100", j, st.Weight, last)
		}
		last = st.Weight
		ps := PlannedStep{Weight: st.Weight}
		for k := range st.Analysis {
			a := st.Analysis[k]
			if err := checkArgs(a); err != nil {
				return PlannedWave{}, fmt.Errorf("steps[%d].analysis[%d]: %w", j, k, err)
			}
			ps.Gates = append(ps.Gates, PlannedGate{Kind: GateAnalysis, Analysis: &a})
		}
		bake, err := st.Bake.Parse()
		if err != nil {
			return PlannedWave{}, fmt.Errorf("steps[%d].bake: %w", j, err)
		}
		if bake > 0 {
			ps.Gates = append(ps.Gates, PlannedGate{Kind: GateBake, Bake: bake})
		}
		pw.Steps = append(pw.Steps, ps)
	}
	return pw, nil
}

func planGates(gates []v1.Gate) ([]PlannedGate, error) {
	var out []PlannedGate
	for i, g := range gates {
		var pg PlannedGate
		set := 0
		if g.Approval != nil {
			set++
			if len(g.Approval.Roles) == 0 {
				return nil, fmt.Errorf("[%d].approval.roles must name at least one role", i)
			}
			pg = PlannedGate{Kind: GateApproval, Roles: slices.Clone(g.Approval.Roles)}
		}
		if g.Bake != "" {
			set++
			d, err := g.Bake.Parse()
			if err != nil || d <= 0 {
				return nil, fmt.Errorf("[%d].bake %q must be a positive duration", i, g.Bake)
			}
			pg = PlannedGate{Kind: GateBake, Bake: d}
		}
		if g.Analysis != nil {
			set++
			a := *g.Analysis
			if err := checkArgs(a); err != nil {
				return nil, fmt.Errorf("[%d].analysis: %w", i, err)
			}
			pg = PlannedGate{Kind: GateAnalysis, Analysis: &a}
		}
		if set != 1 {
			return nil, fmt.Errorf("[%d] must set exactly one of approval, bake or analysis, has %d", i, set)
		}
		out = append(out, pg)
	}
	return out, nil
}

func checkArgs(a v1.AnalysisRef) error {
	if a.Template == "" {
		return fmt.Errorf("template is required")
	}
	for _, k := range sortedKeys(a.Args) {
		if _, err := template.New(k).Option("missingkey=error").Parse(a.Args[k]); err != nil {
			return fmt.Errorf("args[%s]: %w", k, err)
		}
	}
	return nil
}

func groupWeight(p Plan, names []string) int {
	total := 0
	for _, n := range names {
		if i, ok := p.index(n); ok {
			total += p.Clusters[i].Weight
		}
	}
	return total
}

// index finds a cluster by name in the sorted cluster list.
func (p Plan) index(name string) (int, bool) {
	return slices.BinarySearchFunc(p.Clusters, name, func(c ClusterInfo, n string) int { return strings.Compare(c.Name, n) })
}

func cloneSpec(s v1.RolloutStrategySpec) v1.RolloutStrategySpec {
	s.Windows = slices.Clone(s.Windows)
	s.Waves = slices.Clone(s.Waves)
	if s.BlueGreen != nil {
		bg := *s.BlueGreen
		s.BlueGreen = &bg
	}
	return s
}

func quoteAll(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(q, ", ")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
