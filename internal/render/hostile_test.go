package render

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"flotilla.dev/flotilla/internal/render/manifest"
	"flotilla.dev/flotilla/internal/render/repofs"
)

// hostileRepo writes a repository into a fresh directory next to a
// directory standing for another repository's cache, and returns the
// repository root opened as an os.Root.
func hostileRepo(t *testing.T, files map[string]string, links map[string]string) *os.Root {
	t.Helper()
	base := t.TempDir()
	repo := filepath.Join(base, "repo")
	other := filepath.Join(base, "cache", "other-repo")
	for _, d := range []string{repo, other} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(other, "secret.yaml"), []byte("apiVersion: v1\nkind: Secret\nmetadata: {name: stolen}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, body := range files {
		p := filepath.Join(repo, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, target := range links {
		p := filepath.Join(repo, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		target = strings.ReplaceAll(target, "$OTHER", other)
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
	root, err := os.OpenRoot(repo)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	return root
}

const cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ok}\n"

const chartYAML = "apiVersion: v2\nname: c\nversion: 0.1.0\n"

func kust(body string) map[string]string {
	return map[string]string{"app/kustomization.yaml": body, "app/cm.yaml": cm}
}

func TestHostileInput(t *testing.T) {
	tests := []struct {
		name    string
		files   map[string]string
		links   map[string]string
		req     Request
		want    error
		wantMsg string // must appear in the error
	}{
		// Paths in kustomizations.
		{name: "kustomize base climbs out", files: kust("resources:\n- cm.yaml\n- ../../../../etc\n"),
			req: Request{Path: "app"}, want: repofs.ErrEscapes, wantMsg: "app/kustomization.yaml:3: resources"},
		{name: "kustomize absolute resource", files: kust("resources:\n- /etc/passwd\n"),
			req: Request{Path: "app"}, want: repofs.ErrAbsolute, wantMsg: "app/kustomization.yaml:2"},
		{name: "kustomize legacy bases", files: kust("bases:\n- ../..\n"),
			req: Request{Path: "app"}, want: repofs.ErrEscapes, wantMsg: "bases"},
		{name: "kustomize remote https base", files: kust("resources:\n- https://github.com/example/repo//deploy?ref=main\n"),
			req: Request{Path: "app"}, want: repofs.ErrRemote, wantMsg: "app/kustomization.yaml:2"},
		{name: "kustomize remote github shorthand", files: kust("resources:\n- github.com/example/repo/deploy\n"),
			req: Request{Path: "app"}, want: repofs.ErrRemote},
		{name: "kustomize remote scp", files: kust("components:\n- git@example.com:org/repo.git\n"),
			req: Request{Path: "app"}, want: repofs.ErrRemote},
		{name: "kustomize patch outside", files: kust("resources: [cm.yaml]\npatches:\n- path: ../../../etc/hosts\n"),
			req: Request{Path: "app"}, want: repofs.ErrEscapes, wantMsg: "patches.path"},
		{name: "kustomize generator file absolute", files: kust("configMapGenerator:\n- name: x\n  files:\n  - passwd=/etc/passwd\n"),
			req: Request{Path: "app"}, want: repofs.ErrAbsolute, wantMsg: "app/kustomization.yaml:4"},
		{name: "kustomize helm inflation", files: kust("helmCharts:\n- name: x\n  repo: https://charts.example.com\n"),
			req: Request{Path: "app"}, want: ErrUnsupported},
		{name: "kustomize nested base escapes", files: map[string]string{
			"app/kustomization.yaml":  "resources: [../base]\n",
			"base/kustomization.yaml": "resources: [../../outside]\n",
		}, req: Request{Path: "app"}, want: repofs.ErrEscapes, wantMsg: "base/kustomization.yaml:1"},
		{name: "kustomize symlinked base to /etc", files: kust("resources: [cm.yaml, etc]\n"), links: map[string]string{"app/etc": "/etc"},
			req: Request{Path: "app"}, want: repofs.ErrOutside},

		// Helm values files and chart references.
		{name: "helm values file climbs out", files: map[string]string{"c/Chart.yaml": chartYAML},
			req: Request{Path: "c", Helm: Helm{ValuesFiles: []string{"../../../etc/passwd"}}}, want: repofs.ErrEscapes},
		{name: "helm values file absolute", files: map[string]string{"c/Chart.yaml": chartYAML},
			req: Request{Path: "c", Helm: Helm{ValuesFiles: []string{"/etc/passwd"}}}, want: repofs.ErrAbsolute},
		{name: "helm values file remote", files: map[string]string{"c/Chart.yaml": chartYAML},
			req: Request{Path: "c", Helm: Helm{ValuesFiles: []string{"https://example.com/values.yaml"}}}, want: repofs.ErrRemote},
		{name: "helm chart path climbs out", req: Request{Path: "../other"}, want: repofs.ErrEscapes},
		{name: "helm chart path absolute", req: Request{Path: "/etc", Type: TypeHelm}, want: repofs.ErrAbsolute},
		{name: "helm dependency not vendored", files: map[string]string{
			"c/Chart.yaml": chartYAML + "dependencies:\n- name: evil\n  version: 1.0.0\n  repository: file://../../../etc\n",
		}, req: Request{Path: "c"}, want: ErrChartDependency, wantMsg: "c/Chart.yaml"},
		{name: "helm template symlink to /etc", files: map[string]string{"c/Chart.yaml": chartYAML},
			links: map[string]string{"c/templates/passwd.yaml": "/etc/passwd"}, req: Request{Path: "c"}, want: repofs.ErrOutside},
		{name: "helm values symlink to other cache", files: map[string]string{"c/Chart.yaml": chartYAML, "c/templates/cm.yaml": cm},
			links: map[string]string{"c/prod.yaml": "$OTHER/secret.yaml"},
			req:   Request{Path: "c", Helm: Helm{ValuesFiles: []string{"prod.yaml"}}}, want: repofs.ErrOutside},

		// Symbolic links in plain YAML.
		{name: "raw symlink to /etc", files: map[string]string{"app/cm.yaml": cm}, links: map[string]string{"app/passwd.yaml": "/etc/passwd"},
			req: Request{Path: "app"}, want: repofs.ErrOutside, wantMsg: "app/passwd.yaml"},
		{name: "raw symlink to another cache", files: map[string]string{"app/cm.yaml": cm}, links: map[string]string{"app/stolen.yaml": "$OTHER/secret.yaml"},
			req: Request{Path: "app"}, want: repofs.ErrOutside, wantMsg: "app/stolen.yaml"},
		{name: "raw relative symlink climbing out", files: map[string]string{"app/cm.yaml": cm}, links: map[string]string{"app/up.yaml": "../../cache/other-repo/secret.yaml"},
			req: Request{Path: "app"}, want: repofs.ErrOutside},
		{name: "raw symlink loop", files: map[string]string{"app/cm.yaml": cm}, links: map[string]string{"app/a.yaml": "b.yaml", "app/b.yaml": "a.yaml"},
			req: Request{Path: "app"}, want: repofs.ErrSymlinkLoop, wantMsg: "app/a.yaml"},
		{name: "service path is a symlink out", links: map[string]string{"app": "/etc"}, req: Request{Path: "app"}, want: repofs.ErrOutside},

		// Bombs and deep documents.
		{name: "billion laughs", files: map[string]string{"app/bomb.yaml": billionLaughs(9)},
			req: Request{Path: "app"}, want: manifest.ErrTooLarge, wantMsg: "app/bomb.yaml"},
		{name: "deep nesting", files: map[string]string{"app/deep.yaml": cm + "data:\n  x: " + strings.Repeat("[", 500) + strings.Repeat("]", 500) + "\n"},
			req: Request{Path: "app"}, want: manifest.ErrTooDeep, wantMsg: "app/deep.yaml:5"},
		{name: "deep values file", files: map[string]string{"c/Chart.yaml": chartYAML, "c/v.yaml": "a: " + strings.Repeat("{b: ", 300) + strings.Repeat("}", 300) + "\n"},
			req: Request{Path: "c", Helm: Helm{ValuesFiles: []string{"v.yaml"}}}, want: manifest.ErrTooDeep, wantMsg: "c/v.yaml"},

		// Budgets.
		{name: "oversized file", files: map[string]string{"app/big.yaml": cm + "data:\n  x: " + strings.Repeat("a", 100_000) + "\n"},
			req: Request{Path: "app", Limits: Limits{MaxBytes: 10_000}}, want: repofs.ErrTooManyBytes, wantMsg: "app/big.yaml"},
		{name: "too many files", files: manyFiles(50),
			req: Request{Path: "app", Limits: Limits{MaxFiles: 20}}, want: repofs.ErrTooManyFiles},
		{name: "render timeout", files: map[string]string{
			"c/Chart.yaml":          chartYAML,
			"c/templates/slow.yaml": "{{- range until 2000 }}{{- range until 2000 }}{{- end }}{{- end }}\n" + cm,
		}, req: Request{Path: "c", Limits: Limits{Timeout: 50 * time.Millisecond}}, want: ErrTimeout},
		{name: "nothing to apply", files: map[string]string{"app/README.md": "no manifests"},
			req: Request{Path: "app"}, want: ErrEmpty},
		{name: "unknown substitution", files: map[string]string{"app/cm.yaml": cm + "data: {x: \"${cluster.secret}\"}\n"},
			req: Request{Path: "app"}, want: ErrVariable, wantMsg: "app/cm.yaml:4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := hostileRepo(t, tt.files, tt.links)
			req := tt.req
			req.FS = root.FS()
			req.Vars = Vars{Cluster: prodEU}
			start := time.Now()
			_, err := Render(context.Background(), req)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("error %q does not contain %q", err, tt.wantMsg)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Fatalf("refusing took %s", d)
			}
		})
	}
}

func manyFiles(n int) map[string]string {
	m := map[string]string{}
	for i := 0; i < n; i++ {
		m[fmt.Sprintf("app/cm-%03d.yaml", i)] = strings.Replace(cm, "name: ok", fmt.Sprintf("name: cm-%d", i), 1)
	}
	return m
}

func billionLaughs(levels int) string {
	var b strings.Builder
	b.WriteString("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: lol}\na0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n")
	for i := 1; i <= levels; i++ {
		fmt.Fprintf(&b, "a%d: &a%d [", i, i)
		for j := 0; j < 10; j++ {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "*a%d", i-1)
		}
		b.WriteString("]\n")
	}
	return b.String()
}
