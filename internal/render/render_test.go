package render

import (
	"context"
	"errors"
	"strings"
	"testing"

	"flotilla.dev/flotilla/internal/render/manifest"
)

func TestDetect(t *testing.T) {
	repo := testRepo(t)
	for path, want := range map[string]Type{
		"raw/app": TypeRaw, "kustomize/base": TypeKustomize, "kustomize/overlays/prod": TypeKustomize, "helm/web": TypeHelm,
	} {
		got, err := Detect(repo.FS(), path)
		if err != nil || got != want {
			t.Errorf("Detect(%s) = %s, %v; want %s", path, got, err, want)
		}
	}
	if _, err := Detect(repo.FS(), "nope"); err == nil {
		t.Error("Detect of a missing path succeeded")
	}
}

func TestExplicitTypeAndUnknownType(t *testing.T) {
	repo := testRepo(t)
	ctx := context.Background()
	// The chart directory read as plain YAML finds template text it cannot parse.
	_, err := Render(ctx, Request{FS: repo.FS(), Path: "helm/web/templates", Type: TypeRaw, Vars: Vars{Cluster: prodEU}})
	if !errors.Is(err, manifest.ErrSyntax) && !errors.Is(err, manifest.ErrNotObject) {
		t.Fatalf("templates as raw: got %v, want a located decoding error", err)
	}
	if err == nil || !strings.Contains(err.Error(), "helm/web/templates/") {
		t.Fatalf("error %v does not name the file", err)
	}
	if _, err := Render(ctx, Request{FS: repo.FS(), Path: "raw/app", Type: TypeKustomize}); err == nil || !strings.Contains(err.Error(), "no kustomization file") {
		t.Fatalf("raw as kustomize: %v", err)
	}
	if _, err := Render(ctx, Request{FS: repo.FS(), Path: "raw/app", Type: "jsonnet"}); !errors.Is(err, ErrUnknownType) {
		t.Fatalf("unknown type: %v", err)
	}
}

func TestRendererCachesOnlyWithCommit(t *testing.T) {
	repo := testRepo(t)
	ctx := context.Background()
	r := NewRenderer(Options{})
	req := Request{FS: repo.FS(), Path: "raw/app", Namespace: "app", Vars: Vars{Cluster: prodEU}}
	for i := 0; i < 2; i++ {
		if _, err := r.Render(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	if s := r.Stats(); s.Builds != 2 || s.Renders != 2 {
		t.Fatalf("without a commit: %+v, want 2 builds and 2 renders", s)
	}
	req.Commit = "abc"
	var digests []string
	for i := 0; i < 2; i++ {
		b, err := r.Render(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, b.Digest())
	}
	if s := r.Stats(); s.Builds != 3 || s.Renders != 3 {
		t.Fatalf("with a commit: %+v, want 3 builds and 3 renders", s)
	}
	if digests[0] != digests[1] {
		t.Fatal("cached render differs")
	}
	// An unreferenced label does not make a new render; a referenced one does.
	other := prodEU
	other.Labels = map[string]string{"region": "eu", "env": "prod", "rack": "7"}
	req.Vars.Cluster = other
	if _, err := r.Render(ctx, req); err != nil {
		t.Fatal(err)
	}
	if s := r.Stats(); s.Renders != 3 {
		t.Fatalf("unreferenced label caused a render: %+v", s)
	}
	other.Labels = map[string]string{"region": "us"}
	req.Vars.Cluster = other
	b, err := r.Render(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if s := r.Stats(); s.Renders != 4 || b.Digest() == digests[0] {
		t.Fatalf("referenced label: %+v, digest %s", s, b.Digest())
	}
}

func TestHelmValueTemplateErrors(t *testing.T) {
	repo := testRepo(t)
	ctx := context.Background()
	for name, v := range map[string]string{
		"missing label": "{{ .Cluster.Labels.zone }}",
		"bad syntax":    "{{ .Cluster.Name ",
		"unknown field": "{{ .Cluster.Secret }}",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Render(ctx, Request{FS: repo.FS(), Path: "helm/web", Vars: Vars{Cluster: prodEU},
				Helm: Helm{Values: map[string]any{"image": v}}})
			if err == nil || !strings.Contains(err.Error(), "helm value image") {
				t.Fatalf("got %v, want an error naming the value", err)
			}
		})
	}
}

func TestValueRefs(t *testing.T) {
	for tmpl, want := range map[string][]string{
		"{{ .Cluster.Name }}": {"name"},
		"{{ .Cluster.Labels.region }}-{{ $.Cluster.Vars.x }}": {"labels.region", "vars.x"},
		`{{ index .Cluster.Labels "a/b" }}`:                   {"labels.*"},
		"{{ range .Cluster.Vars }}{{ . }}{{ end }}":           {"*"},
		"{{ with .Cluster }}{{ .Name }}{{ end }}":             {"*"},
		"{{ if .Cluster.Vars.on }}yes{{ end }}":               {"vars.on"},
		"plain":                                               {},
	} {
		refs, err := valueRefs(map[string]any{"a": []any{map[string]any{"b": tmpl}}})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for r := range refs {
			got = append(got, r)
		}
		if !sameSet(got, want) {
			t.Errorf("%s: refs %v, want %v", tmpl, got, want)
		}
	}
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]bool{}
	for _, x := range a {
		m[x] = true
	}
	for _, x := range b {
		if !m[x] {
			return false
		}
	}
	return true
}
