package health

import (
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func deployment(status map[string]any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apps/v1",
		"kind":       "Deployment",
		"metadata":   map[string]any{"name": "web", "namespace": "ns", "generation": int64(2)},
		"spec":       map[string]any{"replicas": int64(3), "progressDeadlineSeconds": int64(600)},
		"status":     status,
	}}
	return u
}

func cond(typ, st, reason string) map[string]any {
	return map[string]any{"type": typ, "status": st, "reason": reason}
}

func TestCompute(t *testing.T) {
	cases := []struct {
		name string
		obj  *unstructured.Unstructured
		want Status
	}{
		{"missing", nil, Degraded},
		{"configmap", &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": "c"}}}, Healthy},
		{"deployment available", deployment(map[string]any{
			"observedGeneration": int64(2), "replicas": int64(3), "updatedReplicas": int64(3), "readyReplicas": int64(3), "availableReplicas": int64(3),
			"conditions": []any{cond("Available", "True", "MinimumReplicasAvailable"), cond("Progressing", "True", "NewReplicaSetAvailable")},
		}), Healthy},
		{"deployment rolling", deployment(map[string]any{
			"observedGeneration": int64(2), "replicas": int64(3), "updatedReplicas": int64(1), "readyReplicas": int64(3), "availableReplicas": int64(3),
			"conditions": []any{cond("Available", "True", "MinimumReplicasAvailable"), cond("Progressing", "True", "ReplicaSetUpdated")},
		}), Progressing},
		{"deployment lost pods after rollout", deployment(map[string]any{
			"observedGeneration": int64(2), "replicas": int64(3), "updatedReplicas": int64(3), "readyReplicas": int64(1), "availableReplicas": int64(1),
			"conditions": []any{cond("Available", "False", "MinimumReplicasUnavailable"), cond("Progressing", "True", "NewReplicaSetAvailable")},
		}), Degraded},
		{"deployment deadline exceeded", deployment(map[string]any{
			"observedGeneration": int64(2), "replicas": int64(3), "updatedReplicas": int64(1),
			"conditions": []any{cond("Progressing", "False", "ProgressDeadlineExceeded")},
		}), Failed},
		{"deployment not yet observed", deployment(map[string]any{"observedGeneration": int64(1)}), Progressing},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Compute(c.obj)
			if got.Status != c.want {
				t.Errorf("Compute = %+v, want status %s", got, c.want)
			}
		})
	}
}

func TestRollup(t *testing.T) {
	cases := []struct {
		in   []Status
		want Status
	}{
		{nil, Healthy},
		{[]Status{Healthy, Healthy}, Healthy},
		{[]Status{Healthy, Progressing}, Progressing},
		{[]Status{Progressing, Unknown, Healthy}, Unknown},
		{[]Status{Unknown, Degraded}, Degraded},
		{[]Status{Failed, Degraded, Healthy}, Failed},
		{[]Status{Healthy, "bogus"}, "bogus"},
	}
	for _, c := range cases {
		if got := Rollup(c.in...); got != c.want {
			t.Errorf("Rollup(%v) = %s, want %s", c.in, got, c.want)
		}
	}
}
