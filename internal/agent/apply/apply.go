package apply

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
)

// Request is one service's desired state in one cluster.
type Request struct {
	// Service names the service; a DNS label (it names the inventory).
	Service string
	// Release is recorded in the inventory.
	Release string
	// Objects are the desired objects, e.g. a bundle's. They are not
	// modified. Namespaced objects must carry their namespace.
	Objects []*unstructured.Unstructured
	// Force takes over fields another field manager owns instead of failing
	// with a conflict.
	Force bool
	// Resync applies every object, ignoring the hashes of the last apply.
	Resync bool
	// Removed says the service was removed: Objects must be empty and
	// everything in the inventory is pruned. Without it an empty Objects is
	// refused with ErrEmptyDesired.
	Removed bool
	// SelfHeal (Observe only) applies drifted objects again.
	SelfHeal bool
}

// desired is one prepared object of a request.
type desired struct {
	ref  ObjectRef
	obj  *unstructured.Unstructured // stamped copy
	hash string
}

// prepare validates the request and returns its objects stamped and sorted
// in apply order. Nothing has been written when it fails.
func prepare(req Request) ([]*desired, error) {
	if err := validService(req.Service); err != nil {
		return nil, err
	}
	if req.Removed && len(req.Objects) > 0 {
		return nil, fmt.Errorf("service %s: removed but %d objects desired: %w", req.Service, len(req.Objects), ErrInvalid)
	}
	out := make([]*desired, 0, len(req.Objects))
	seen := make(map[string]int, len(req.Objects))
	for i, o := range req.Objects {
		if o == nil {
			return nil, fmt.Errorf("service %s: object %d is nil: %w", req.Service, i, ErrInvalid)
		}
		r := refOf(o)
		if r.Version == "" || r.Kind == "" || r.Name == "" {
			return nil, fmt.Errorf("service %s: object %d (%s): apiVersion, kind and metadata.name are required: %w", req.Service, i, r, ErrInvalid)
		}
		if j, dup := seen[r.Key()]; dup {
			return nil, fmt.Errorf("service %s: %s: desired twice (objects %d and %d): %w", req.Service, r, j, i, ErrInvalid)
		}
		seen[r.Key()] = i
		c := o.DeepCopy()
		labels := c.GetLabels()
		if labels == nil {
			labels = map[string]string{}
		}
		labels[LabelManagedBy] = ManagedByValue
		c.SetLabels(labels)
		ann := c.GetAnnotations()
		if ann == nil {
			ann = map[string]string{}
		}
		ann[AnnotationService] = req.Service
		c.SetAnnotations(ann)
		h, err := hashOf(c.Object)
		if err != nil {
			return nil, fmt.Errorf("service %s: %s: encode: %v: %w", req.Service, r, err, ErrInvalid)
		}
		out = append(out, &desired{ref: r, obj: c, hash: h})
	}
	sortDesired(out)
	return out, nil
}

func sortDesired(ds []*desired) {
	refs := make([]ObjectRef, len(ds))
	byKey := make(map[string]*desired, len(ds))
	for i, d := range ds {
		refs[i] = d.ref
		byKey[d.ref.Key()] = d
	}
	sortRefs(refs)
	for i, r := range refs {
		ds[i] = byKey[r.Key()]
	}
}

