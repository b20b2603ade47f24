package apply

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
)

// prune deletes the given inventory entries in reverse apply order (all
// ordinary objects, then Namespaces, then CRDs) and returns what it did and
// the entries to keep in the inventory (failed deletions).
func (e *Engine) prune(ctx context.Context, service string, gone []Entry) ([]Change, []Entry) {
	if len(gone) == 0 {
		return nil, nil
	}
	refs := make([]ObjectRef, len(gone))
	byKey := make(map[string]Entry, len(gone))
	for i, en := range gone {
		refs[i] = en.ObjectRef
		byKey[en.Key()] = en
	}
	sortRefs(refs)
	for i, j := 0, len(refs)-1; i < j; i, j = i+1, j-1 {
		refs[i], refs[j] = refs[j], refs[i]
	}
	changes := make([]Change, len(refs))
	keep := make([]bool, len(refs))
	for lo := 0; lo < len(refs); {
		hi := lo
		for hi < len(refs) && stage(refs[hi]) == stage(refs[lo]) {
			hi++
		}
		each(hi-lo, e.opts.Concurrency, func(i int) {
			i += lo
			changes[i], keep[i] = e.deleteOne(ctx, service, byKey[refs[i].Key()])
		})
		lo = hi
	}
	var kept []Entry
	for i, k := range keep {
		if k {
			kept = append(kept, byKey[refs[i].Key()])
		}
	}
	return changes, kept
}

// deleteOne deletes one object if Flotilla created it for this service,
// conditional on the UID it checked. It reports whether the entry stays in
// the inventory (only when the deletion failed).
func (e *Engine) deleteOne(ctx context.Context, service string, en Entry) (Change, bool) {
	r := en.ObjectRef
	failed := func(err error) (Change, bool) {
		err = fmt.Errorf("%s delete failed: %w", r, err)
		return Change{Object: r, Action: Failed, Reason: err.Error(), Err: err}, true
	}
	ri, err := e.resourceFor(ctx, r, false)
	if err != nil {
		if meta.IsNoMatchError(err) {
			// The kind is no longer served (its CRD is gone): so is the object.
			return Change{Object: r, Action: Deleted, Reason: "kind no longer served"}, false
		}
		return failed(err)
	}
	live, err := ri.Get(ctx, r.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return Change{Object: r, Action: Deleted, Reason: "already gone"}, false
	}
	if err != nil {
		return failed(err)
	}
	if why := e.notOurs(live, service, en); why != "" {
		return Change{Object: r, Action: Skipped, Reason: "left alone: " + why}, false
	}
	uid := live.GetUID()
	policy := metav1.DeletePropagationBackground
	err = ri.Delete(ctx, r.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}, PropagationPolicy: &policy})
	if err != nil && !apierrors.IsNotFound(err) {
		return failed(err)
	}
	return Change{Object: r, Action: Deleted}, false
}

// notOurs says why a live object must not be pruned for service; empty when
// Flotilla created it for that service.
func (e *Engine) notOurs(u *unstructured.Unstructured, service string, en Entry) string {
	if v := u.GetLabels()[LabelManagedBy]; v != ManagedByValue {
		return fmt.Sprintf("label %s is %q, not %q", LabelManagedBy, v, ManagedByValue)
	}
	if v := u.GetAnnotations()[AnnotationService]; v != service {
		return fmt.Sprintf("annotation %s is %q, not %q", AnnotationService, v, service)
	}
	if en.UID != "" && u.GetUID() != types.UID(en.UID) {
		return "not the object Flotilla applied (its UID changed: deleted and created again by someone else)"
	}
	for _, mf := range u.GetManagedFields() {
		if mf.Manager == e.opts.FieldManager && mf.Operation == metav1.ManagedFieldsOperationApply {
			return ""
		}
	}
	return fmt.Sprintf("no fields applied by field manager %q", e.opts.FieldManager)
}
