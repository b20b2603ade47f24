package analysis

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	v1 "flotilla.dev/flotilla/api/v1"
)

func TestResolveArgs(t *testing.T) {
	def := func(s string) *string { return &s }
	base := TemplateData{Cluster: ClusterData{Name: "eu-1", Labels: map[string]string{"region": "eu"}},
		Service: "web", Release: "web-abc"}
	decl := []v1.AnalysisArg{
		{Name: "service"},
		{Name: "threshold", Value: def("0.01")},
		{Name: "job", Value: def("{{ .Service }}-{{ .Cluster.Labels.region }}")},
	}
	got, err := resolveArgs(decl, map[string]string{"service": "web-eu-1", "threshold": "0.05"}, base)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"service": "web-eu-1", "threshold": "0.05", "job": "web-eu"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("args (-want +got):\n%s", d)
	}

	_, err = resolveArgs(decl, map[string]string{"threshhold": "1"}, base)
	for _, w := range []string{`argument "service" is required`, `argument "threshhold" is not declared`} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("resolveArgs with a missing and an unknown argument = %v, want it to say %q", err, w)
		}
	}

	_, err = resolveArgs([]v1.AnalysisArg{{Name: "x", Value: def("{{ .Cluster.Labels.zone }}")}}, nil, base)
	if err == nil || !strings.Contains(err.Error(), "args.x") || !strings.Contains(err.Error(), `"zone"`) {
		t.Errorf("default naming a missing label = %v, want an error naming args.x and the key", err)
	}
}

func TestRender(t *testing.T) {
	data := TemplateData{Args: map[string]string{"svc": "api"},
		Cluster: ClusterData{Name: "us-2", Labels: map[string]string{"ring": "1"}, Vars: map[string]string{"port": "8080"}},
		Service: "web", Release: "web-1", Rollout: "web-1"}
	got, err := render("query", `rate(x{cluster="{{ .Cluster.Name }}",svc="{{ .Args.svc }}",ring="{{ .Cluster.Labels.ring }}",port="{{ .Cluster.Vars.port }}",s="{{ .Service }}",r="{{ .Release }}"}[1m])`, data)
	if err != nil {
		t.Fatal(err)
	}
	if want := `rate(x{cluster="us-2",svc="api",ring="1",port="8080",s="web",r="web-1"}[1m])`; got != want {
		t.Errorf("render = %s, want %s", got, want)
	}
	if _, err := render("query", "{{ .Args.nope }}", data); err == nil || !strings.Contains(err.Error(), "query") || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("render of a missing arg = %v, want an error naming the template and the key", err)
	}
	if _, err := render("url", "{{ .Args.svc ", data); err == nil || !strings.Contains(err.Error(), "url") {
		t.Errorf("render of a broken template = %v, want an error naming it", err)
	}
}
