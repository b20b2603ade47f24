package deploy_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/internal/bundle"
	"flotilla.dev/flotilla/internal/deploy"
	"flotilla.dev/flotilla/internal/source"
	"flotilla.dev/flotilla/internal/source/gittest"
	"flotilla.dev/flotilla/internal/store"
	"flotilla.dev/flotilla/internal/store/open"
)

var tester = store.Actor{Kind: store.ActorUser, Name: "tester"}

// env is a controller running on a real SQLite store, fetching real Git
// repositories.
type env struct {
	t  testing.TB
	st store.Store
	c  *deploy.Controller
	f  *source.Fetcher
}

type secrets map[string][]byte

func (s secrets) WebhookSecret(_ context.Context, ref string) ([]byte, error) {
	if k, ok := s[ref]; ok {
		return k, nil
	}
	return nil, source.ErrNoSecret
}

// newEnv starts a controller; run=false leaves it stopped (for calling its
// methods directly).
func newEnv(t testing.TB, run bool) *env {
	t.Helper()
	return newEnvAllowing(t, run, true)
}

// newEnvAllowing is newEnv with the fetcher's AllowLocal as given.
func newEnvAllowing(t testing.TB, run, allowLocal bool) *env {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	st, err := open.Open(ctx, filepath.Join(t.TempDir(), "flotilla.db"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := source.NewFetcher(source.Options{CacheDir: t.TempDir(), AllowLocal: allowLocal})
	if err != nil {
		t.Fatal(err)
	}
	c, err := deploy.New(deploy.Options{Store: st, Fetcher: f, WorkDir: t.TempDir(), Secrets: secrets{"hook": []byte("s3cret")}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	if run {
		go func() { done <- c.Run(ctx) }()
	} else {
		done <- nil
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("controller: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("controller did not stop within 30s")
		}
		st.Close()
	})
	return &env{t: t, st: st, c: c, f: f}
}

// put creates or replaces an object's spec and labels.
func (e *env) put(obj v1.Object) {
	e.t.Helper()
	obj.Default()
	if err := obj.Validate(); err != nil {
		e.t.Fatalf("invalid test object: %v", err)
	}
	data, err := json.Marshal(obj)
	if err != nil {
		e.t.Fatal(err)
	}
	var w struct {
		Kind     string          `json:"kind"`
		Metadata v1.ObjectMeta   `json:"metadata"`
		Spec     json.RawMessage `json:"spec"`
	}
	if err := json.Unmarshal(data, &w); err != nil {
		e.t.Fatal(err)
	}
	o := &store.Object{Kind: w.Kind, Name: w.Metadata.Name, Labels: w.Metadata.Labels, Spec: w.Spec}
	if _, err := e.st.Apply(context.Background(), []*store.Object{o}, tester); err != nil {
		e.t.Fatalf("apply %s %s: %v", w.Kind, w.Metadata.Name, err)
	}
}

func (e *env) get(kind, name string, into any) error {
	o, err := e.st.Get(context.Background(), kind, name)
	if err != nil {
		return err
	}
	w := map[string]json.RawMessage{"spec": o.Spec, "status": o.Status}
	if len(o.Status) == 0 {
		delete(w, "status")
	}
	data, _ := json.Marshal(w)
	return json.Unmarshal(data, into)
}

func (e *env) service(name string) *v1.Service {
	e.t.Helper()
	var s v1.Service
	if err := e.get(v1.KindService, name, &s); err != nil {
		e.t.Fatal(err)
	}
	return &s
}

func (e *env) source(name string) *v1.Source {
	e.t.Helper()
	var s v1.Source
	if err := e.get(v1.KindSource, name, &s); err != nil {
		e.t.Fatal(err)
	}
	return &s
}

func (e *env) release(name string) *v1.Release {
	e.t.Helper()
	var r v1.Release
	if err := e.get(v1.KindRelease, name, &r); err != nil {
		e.t.Fatalf("release %s: %v", name, err)
	}
	r.Metadata.Name = name
	return &r
}

func (e *env) releases() []string {
	e.t.Helper()
	l, err := e.st.List(context.Background(), v1.KindRelease, store.ListOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, o := range l.Items {
		out = append(out, o.Name)
	}
	return out
}

// assigned returns the release and bundle of service on cluster ("" if none).
func (e *env) assigned(cluster, service string) (release, digest string) {
	e.t.Helper()
	ds, err := e.st.Desired(context.Background(), cluster)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, a := range ds.Assignments {
		if a.Service == service {
			return a.Release, a.Bundle
		}
	}
	return "", ""
}

// objects decodes a stored bundle.
func (e *env) objects(digest string) []map[string]any {
	e.t.Helper()
	data, err := e.st.GetBundle(context.Background(), digest)
	if err != nil {
		e.t.Fatalf("bundle %s: %v", digest, err)
	}
	b, err := bundle.Decode(data, digest)
	if err != nil {
		e.t.Fatal(err)
	}
	return b.Objects()
}

// eventually polls cond every 20 ms until it returns nil or limit passes.
func eventually(t testing.TB, limit time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %v", what, limit, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func cluster(name string, labels map[string]string, vars map[string]string) *v1.Cluster {
	return &v1.Cluster{Metadata: v1.ObjectMeta{Name: name, Labels: labels}, Spec: v1.ClusterSpec{Vars: vars}}
}

func gitSource(name, url string) *v1.Source {
	return &v1.Source{Metadata: v1.ObjectMeta{Name: name}, Spec: v1.SourceSpec{Git: &v1.GitSource{URL: url,
		Ref: v1.GitRef{Branch: "main"}, Interval: "10m", WebhookSecretRef: "hook"}}}
}

func service(name, src, path string, sel map[string]string) *v1.Service {
	return &v1.Service{Metadata: v1.ObjectMeta{Name: name}, Spec: v1.ServiceSpec{
		Source: v1.ServiceSource{Name: src, Path: path}, Namespace: "web",
		Placement: v1.Placement{ClusterSelector: &v1.LabelSelector{MatchLabels: sel}}}}
}

// webRepo makes a repository with a plain-YAML service at deploy/web whose
// ConfigMap names the cluster and its replicas variable.
func webRepo(t testing.TB) *gittest.Repo {
	t.Helper()
	r := gittest.NewRepo(t, "shop.git")
	r.Commit(t, "Add web\n\nFirst version.", map[string]string{"deploy/web/cm.yaml": webManifest("1")})
	return r
}

func webManifest(version string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: ConfigMap
metadata:
  name: web
data:
  cluster: ${cluster.name}
  replicas: "${cluster.vars.replicas}"
  version: "%s"
`, version)
}

// configData returns the data of the ConfigMap web in a bundle.
func configData(t testing.TB, objs []map[string]any) map[string]any {
	t.Helper()
	for _, o := range objs {
		if o["kind"] == "ConfigMap" {
			d, _ := o["data"].(map[string]any)
			return d
		}
	}
	t.Fatalf("no ConfigMap in %v", objs)
	return nil
}

func condition(conds []v1.Condition, typ string) *v1.Condition {
	for i := range conds {
		if conds[i].Type == typ {
			return &conds[i]
		}
	}
	return nil
}

var errNotYet = errors.New("not yet")

// trigger calls source's webhook, as the server's webhook route does.
func (e *env) trigger(src string) {
	e.t.Helper()
	if err := e.c.Trigger(context.Background(), src, "refs/heads/main", ""); err != nil {
		e.t.Fatalf("trigger %s: %v", src, err)
	}
}