// Apply makes the cluster run req's objects for req.Service and prunes what
// the service no longer wants (see the package documentation for the order
// and the invariants). Per-object failures are in the ChangeSet (and
// ChangeSet.Err); the error is for the request as a whole: ErrInvalid,
// ErrEmptyDesired, ErrInventory or the context's error.
func (e *Engine) Apply(ctx context.Context, req Request) (*ChangeSet, error) {
	ds, err := prepare(req)
	if err != nil {
		return nil, err
	}
	if len(ds) == 0 && !req.Removed {
		return nil, fmt.Errorf("service %s: %w", req.Service, ErrEmptyDesired)
	}
	defer e.lock(req.Service)()

	old, err := e.readInventory(ctx, req.Service)
	if err != nil {
		return nil, err
	}
	oldIdx := old.index()

	// Record new identities before creating them, so a crash mid-apply
	// leaves them tracked (and prunable, after the ownership check).
	union := &Inventory{Service: req.Service, Release: old.Release, Entries: append([]Entry(nil), old.Entries...)}
	for _, d := range ds {
		if _, ok := oldIdx[d.ref.Key()]; !ok {
			union.Entries = append(union.Entries, Entry{ObjectRef: d.ref})
		}
	}
	if len(union.Entries) > len(old.Entries) {
		if err := e.writeInventory(ctx, union); err != nil {
			return nil, err
		}
	}

	cs := &ChangeSet{Service: req.Service, Release: req.Release, Changes: make([]Change, len(ds))}
	entries := make([]Entry, len(ds))
	crdKinds := map[string]bool{}
	for _, d := range ds {
		if stage(d.ref) == 0 {
			g, _, _ := unstructured.NestedString(d.obj.Object, "spec", "group")
			k, _, _ := unstructured.NestedString(d.obj.Object, "spec", "names", "kind")
			crdKinds[g+"|"+k] = true
		}
	}
	applyRange := func(lo, hi int) {
		each(hi-lo, e.opts.Concurrency, func(i int) {
			i += lo
			d := ds[i]
			var prev *Entry
			if j, ok := oldIdx[d.ref.Key()]; ok {
				prev = &old.Entries[j]
			}
			cs.Changes[i], entries[i] = e.applyOne(ctx, req, d, prev, crdKinds[d.ref.Group+"|"+d.ref.Kind])
		})
	}

	// Stage 1: CRDs and Namespaces, waited for.
	split := 0
	for split < len(ds) && stage(ds[split].ref) < 2 {
		split++
	}
	applyRange(0, split)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var crdChanged atomic.Bool
	each(split, e.opts.Concurrency, func(i int) {
		ch := &cs.Changes[i]
		if ch.Action == Failed || ch.Action == Skipped {
			return
		}
		if stage(ch.Object) == 0 && ch.Action != Unchanged {
			crdChanged.Store(true)
		}
		if err := e.waitReady(ctx, ch.Object); err != nil {
			ch.Action, ch.Err = Failed, err
			ch.Reason = err.Error()
			entries[i].Hash = ""
		}
	})
	if crdChanged.Load() {
		e.mapper.Reset()
	}
	// Stage 2: everything else.
	applyRange(split, len(ds))
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	// Prune: previous inventory minus desired, in reverse apply order.
	want := make(map[string]bool, len(ds))
	for _, d := range ds {
		want[d.ref.Key()] = true
	}
	var gone []Entry
	for _, en := range union.Entries {
		if !want[en.Key()] {
			gone = append(gone, en)
		}
	}
	pruneChanges, kept := e.prune(ctx, req.Service, gone)
	cs.Changes = append(cs.Changes, pruneChanges...)

	final := &Inventory{Service: req.Service, Release: req.Release}
	for i := range ds {
		if entries[i].Kind != "" {
			final.Entries = append(final.Entries, entries[i])
		}
	}
	final.Entries = append(final.Entries, kept...)
	if !sameInventory(old, final) {
		if err := e.writeInventory(ctx, final); err != nil {
			return cs, err
		}
	}
	return cs, nil
}

func sameInventory(a, b *Inventory) bool {
	if a.Release != b.Release || len(a.Entries) != len(b.Entries) {
		return false
	}
	for i := range a.Entries {
		if a.Entries[i] != b.Entries[i] {
			return false
		}
	}
	return true
}

