package runner

import (
	"context"
	"errors"
	"fmt"
	"strings"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/internal/rollout"
	"flotilla.dev/flotilla/internal/store"
)

// ErrPlan wraps every reason a rollout cannot be planned (missing service,
// release or strategy, or the engine's own plan errors).
var ErrPlan = errors.New("cannot plan rollout")

// AllAtOnce is the strategy of a service that names none: one wave with
// every targeted cluster updated at once.
func AllAtOnce() v1.RolloutStrategySpec {
	return v1.RolloutStrategySpec{Type: v1.StrategyRolling, Waves: []v1.Wave{
		{Name: "all", Clusters: &v1.LabelSelector{}, MaxParallel: "100%"}}}
}

// PlanRequest names what to plan: a release of a service and, optionally,
// the strategy (inline wins over named; with neither the service's own
// strategy, or AllAtOnce).
type PlanRequest struct {
	Service      string
	Release      string
	Strategy     string
	StrategySpec *v1.RolloutStrategySpec
	// Router, when set, reads the weights in force from the strategy's
	// traffic router; without it, or when the router cannot say (a webhook
	// router before its first change), capacities stand in for them.
	Router WeightReader
}

// WeightReader reads the weights (0-100) a traffic router gives clusters
// now; internal/traffic.Manager implements it.
type WeightReader interface {
	Weights(ctx context.Context, router string, clusters []string) ([]v1.TrafficWeight, error)
}

// Planned is a plan and the strategy it came from.
type Planned struct {
	Plan rollout.Plan
	// StrategyName is the RolloutStrategy used, "inline" or "" (all at once).
	StrategyName string
	// Weights says where the clusters' weights come from (with a router).
	Weights string
}

// PlanFor plans a rollout from the store: the targeted clusters are those
// the release has a bundle for that match the service's placement; each
// cluster's current assignment of the service is its previous release, its
// capacity is the one its spec.traffic gives the strategy's router (0
// without an entry), at most 100, and its weight is the one the router
// gives it now (req.Router), or its capacity when the router cannot say.
func PlanFor(ctx context.Context, st store.Store, req PlanRequest) (*Planned, error) {
	svcObj, err := st.Get(ctx, v1.KindService, req.Service)
	if err != nil {
		return nil, fmt.Errorf("%w: service %s: %w", ErrPlan, req.Service, err)
	}
	var svc v1.ServiceSpec
	if err := decodeInto(svcObj, &svc, nil); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPlan, err)
	}
	relObj, err := st.Get(ctx, v1.KindRelease, req.Release)
	if err != nil {
		return nil, fmt.Errorf("%w: release %s: %w", ErrPlan, req.Release, err)
	}
	var rel v1.Release
	if err := decodeInto(relObj, &rel.Spec, &rel.Status); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPlan, err)
	}
	if rel.Spec.Service != req.Service {
		return nil, fmt.Errorf("%w: release %s is a release of service %q, not %q", ErrPlan, req.Release, rel.Spec.Service, req.Service)
	}
	out := &Planned{}
	var spec v1.RolloutStrategySpec
	name := req.Strategy
	if name == "" && req.StrategySpec == nil {
		name = svc.Strategy
	}
	switch {
	case req.StrategySpec != nil:
		spec, out.StrategyName = *req.StrategySpec, "inline"
	case name != "":
		o, err := st.Get(ctx, v1.KindRolloutStrategy, name)
		if err != nil {
			return nil, fmt.Errorf("%w: strategy %s: %w", ErrPlan, name, err)
		}
		if err := decodeInto(o, &spec, nil); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrPlan, err)
		}
		out.StrategyName = name
	default:
		spec = AllAtOnce()
	}
	sel := svc.Placement.ClusterSelector
	if sel == nil {
		sel = rel.Spec.ServiceSpec.Placement.ClusterSelector
	}
	var clusters []rollout.ClusterInfo
	opts := store.ListOptions{Limit: 1000}
	for {
		l, err := st.List(ctx, v1.KindCluster, opts)
		if err != nil {
			return nil, fmt.Errorf("%w: list clusters: %w", ErrPlan, err)
		}
		for _, o := range l.Items {
			if rel.Status.BundleFor(o.Name) == "" || sel == nil || !sel.Matches(o.Labels) {
				continue
			}
			var cs v1.ClusterSpec
			if err := decodeInto(o, &cs, nil); err != nil {
				return nil, fmt.Errorf("%w: %w", ErrPlan, err)
			}
			ci := rollout.ClusterInfo{Name: o.Name, Labels: o.Labels}
			for _, tr := range cs.Traffic {
				if spec.TrafficRouter != "" && tr.Router == spec.TrafficRouter {
					ci.Weight = min(max(tr.Capacity, 0), 100)
					if tr.Capacity == 0 {
						ci.Weight = v1.DefaultCapacity
					}
					ci.Capacity = ci.Weight
				}
			}
			ds, err := st.Desired(ctx, o.Name)
			if err != nil {
				return nil, fmt.Errorf("%w: %w", ErrPlan, err)
			}
			for _, a := range ds.Assignments {
				if a.Service == req.Service {
					ci.Release = a.Release
				}
			}
			clusters = append(clusters, ci)
		}
		if l.Continue == "" {
			break
		}
		opts.Continue = l.Continue
	}
	if spec.TrafficRouter != "" && len(clusters) > 0 {
		out.Weights = routerWeights(ctx, req.Router, spec.TrafficRouter, clusters)
	}
	if len(clusters) == 0 {
		return nil, fmt.Errorf("%w: release %s targets no cluster (none has a bundle of it and matches service %s's placement)", ErrPlan, req.Release, req.Service)
	}
	p, err := rollout.NewPlan(spec, clusters)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPlan, err)
	}
	out.Plan = p
	return out, nil
}

