package health

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func job(status map[string]any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "batch/v1",
		"kind":       "Job",
		"metadata":   map[string]any{"name": "smoke", "namespace": "ns"},
		"spec":       map[string]any{"completions": int64(1), "backoffLimit": int64(0)},
		"status":     status,
	}}
}

func TestComputeJob(t *testing.T) {
	const start = "2026-11-26T09:00:00Z"
	cases := []struct {
		name    string
		obj     *unstructured.Unstructured
		want    Status
		message string
	}{
		{"not started", job(map[string]any{}), Progressing, "Job not started"},
		{"running", job(map[string]any{"startTime": start, "active": int64(1)}), Progressing, "Job in progress"},
		{"success criteria met, pods finishing", job(map[string]any{"startTime": start, "succeeded": int64(1),
			"conditions": []any{cond("SuccessCriteriaMet", "True", "CompletionsReached")}}), Progressing, "Job in progress"},
		{"completed", job(map[string]any{"startTime": start, "succeeded": int64(1), "completionTime": start,
			"conditions": []any{cond("SuccessCriteriaMet", "True", "CompletionsReached"), cond("Complete", "True", "CompletionsReached")}}),
			Healthy, "Job Completed"},
		{"failing", job(map[string]any{"startTime": start, "failed": int64(1),
			"conditions": []any{cond("FailureTarget", "True", "BackoffLimitExceeded")}}), Failed, "BackoffLimitExceeded"},
		{"failed", job(map[string]any{"startTime": start, "failed": int64(1),
			"conditions": []any{cond("FailureTarget", "True", "BackoffLimitExceeded"), cond("Failed", "True", "BackoffLimitExceeded")}}),
			Failed, "Job Failed"},
		{"complete false", job(map[string]any{"startTime": start, "active": int64(1),
			"conditions": []any{cond("Complete", "False", "")}}), Progressing, "Job in progress"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Compute(c.obj)
			if got.Status != c.want || !strings.Contains(got.Message, c.message) {
				t.Errorf("Compute = %+v, want status %s with message containing %q", got, c.want, c.message)
			}
		})
	}
}

// A Job being deleted stays Progressing (kstatus' Terminating), even one that completed.
func TestComputeJobTerminating(t *testing.T) {
	u := job(map[string]any{"startTime": "2026-11-26T09:00:00Z", "succeeded": int64(1),
		"conditions": []any{cond("Complete", "True", "CompletionsReached")}})
	u.SetFinalizers([]string{"batch.kubernetes.io/job-tracking"})
	now := metav1.Now()
	u.SetDeletionTimestamp(&now)
	if got := Compute(u); got.Status != Progressing {
		t.Errorf("Compute of a terminating Job = %+v, want Progressing", got)
	}
}
