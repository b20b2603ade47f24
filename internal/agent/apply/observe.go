package apply

import (
	"context"
	"fmt"

	"flotilla.dev/flotilla/internal/agent/health"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// listThreshold is how many objects of one kind in one namespace make a
// LIST cheaper than a GET each.
const listThreshold = 8

// MissingField is the drift path reported for an object that does not exist.
const MissingField = "(object missing)"

// ObjectStatus is the observed state of one desired object.
type ObjectStatus struct {
	Object ObjectRef     `json:"object"`
	Health health.Result `json:"health"`
	// Drift lists the paths of fields whose live value differs from what
	// Flotilla applies (MissingField when the object is gone). Values are
	// never reported.
	Drift []string `json:"drift,omitempty"`
	// Corrected: the drift was corrected by applying the object again (SelfHeal).
	Corrected bool `json:"corrected,omitempty"`
	// Err is why the object could not be read, compared or corrected.
	Err error `json:"-"`
}

// Report is the observed state of a service in one cluster.
type Report struct {
	Service string         `json:"service"`
	Release string         `json:"release,omitempty"`
	Health  health.Status  `json:"health"`
	Objects []ObjectStatus `json:"objects"`
}

// Drifted returns the objects with drift.
func (r *Report) Drifted() []ObjectStatus {
	var out []ObjectStatus
	for _, o := range r.Objects {
		if len(o.Drift) > 0 {
			out = append(out, o)
		}
	}
	return out
}

// Observe reads the live state of req's objects, computes their health and
// drift and the service's health, and with req.SelfHeal applies drifted
// objects again (forcing conflicts: self-heal means Flotilla's value wins).
// It prunes nothing. An object that cannot be read counts as Unknown.
func (e *Engine) Observe(ctx context.Context, req Request) (*Report, error) {
	ds, err := prepare(req)
	if err != nil {
		return nil, err
	}
	defer e.lock(req.Service)()
	inv, err := e.readInventory(ctx, req.Service)
	if err != nil {
		return nil, err
	}
	idx := inv.index()
	rep := &Report{Service: req.Service, Release: inv.Release, Objects: make([]ObjectStatus, len(ds))}
	lives, errs := e.readLive(ctx, ds)

	corrected := make([]*Entry, len(ds))
	each(len(ds), e.opts.Concurrency, func(i int) {
		d := ds[i]
		st := &rep.Objects[i]
		st.Object = d.ref
		if errs[i] != nil {
			st.Health = health.Result{Status: health.Unknown, Message: "cannot read"}
			st.Err = fmt.Errorf("%s read failed: %w", d.ref, errs[i])
			return
		}
		live := lives[i]
		st.Health = health.Compute(live)
		var prev *Entry
		if j, ok := idx[d.ref.Key()]; ok {
			prev = &inv.Entries[j]
		}
		drift, err := e.drift(ctx, d, live, prev)
		if err != nil {
			st.Err = err
			return
		}
		st.Drift = drift
		if len(drift) == 0 || !req.SelfHeal {
			return
		}
		res, err := e.ssa(ctx, d, true, false, false)
		if err != nil {
			st.Err = fmt.Errorf("%s self-heal failed: %w", d.ref, err)
			return
		}
		lh, err := hashOf(project(res.Object, appliedFields(d.obj.Object)))
		if err != nil {
			st.Err = fmt.Errorf("%s self-heal failed: %w", d.ref, err)
			return
		}
		st.Corrected = true
		st.Health = health.Compute(res)
		corrected[i] = &Entry{ObjectRef: d.ref, Hash: d.hash, Live: lh, UID: string(res.GetUID()), ResourceVersion: res.GetResourceVersion()}
	})

	statuses := make([]health.Status, len(rep.Objects))
	for i, o := range rep.Objects {
		statuses[i] = o.Health.Status
	}
	rep.Health = health.Rollup(statuses...)

	// Record corrections so the next Observe compares with the healed object.
	changed := false
	for i, c := range corrected {
		if c == nil {
			continue
		}
		if j, ok := idx[ds[i].ref.Key()]; ok {
			inv.Entries[j] = *c
		} else {
			inv.Entries = append(inv.Entries, *c)
		}
		changed = true
	}
	if changed {
		if err := e.writeInventory(ctx, inv); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// drift returns the drifted paths of one object. A live object whose applied
// fields hash as recorded has not drifted; otherwise a dry-run apply says
// what applying would change.
func (e *Engine) drift(ctx context.Context, d *desired, live *unstructured.Unstructured, prev *Entry) ([]string, error) {
	if live == nil {
		return []string{MissingField}, nil
	}
	fields := appliedFields(d.obj.Object)
	liveProj := project(live.Object, fields)
	if prev != nil && prev.Live != "" && prev.Hash == d.hash {
		h, err := hashOf(liveProj)
		if err != nil {
			return nil, fmt.Errorf("%s drift check failed: %w", d.ref, err)
		}
		if h == prev.Live {
			return nil, nil
		}
	}
	dry, err := e.ssa(ctx, d, true, true, false)
	if err != nil {
		return nil, fmt.Errorf("%s dry-run apply failed: %w", d.ref, err)
	}
	var paths []string
	diffPaths(liveProj, project(dry.Object, fields), "", &paths)
	return paths, nil
}

// readLive reads the live objects of ds: a LIST per kind and namespace
// where there are many, a GET each otherwise. A missing object is nil.
func (e *Engine) readLive(ctx context.Context, ds []*desired) ([]*unstructured.Unstructured, []error) {
	lives := make([]*unstructured.Unstructured, len(ds))
	errs := make([]error, len(ds))
	type group struct {
		kind, ns string
		items    []int
	}
	var groups []*group
	byGroup := map[string]*group{}
	for i, d := range ds {
		k := d.ref.Group + "|" + d.ref.Kind + "|" + d.ref.Namespace
		g, ok := byGroup[k]
		if !ok {
			g = &group{kind: k, ns: d.ref.Namespace}
			byGroup[k] = g
			groups = append(groups, g)
		}
		g.items = append(g.items, i)
	}
	var singles []int
	for _, g := range groups {
		if len(g.items) < listThreshold {
			singles = append(singles, g.items...)
			continue
		}
		first := ds[g.items[0]].ref
		ri, err := e.resourceFor(ctx, first, false)
		if err == nil {
			var list *unstructured.UnstructuredList
			list, err = ri.List(ctx, metav1.ListOptions{LabelSelector: LabelManagedBy + "=" + ManagedByValue})
			if err == nil {
				byName := make(map[string]*unstructured.Unstructured, len(list.Items))
				for j := range list.Items {
					byName[list.Items[j].GetName()] = &list.Items[j]
				}
				for _, i := range g.items {
					if u, ok := byName[ds[i].ref.Name]; ok {
						lives[i] = u
					} else {
						singles = append(singles, i) // label removed by hand, or gone
					}
				}
				continue
			}
		}
		if meta.IsNoMatchError(err) {
			continue // kind not served: every object is missing
		}
		for _, i := range g.items {
			errs[i] = err
		}
	}
	each(len(singles), e.opts.Concurrency, func(k int) {
		i := singles[k]
		ri, err := e.resourceFor(ctx, ds[i].ref, false)
		if meta.IsNoMatchError(err) {
			return
		}
		if err != nil {
			errs[i] = err
			return
		}
		u, err := ri.Get(ctx, ds[i].ref.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
		case err != nil:
			errs[i] = err
		default:
			lives[i] = u
		}
	})
	return lives, errs
}