// routerWeights sets the clusters' weights to those the router gives
// them now and says so; when it cannot, the capacities stay and it says
// why.
func routerWeights(ctx context.Context, wr WeightReader, router string, clusters []rollout.ClusterInfo) string {
	if wr == nil {
		return "from capacities (router " + router + " not read)"
	}
	names := make([]string, 0, len(clusters))
	for _, c := range clusters {
		if c.Capacity > 0 {
			names = append(names, c.Name) // clusters without a backend have no weight to read
		}
	}
	if len(names) == 0 {
		return "none: no cluster has a backend in router " + router
	}
	ws, err := wr.Weights(ctx, router, names)
	if err != nil {
		return "from capacities: router " + router + " cannot say: " + err.Error()
	}
	got := map[string]int{}
	for _, w := range ws {
		got[w.Cluster] = min(max(w.Weight, 0), 100)
	}
	for _, n := range names {
		if _, ok := got[n]; !ok {
			return "from capacities: router " + router + " gave no weight for cluster " + n
		}
	}
	for i := range clusters {
		if w, ok := got[clusters[i].Name]; ok {
			clusters[i].Weight = w
		}
	}
	return "read from router " + router
}

// Describe renders the plan for people (`flotilla rollout plan`).
func (p *Planned) Describe(service, release string) v1.RolloutPlan {
	out := v1.RolloutPlan{Service: service, Release: release, Strategy: p.StrategyName, Type: p.Plan.Type,
		TrafficRouter: p.Plan.Router, OnFailure: p.Plan.OnFailure, Weights: p.Weights, Waves: []v1.PlanWave{}}
	for _, w := range p.Plan.Waves {
		pw := v1.PlanWave{Name: w.Name, MaxParallel: w.MaxParallel, MaxFailures: w.MaxFailures, Drain: w.Drain,
			ProgressDeadline: w.ProgressDeadline.String(), Clusters: []v1.PlanCluster{}}
		for _, st := range w.Steps {
			pw.Steps = append(pw.Steps, st.Weight)
			for _, g := range st.Gates {
				pw.Gates = append(pw.Gates, fmt.Sprintf("step %d%%: %s", st.Weight, describeGate(g)))
			}
		}
		for _, g := range w.Before {
			pw.Gates = append(pw.Gates, "before: "+describeGate(g))
		}
		after := "after: "
		if p.Plan.Type == v1.StrategyBlueGreen && len(out.Waves) == 0 {
			after = "verify: "
		}
		for _, g := range w.After {
			pw.Gates = append(pw.Gates, after+describeGate(g))
		}
		for _, i := range w.Members {
			c := p.Plan.Clusters[i]
			pw.Clusters = append(pw.Clusters, v1.PlanCluster{Name: c.Name, Previous: c.Release, Weight: c.Weight})
		}
		out.Waves = append(out.Waves, pw)
	}
	return out
}

func describeGate(g rollout.PlannedGate) string {
	switch g.Kind {
	case rollout.GateApproval:
		return "approval by " + strings.Join(g.Roles, " or ")
	case rollout.GateBake:
		return "bake " + g.Bake.String()
	case rollout.GateAnalysis:
		return "analysis " + g.Analysis.Template
	}
	return g.Kind
}
