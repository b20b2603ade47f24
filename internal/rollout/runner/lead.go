package runner

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/internal/rollout"
	"flotilla.dev/flotilla/internal/store"
)

// leadingWeights are the weights of the SetTraffic actions that come
// before the last Assign of acts (a later one for a cluster wins), sorted
// by cluster: what must be in force before those assignments are visible
// to agents. A finished rollout's actions (a rollback) need none: sending
// clusters back is not held up by a router.
func leadingWeights(s *rollout.State, acts []rollout.Action) []v1.TrafficWeight {
	if s.Plan.Router == "" || s.Finished() {
		return nil
	}
	last := -1
	for i, a := range acts {
		if as, ok := a.(rollout.Assign); ok && len(as.Clusters) > 0 {
			last = i
		}
	}
	byCluster := map[string]int{}
	for _, a := range acts[:max(last, 0)] {
		if t, ok := a.(rollout.SetTraffic); ok {
			for _, w := range t.Weights {
				byCluster[w.Cluster] = w.Weight
			}
		}
	}
	out := make([]v1.TrafficWeight, 0, len(byCluster))
	for c, w := range byCluster {
		out = append(out, v1.TrafficWeight{Router: s.Plan.Router, Cluster: c, Weight: w})
	}
	slices.SortFunc(out, func(a, b v1.TrafficWeight) int { return strings.Compare(a.Cluster, b.Cluster) })
	return out
}

// leadTraffic puts the weights that must precede the assignments of acts
// in force, read back, before the transition is written (next records
// it). An error means they are not: the transition must not be written.
// Setting them again after a restart is harmless (weights are absolute),
// and until the transition is written the record holds the old weights,
// which a new leader re-asserts before it steps the engine again.
func (l *leader) leadTraffic(ctx context.Context, e *entry, next *Record, acts []rollout.Action) error {
	if l.o.Traffic == nil {
		return nil // recorded as skipped after the commit, visibly
	}
	ws := slices.DeleteFunc(leadingWeights(&next.Engine, acts), func(w v1.TrafficWeight) bool {
		a, ok := e.applied[w.Cluster]
		return ok && a == w.Weight
	})
	if len(ws) == 0 {
		return nil
	}
	router := next.Engine.Plan.Router
	tctx, cancel := context.WithTimeout(ctx, l.o.TrafficTimeout)
	applied, err := l.o.Traffic.SetWeights(tctx, router, ws)
	cancel()
	if e.applied == nil {
		e.applied = map[string]int{}
	}
	got := map[string]int{}
	for _, w := range applied {
		got[w.Cluster] = w.Weight
		e.applied[w.Cluster] = w.Weight
	}
	if err != nil {
		return err
	}
	var wrong, desc []string
	for _, w := range ws {
		desc = append(desc, fmt.Sprintf("%s=%d", w.Cluster, w.Weight))
		g, ok := got[w.Cluster]
		switch {
		case !ok:
			e.applied[w.Cluster] = w.Weight // the router said nothing back: trust the call
		case g != w.Weight:
			wrong = append(wrong, fmt.Sprintf("cluster %s has weight %d, want %d", w.Cluster, g, w.Weight))
		}
	}
	if len(wrong) > 0 {
		return fmt.Errorf("traffic router %s: change not in force: %s", router, strings.Join(wrong, "; "))
	}
	next.TrafficMessage = "applied " + strings.Join(desc, " ") + " before the assignment"
	return nil
}

// stepHeld steps e's pending events again with the rollout paused first
// (a Pending one too: Start then assigns nothing), because the traffic
// the assignments needed could not be set; nothing is assigned then.
func (l *leader) stepHeld(e *entry, cause error, now time.Time) (evs []rollout.Event, next *Record, acts []rollout.Action, errs []string) {
	router := e.rec.Engine.Plan.Router
	e.trafficRetry = now.Add(5 * time.Second)
	e.pauseReason = "paused: traffic router " + router + " failed, so nothing was assigned: " + cause.Error()
	e.pending = slices.Insert(e.pending, 0, rollout.Event(rollout.Pause{}))
	evs = e.pending
	next, acts, errs, _ = step(e.rec, evs, now, false)
	errs = append(errs, "traffic: "+cause.Error())
	next.TrafficMessage = fmt.Sprintf("router %s: %v", router, cause)
	if ws := leadingWeights(&next.Engine, acts); len(ws) > 0 {
		// Cannot happen: a paused rollout assigns nothing but rollbacks.
		l.o.Logger.Warn("rollout runner: assignment without its traffic", "rollout", e.name, "weights", ws)
	}
	return evs, next, acts, errs
}

// Deferred is a person's action the leader carries out because it needs
// traffic weights set before its assignments (Act cannot set them).
type Deferred struct {
	Event string   `json:"event"` // approve, promote, resume, retry, pause, abort, rollback
	User  string   `json:"user,omitempty"`
	Roles []string `json:"roles,omitempty"`
	To    string   `json:"to,omitempty"`
	By    string   `json:"by"`
}

func deferredOf(ev rollout.Event, by store.Actor) (Deferred, bool) {
	d := Deferred{By: by.Kind + ":" + by.Name}
	switch e := ev.(type) {
	case rollout.Approval:
		d.Event, d.User, d.Roles = "approve", e.User, slices.Clone(e.Roles)
	case rollout.Promote:
		d.Event = "promote"
	case rollout.Resume:
		d.Event = "resume"
	case rollout.Retry:
		d.Event = "retry"
	case rollout.Pause:
		d.Event = "pause"
	case rollout.Abort:
		d.Event = "abort"
	case rollout.Rollback:
		d.Event, d.To = "rollback", e.To
	default:
		return d, false
	}
	return d, true
}

func (d Deferred) event() rollout.Event {
	switch d.Event {
	case "approve":
		return rollout.Approval{User: d.User, Roles: slices.Clone(d.Roles)}
	case "promote":
		return rollout.Promote{}
	case "resume":
		return rollout.Resume{}
	case "retry":
		return rollout.Retry{}
	case "pause":
		return rollout.Pause{}
	case "abort":
		return rollout.Abort{}
	case "rollback":
		return rollout.Rollback{To: d.To}
	}
	return nil
}