// applyOne applies one object unless its hash says it is unchanged, and
// returns the change and the object's new inventory entry (Kind empty: no
// entry).
func (e *Engine) applyOne(ctx context.Context, req Request, d *desired, prev *Entry, waitKind bool) (Change, Entry) {
	if prev != nil && prev.Hash == d.hash && !req.Resync {
		en := *prev
		en.Version = d.ref.Version
		return Change{Object: d.ref, Action: Skipped}, en
	}
	failed := func(err error) (Change, Entry) {
		err = fmt.Errorf("%s apply failed: %w", d.ref, err)
		ch := Change{Object: d.ref, Action: Failed, Reason: err.Error(), Err: err}
		if prev != nil {
			en := *prev
			en.Hash = "" // retry next time
			return ch, en
		}
		// Never created by us (server-side apply is all or nothing), but keep
		// the identity so a half-known state is re-checked, not forgotten.
		return ch, Entry{ObjectRef: d.ref}
	}
	start := time.Now()
	res, err := e.ssa(ctx, d, req.Force, false, waitKind)
	if err != nil {
		return failed(err)
	}
	live, err := hashOf(project(res.Object, appliedFields(d.obj.Object)))
	if err != nil {
		return failed(err)
	}
	en := Entry{ObjectRef: d.ref, Hash: d.hash, Live: live, UID: string(res.GetUID()), ResourceVersion: res.GetResourceVersion()}
	action := Configured
	switch {
	case prev != nil && prev.UID == en.UID && prev.ResourceVersion == en.ResourceVersion:
		action = Unchanged
	case prev != nil && prev.UID == en.UID:
		action = Configured
	case e.createdNow(res, start):
		action = Created
	}
	return Change{Object: d.ref, Action: action}, en
}

// createdNow tells a creation from the adoption of an existing object: the
// object is new and only Flotilla manages fields of it.
func (e *Engine) createdNow(u *unstructured.Unstructured, start time.Time) bool {
	if u.GetCreationTimestamp().Add(2 * time.Second).Before(start) {
		return false
	}
	for _, mf := range u.GetManagedFields() {
		if mf.Manager != e.opts.FieldManager {
			return false
		}
	}
	return true
}

// ssa sends one server-side apply (or dry-run) and returns what the API
// server stored (or would store).
func (e *Engine) ssa(ctx context.Context, d *desired, force, dryRun, waitKind bool) (*unstructured.Unstructured, error) {
	ri, err := e.resourceFor(ctx, d.ref, waitKind)
	if err != nil {
		return nil, err
	}
	opts := metav1.ApplyOptions{FieldManager: e.opts.FieldManager, Force: force}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	return ri.Apply(ctx, d.ref.Name, d.obj, opts)
}

func (e *Engine) resourceFor(ctx context.Context, r ObjectRef, waitKind bool) (dynamic.ResourceInterface, error) {
	m, err := e.mapping(ctx, r, waitKind)
	if err != nil {
		return nil, fmt.Errorf("kind not served: %w", err)
	}
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		if r.Namespace == "" {
			return nil, errors.New("namespaced kind without metadata.namespace")
		}
		return e.dyn.Resource(m.Resource).Namespace(r.Namespace), nil
	}
	if r.Namespace != "" {
		return nil, fmt.Errorf("cluster-scoped kind with metadata.namespace %q", r.Namespace)
	}
	return e.dyn.Resource(m.Resource), nil
}

// waitReady waits until a CRD is established or a Namespace is active.
func (e *Engine) waitReady(ctx context.Context, r ObjectRef) error {
	deadline := time.Now().Add(e.opts.WaitTimeout)
	for {
		ready, msg, err := e.ready(ctx, r)
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("%s wait failed: %w", r, err)
		}
		if ready {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %s: %s", r, e.opts.WaitTimeout, msg)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s wait failed: %w", r, ctx.Err())
		case <-time.After(e.opts.PollInterval):
		}
	}
}

func (e *Engine) ready(ctx context.Context, r ObjectRef) (bool, string, error) {
	if stage(r) == 1 {
		u, err := e.dyn.Resource(namespaces).Get(ctx, r.Name, metav1.GetOptions{})
		if err != nil {
			return false, "", err
		}
		phase, _, _ := unstructured.NestedString(u.Object, "status", "phase")
		return phase == "Active", "namespace phase " + phase, nil
	}
	u, err := e.dyn.Resource(crds).Get(ctx, r.Name, metav1.GetOptions{})
	if err != nil {
		return false, "", err
	}
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == "Established" && m["status"] == "True" {
			return true, "", nil
		}
	}
	return false, "not established", nil
}
