package analysis

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/internal/store/sqlite"
)

func TestJobTemplateErrors(t *testing.T) {
	a := New(Options{Store: nil})
	if _, err := a.job(Request{}, v1.Metric{Name: "m", Provider: v1.MetricProvider{Job: &v1.JobMetric{Template: []byte(`{}`)}}}, TemplateData{}); err == nil || !strings.Contains(err.Error(), "no store") {
		t.Errorf("job without a store = %v, want an error saying so", err)
	}
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "f.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	a.o.Store = st
	for tmpl, want := range map[string]string{
		`{"kind":"Pod","spec":{"template":{"spec":{}}}}`:                              "kind is Pod, want Job",
		`{"apiVersion":"batch/v2","spec":{"template":{"spec":{}}}}`:                   "apiVersion is batch/v2",
		`{"metadata":{"name":"x"}}`:                                                   "spec.template.spec is required",
		`{"metadata":{"name":"{{ .Args.missing }}"},"spec":{"template":{"spec":{}}}}`: `"missing"`,
		`{"metadata":{"name":"{{ .Cluster.Name }}}`:                                   "not a JSON object",
	} {
		_, err := a.job(Request{}, v1.Metric{Name: "m", Provider: v1.MetricProvider{Job: &v1.JobMetric{Template: []byte(tmpl)}}},
			TemplateData{Args: map[string]string{}, Cluster: ClusterData{Name: "c"}})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("job(%s) = %v, want an error containing %q", tmpl, err, want)
		}
	}
}

func TestJobName(t *testing.T) {
	if got := jobName("smoke", "abc123", 0); got != "smoke-abc123-0" {
		t.Errorf("jobName = %q", got)
	}
	long := strings.Repeat("a", 70)
	if got := jobName(long, "abc123", 12); len(got) > 63 || !strings.HasSuffix(got, "-abc123-12") {
		t.Errorf("jobName(70 chars) = %q (%d), want at most 63 ending in the suffix", got, len(got))
	}
}
