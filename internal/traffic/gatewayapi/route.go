// Package gatewayapi is the traffic provider that sets the weights of a
// Gateway API HTTPRoute's backendRefs in an edge cluster.
//
// One rule of the route (by index) carries the split: each Flotilla
// backend is the name of one of the rule's backendRefs (a Service in the
// edge cluster, or whatever kind the gateway supports). Weights are
// relative, as the Gateway API defines them; Flotilla writes percent (0 to
// 100) and a backendRef without a weight counts as 1, the API's default.
//
// A change reads the route, checks every backend is in the rule, sets the
// weights and writes the route back with its resourceVersion, retrying on
// a conflict, so edits by others to other fields are kept and a change is
// all or nothing. The route is reached with the edge cluster's REST
// config, through the dynamic client, and converted to the
// sigs.k8s.io/gateway-api types.
package gatewayapi

import (
	"context"
	"fmt"
	"sort"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// GVR is the HTTPRoute resource.
var GVR = schema.GroupVersionResource{Group: gwv1.GroupName, Version: "v1", Resource: "httproutes"}

// MaxWeight is the scale Flotilla writes: percent.
const MaxWeight = 100

// Route is one rule of one HTTPRoute.
type Route struct {
	client              dynamic.ResourceInterface
	cluster             string
	namespace, name     string
	rule                int
	conflictRetries     int
	describeWithCluster string
}

// New returns the Route namespace/name, rule index rule, in the cluster
// that cfg reaches (cluster names it in errors).
func New(cfg *rest.Config, cluster, namespace, name string, rule int) (*Route, error) {
	dc, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("gatewayapi: cluster %s: %w", cluster, err)
	}
	return NewWithClient(dc, cluster, namespace, name, rule), nil
}

// NewWithClient is New with a ready dynamic client.
func NewWithClient(dc dynamic.Interface, cluster, namespace, name string, rule int) *Route {
	return &Route{
		client: dc.Resource(GVR).Namespace(namespace), cluster: cluster, namespace: namespace, name: name, rule: rule,
		conflictRetries:     5,
		describeWithCluster: fmt.Sprintf("httproute %s/%s in cluster %s", namespace, name, cluster),
	}
}

// MaxWeight is the scale written: percent.
func (r *Route) MaxWeight() int { return MaxWeight }

func (r *Route) get(ctx context.Context) (*unstructured.Unstructured, *gwv1.HTTPRoute, error) {
	u, err := r.client.Get(ctx, r.name, metav1.GetOptions{})
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", r.describeWithCluster, err)
	}
	var route gwv1.HTTPRoute
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &route); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", r.describeWithCluster, err)
	}
	if r.rule < 0 || r.rule >= len(route.Spec.Rules) {
		return nil, nil, fmt.Errorf("%s: has %d rule(s), no rule %d", r.describeWithCluster, len(route.Spec.Rules), r.rule)
	}
	return u, &route, nil
}

// refIndexes returns the index of each backend's backendRef in the rule.
func (r *Route) refIndexes(route *gwv1.HTTPRoute, backends []string) (map[string]int, error) {
	refs := route.Spec.Rules[r.rule].BackendRefs
	out := make(map[string]int, len(backends))
	var missing []string
	for _, b := range backends {
		found := -1
		for i, ref := range refs {
			if string(ref.Name) == b {
				found = i
				break
			}
		}
		if found < 0 {
			missing = append(missing, b)
			continue
		}
		out[b] = found
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		var have []string
		for _, ref := range refs {
			have = append(have, string(ref.Name))
		}
		return nil, fmt.Errorf("%s: rule %d has no backendRef %s (it has %s)", r.describeWithCluster, r.rule,
			strings.Join(missing, ", "), strings.Join(have, ", "))
	}
	return out, nil
}

// SetWeights sets the weight of each named backendRef; none when one is
// missing.
func (r *Route) SetWeights(ctx context.Context, weights map[string]int) error {
	backends := make([]string, 0, len(weights))
	for b, w := range weights {
		if w < 0 || w > MaxWeight {
			return fmt.Errorf("%s: backend %s: weight %d out of range 0-%d", r.describeWithCluster, b, w, MaxWeight)
		}
		backends = append(backends, b)
	}
	for attempt := 0; ; attempt++ {
		u, route, err := r.get(ctx)
		if err != nil {
			return err
		}
		idx, err := r.refIndexes(route, backends)
		if err != nil {
			return err
		}
		// Write into the object as read, so fields the typed struct does
		// not know (a newer API version's) survive the update.
		rules, _, _ := unstructured.NestedSlice(u.Object, "spec", "rules")
		rule, _ := rules[r.rule].(map[string]any)
		refs, _ := rule["backendRefs"].([]any)
		for b, i := range idx {
			ref, ok := refs[i].(map[string]any)
			if !ok {
				return fmt.Errorf("%s: rule %d backendRef %d is not an object", r.describeWithCluster, r.rule, i)
			}
			ref["weight"] = int64(weights[b])
		}
		if err := unstructured.SetNestedSlice(u.Object, rules, "spec", "rules"); err != nil {
			return fmt.Errorf("%s: %w", r.describeWithCluster, err)
		}
		_, err = r.client.Update(ctx, u, metav1.UpdateOptions{FieldManager: "flotilla-traffic"})
		if err == nil {
			return nil
		}
		if !apierrors.IsConflict(err) || attempt >= r.conflictRetries {
			return fmt.Errorf("%s: update: %w", r.describeWithCluster, err)
		}
	}
}

// Weights reads back each named backendRef's weight (1 when unset).
func (r *Route) Weights(ctx context.Context, backends []string) (map[string]int, error) {
	_, route, err := r.get(ctx)
	if err != nil {
		return nil, err
	}
	idx, err := r.refIndexes(route, backends)
	if err != nil {
		return nil, err
	}
	out := make(map[string]int, len(backends))
	for b, i := range idx {
		w := 1
		if p := route.Spec.Rules[r.rule].BackendRefs[i].Weight; p != nil {
			w = int(*p)
		}
		out[b] = w
	}
	return out, nil
}

// Ping reads the route and checks it has the rule.
func (r *Route) Ping(ctx context.Context) error {
	_, _, err := r.get(ctx)
	return err
}
