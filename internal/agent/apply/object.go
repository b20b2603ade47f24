package apply

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Labels and annotations Flotilla puts on every object it applies.
const (
	// LabelManagedBy marks objects applied by Flotilla (value ManagedByValue).
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// ManagedByValue is the value of LabelManagedBy.
	ManagedByValue = "flotilla"
	// AnnotationService names the service an object belongs to.
	AnnotationService = "flotilla.dev/service"
)

// ObjectRef identifies one object in a cluster. Version is the one it is
// applied with; it is not part of the identity (Key).
type ObjectRef struct {
	Group     string `json:"group,omitempty"`
	Version   string `json:"version"`
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
}

// String names the object as Kind[.group]/[namespace/]name, the form used
// at the start of every error about it.
func (r ObjectRef) String() string {
	var b strings.Builder
	b.WriteString(r.Kind)
	if r.Group != "" {
		b.WriteString(".")
		b.WriteString(r.Group)
	}
	b.WriteString("/")
	if r.Namespace != "" {
		b.WriteString(r.Namespace)
		b.WriteString("/")
	}
	b.WriteString(r.Name)
	return b.String()
}

// Key is the version-free identity of the object.
func (r ObjectRef) Key() string {
	return r.Group + "|" + r.Kind + "|" + r.Namespace + "|" + r.Name
}

// GroupVersionKind returns the object's GVK.
func (r ObjectRef) GroupVersionKind() schema.GroupVersionKind {
	return schema.GroupVersionKind{Group: r.Group, Version: r.Version, Kind: r.Kind}
}

func refOf(u *unstructured.Unstructured) ObjectRef {
	gvk := u.GroupVersionKind()
	return ObjectRef{Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind, Namespace: u.GetNamespace(), Name: u.GetName()}
}

// stage orders objects: CRDs, then Namespaces, then everything else.
func stage(r ObjectRef) int {
	switch {
	case r.Group == "apiextensions.k8s.io" && r.Kind == "CustomResourceDefinition":
		return 0
	case r.Group == "" && r.Kind == "Namespace":
		return 1
	}
	return 2
}

// less is the stable apply order; prune runs it backwards.
func less(a, b ObjectRef) bool {
	if sa, sb := stage(a), stage(b); sa != sb {
		return sa < sb
	}
	if a.Group != b.Group {
		return a.Group < b.Group
	}
	if a.Kind != b.Kind {
		return a.Kind < b.Kind
	}
	if a.Namespace != b.Namespace {
		return a.Namespace < b.Namespace
	}
	return a.Name < b.Name
}

func sortRefs(refs []ObjectRef) {
	sort.Slice(refs, func(i, j int) bool { return less(refs[i], refs[j]) })
}

// hashOf returns a short, stable digest of a JSON value (maps encode with
// sorted keys).
func hashOf(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:16]), nil
}

// project returns the parts of live at the paths present in desired: the
// fields Flotilla applied, as the API server stores them. Lists are taken
// element by element when their lengths agree, whole otherwise.
func project(live, desired any) any {
	switch d := desired.(type) {
	case map[string]any:
		l, ok := live.(map[string]any)
		if !ok {
			return live
		}
		out := make(map[string]any, len(d))
		for k, dv := range d {
			if lv, ok := l[k]; ok {
				out[k] = project(lv, dv)
			}
		}
		return out
	case []any:
		l, ok := live.([]any)
		if !ok || len(l) != len(d) {
			return live
		}
		out := make([]any, len(d))
		for i := range d {
			out[i] = project(l[i], d[i])
		}
		return out
	default:
		return live
	}
}

// appliedFields is desired without the fields that say what it is rather
// than what it holds.
func appliedFields(desired map[string]any) map[string]any {
	out := make(map[string]any, len(desired))
	for k, v := range desired {
		if k == "apiVersion" || k == "kind" || k == "status" {
			continue
		}
		out[k] = v
	}
	return out
}

// diffPaths lists the paths where two projections differ. Values are never
// included, so Secret data cannot leak into a report.
func diffPaths(a, b any, path string, out *[]string) {
	am, aok := a.(map[string]any)
	bm, bok := b.(map[string]any)
	if aok && bok {
		keys := make([]string, 0, len(am)+len(bm))
		for k := range am {
			keys = append(keys, k)
		}
		for k := range bm {
			if _, ok := am[k]; !ok {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			p := k
			if path != "" {
				p = path + "." + k
			}
			av, ain := am[k]
			bv, bin := bm[k]
			if ain != bin {
				*out = append(*out, p)
				continue
			}
			diffPaths(av, bv, p, out)
		}
		return
	}
	al, aok := a.([]any)
	bl, bok := b.([]any)
	if aok && bok && len(al) == len(bl) {
		for i := range al {
			diffPaths(al[i], bl[i], fmt.Sprintf("%s[%d]", path, i), out)
		}
		return
	}
	if !equalJSON(a, b) {
		*out = append(*out, path)
	}
}

func equalJSON(a, b any) bool {
	ab, err1 := json.Marshal(a)
	bb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(ab) == string(bb)
}
