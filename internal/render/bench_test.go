package render

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// BenchmarkKustomizeOverlay renders testdata/repo/kustomize/overlays/prod
// in-process, from reading files to the canonical bundle, with no cache.
// Compare with BenchmarkKubectlKustomize in the same run.
func BenchmarkKustomizeOverlay(b *testing.B) {
	repo := testRepo(b)
	req := Request{FS: repo.FS(), Path: "kustomize/overlays/prod", Namespace: "web", Vars: Vars{Cluster: prodEU}}
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Render(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkKubectlKustomize runs `kubectl kustomize` on the same overlay.
func BenchmarkKubectlKustomize(b *testing.B) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		b.Fatalf("kubectl is needed for the comparison: %v", err)
	}
	dir := filepath.Join("testdata", "repo", "kustomize", "overlays", "prod")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		out, err := exec.Command(kubectl, "kustomize", dir).Output()
		if err != nil || !strings.Contains(string(out), "prod-web") {
			b.Fatalf("kubectl kustomize: %v\n%s", err, out)
		}
	}
}

// BenchmarkKustomizeVsKubectl alternates the in-process render and
// `kubectl kustomize` on the same overlay in every iteration, so machine
// load falls on both alike, and reports their ratio.
func BenchmarkKustomizeVsKubectl(b *testing.B) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		b.Fatalf("kubectl is needed for the comparison: %v", err)
	}
	repo := testRepo(b)
	req := Request{FS: repo.FS(), Path: "kustomize/overlays/prod", Namespace: "web", Vars: Vars{Cluster: prodEU}}
	dir := filepath.Join("testdata", "repo", "kustomize", "overlays", "prod")
	ctx := context.Background()
	var inproc, external time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		if _, err := Render(ctx, req); err != nil {
			b.Fatal(err)
		}
		inproc += time.Since(start)
		start = time.Now()
		if out, err := exec.Command(kubectl, "kustomize", dir).Output(); err != nil {
			b.Fatalf("kubectl kustomize: %v\n%s", err, out)
		}
		external += time.Since(start)
	}
	b.ReportMetric(float64(inproc.Nanoseconds())/float64(b.N), "inprocess-ns/op")
	b.ReportMetric(float64(external.Nanoseconds())/float64(b.N), "kubectl-ns/op")
	b.ReportMetric(float64(inproc)/float64(external), "ratio")
}

// BenchmarkHelmChart renders testdata/repo/helm/web (a small chart with a
// vendored dependency) in-process, with no cache.
func BenchmarkHelmChart(b *testing.B) {
	repo := testRepo(b)
	req := helmFleetRequest(b)
	req.FS = repo.FS()
	req.Commit = ""
	req.Vars = Vars{Cluster: prodEU}
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Render(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHelmLargeChart renders a generated chart of the size of a large
// community chart: 120 templates sharing helpers, 360 objects, one vendored
// subchart.
func BenchmarkHelmLargeChart(b *testing.B) {
	dir := largeChart(b, 120)
	root, err := os.OpenRoot(dir)
	if err != nil {
		b.Fatal(err)
	}
	defer root.Close()
	req := Request{FS: root.FS(), Path: "big", Namespace: "mon", Vars: Vars{Cluster: prodEU},
		Helm: Helm{Values: map[string]any{"region": "{{ .Cluster.Labels.region }}"}}}
	ctx := context.Background()
	bun, err := Render(ctx, req)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(bun.Len()), "objects")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Render(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRenderFleet renders the Helm chart for 10,000 clusters with 10
// distinct variable sets on a fresh Renderer each time: one build, ten
// renders, 10,000 digests.
func BenchmarkRenderFleet(b *testing.B) {
	clusters := fleet(10_000, 10)
	req := helmFleetRequest(b)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := NewRenderer(Options{})
		res, err := r.RenderFleet(ctx, req, clusters)
		if err != nil {
			b.Fatal(err)
		}
		if res.Renders != 10 {
			b.Fatalf("%d renders", res.Renders)
		}
	}
}

func largeChart(b *testing.B, templates int) string {
	b.Helper()
	dir := b.TempDir()
	w := func(p, body string) {
		p = filepath.Join(dir, "big", p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	w("Chart.yaml", "apiVersion: v2\nname: big\nversion: 1.0.0\ndependencies:\n- name: exporter\n  version: 1.0.0\n")
	w("values.yaml", "region: none\nreplicas: 2\nimage: {repository: example.com/app, tag: \"1.0\"}\nresources: {limits: {cpu: 100m, memory: 128Mi}}\nextraLabels: {team: platform, tier: backend}\n")
	w("templates/_helpers.tpl", `{{- define "big.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | trunc 63 }}
{{- range $k, $v := .Values.extraLabels }}
{{ $k }}: {{ $v | quote }}
{{- end }}
{{- end -}}
`)
	for i := 0; i < templates; i++ {
		w(fmt.Sprintf("templates/component-%03d.yaml", i), fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-c%[1]d
  labels:
    {{- include "big.labels" . | nindent 4 }}
spec:
  replicas: {{ .Values.replicas }}
  selector:
    matchLabels: {app: c%[1]d}
  template:
    metadata:
      labels:
        app: c%[1]d
        {{- include "big.labels" . | nindent 8 }}
    spec:
      containers:
      - name: main
        image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"
        env:
        - {name: REGION, value: {{ .Values.region | quote }}}
        resources:
          {{- toYaml .Values.resources | nindent 10 }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ .Release.Name }}-c%[1]d
  labels:
    {{- include "big.labels" . | nindent 4 }}
spec:
  selector: {app: c%[1]d}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-c%[1]d
data:
  config.yaml: |
    {{- dict "region" .Values.region "index" %[1]d | toYaml | nindent 4 }}
`, i))
	}
	w("charts/exporter/Chart.yaml", "apiVersion: v2\nname: exporter\nversion: 1.0.0\n")
	w("charts/exporter/templates/ds.yaml", "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: exporter}\nspec:\n  selector: {matchLabels: {app: exporter}}\n  template:\n    metadata: {labels: {app: exporter}}\n    spec: {containers: [{name: e, image: example.com/exporter:1}]}\n")
	return dir
}
