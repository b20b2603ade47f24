package server_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/internal/deploy"
	"flotilla.dev/flotilla/internal/server"
	"flotilla.dev/flotilla/internal/source"
	"flotilla.dev/flotilla/internal/source/gittest"
)

type hookSecrets map[string]string

func (h hookSecrets) WebhookSecret(_ context.Context, ref string) ([]byte, error) {
	if s, ok := h[ref]; ok {
		return []byte(s), nil
	}
	return nil, source.ErrNoSecret
}

// deployEnv is an env whose server runs a source and release controller over a real Git
// repository with a plain-YAML service at deploy/web.
type deployEnv struct {
	*env
	repo *gittest.Repo
	ctl  *deploy.Controller
}

func newDeployEnv(t *testing.T) *deployEnv {
	t.Helper()
	repo := gittest.NewRepo(t, "shop.git")
	repo.Commit(t, "Add web", map[string]string{"deploy/web/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\ndata:\n  cluster: ${cluster.name}\n  v: \"1\"\n"})
	var ctl *deploy.Controller
	e := newEnv(t, func(o *server.Options) {
		f, err := source.NewFetcher(source.Options{CacheDir: t.TempDir(), AllowLocal: true})
		if err != nil {
			t.Fatal(err)
		}
		ctl, err = deploy.New(deploy.Options{Store: o.Store, Fetcher: f, WorkDir: t.TempDir(), Secrets: hookSecrets{"shop-hook": "s3cret"}})
		if err != nil {
			t.Fatal(err)
		}
		o.Deploy = ctl
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = ctl.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	objs := []v1.Object{
		&v1.Cluster{Metadata: v1.ObjectMeta{Name: "prod-1", Labels: map[string]string{"env": "prod"}}},
		&v1.Source{Metadata: v1.ObjectMeta{Name: "shop"}, Spec: v1.SourceSpec{Git: &v1.GitSource{URL: repo.FileURL(),
			Ref: v1.GitRef{Branch: "main"}, Interval: "10m", WebhookSecretRef: "shop-hook"}}},
		&v1.Source{Metadata: v1.ObjectMeta{Name: "nohook"}, Spec: v1.SourceSpec{Git: &v1.GitSource{URL: repo.FileURL(),
			Ref: v1.GitRef{Branch: "main"}, Interval: "10m"}}},
		&v1.Service{Metadata: v1.ObjectMeta{Name: "web"}, Spec: v1.ServiceSpec{Source: v1.ServiceSource{Name: "shop", Path: "deploy/web"},
			Placement: v1.Placement{ClusterSelector: &v1.LabelSelector{MatchLabels: map[string]string{"env": "prod"}}}}},
	}
	for _, o := range objs {
		o.Default()
	}
	if _, err := e.admin.Apply(context.Background(), objs); err != nil {
		t.Fatal(err)
	}
	return &deployEnv{env: e, repo: repo, ctl: ctl}
}

func (e *deployEnv) sourceCommit(t *testing.T, name string) string {
	t.Helper()
	o, err := e.admin.Get(context.Background(), "sources", name)
	if err != nil {
		t.Fatal(err)
	}
	if c := o.(*v1.Source).Status.Commit; c != nil {
		return c.SHA
	}
	return ""
}

func (e *deployEnv) waitCommit(t *testing.T, name, sha string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for e.sourceCommit(t, name) != sha {
		if time.Now().After(deadline) {
			t.Fatalf("source %s is at %q, want %s", name, e.sourceCommit(t, name), sha)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// hook posts a webhook to source with the given headers and answers the status code.
func (e *deployEnv) hook(t *testing.T, src string, body []byte, header map[string]string) int {
	t.Helper()
	req, err := http.NewRequest("POST", e.ts.URL+"/api/v1/sources/"+src+"/webhook", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// Given a source polled every ten minutes, when its webhook is called with a valid GitHub
// signature or GitLab token, then the new commit is fetched at once; calls with a wrong, missing
// or foreign signature, for a source without a webhook secret or an unknown source, are refused
// with 401 and fetch nothing; an oversized body is refused with 413.
func TestSourceWebhook(t *testing.T) {
	e := newDeployEnv(t)
	e.waitCommit(t, "shop", e.repo.Head(t))
	second := e.repo.Commit(t, "v2", map[string]string{"deploy/web/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\ndata: {v: \"2\"}\n"})
	push := []byte(fmt.Sprintf(`{"ref":"refs/heads/main","after":%q,"repository":{"clone_url":%q}}`, second, e.repo.FileURL()))
	gh := func(secret string) map[string]string {
		return map[string]string{source.GitHubSignatureHeader: source.SignGitHub([]byte(secret), push), source.GitHubEventHeader: "push"}
	}
	for name, tc := range map[string]struct {
		src    string
		body   []byte
		header map[string]string
		want   int
	}{
		"wrong secret":       {"shop", push, gh("guess"), http.StatusUnauthorized},
		"no signature":       {"shop", push, map[string]string{source.GitHubEventHeader: "push"}, http.StatusUnauthorized},
		"malformed":          {"shop", push, map[string]string{source.GitHubSignatureHeader: "sha256=zz"}, http.StatusUnauthorized},
		"body changed":       {"shop", append(push, ' '), gh("s3cret"), http.StatusUnauthorized},
		"gitlab wrong token": {"shop", push, map[string]string{source.GitLabTokenHeader: "guess", source.GitLabEventHeader: "Push Hook"}, http.StatusUnauthorized},
		"no webhook secret":  {"nohook", push, gh("s3cret"), http.StatusUnauthorized},
		"unknown source":     {"nosuch", push, gh("s3cret"), http.StatusUnauthorized},
		"too large":          {"shop", bytes.Repeat([]byte("x"), server.MaxWebhookBody+1), gh("s3cret"), http.StatusRequestEntityTooLarge},
	} {
		if code := e.hook(t, tc.src, tc.body, tc.header); code != tc.want {
			t.Errorf("%s: %d, want %d", name, code, tc.want)
		}
	}
	time.Sleep(time.Second)
	if got := e.sourceCommit(t, "shop"); got == second {
		t.Fatalf("a refused webhook fetched the new commit")
	}
	if code := e.hook(t, "shop", push, gh("s3cret")); code != http.StatusAccepted {
		t.Fatalf("signed GitHub push: %d, want 202", code)
	}
	e.waitCommit(t, "shop", second)

	third := e.repo.Commit(t, "v3", map[string]string{"deploy/web/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\ndata: {v: \"3\"}\n"})
	if code := e.hook(t, "shop", []byte(`{"ref":"refs/heads/main"}`), map[string]string{source.GitLabTokenHeader: "s3cret", source.GitLabEventHeader: "Push Hook"}); code != http.StatusAccepted {
		t.Fatalf("GitLab push with the token: %d, want 202", code)
	}
	e.waitCommit(t, "shop", third)
}

// Release create, preview and diff through the client: a release by hand is 201, the same again
// 200; bad refs and unrenderable requests are 422, unknown services 404.
func TestReleaseRoutes(t *testing.T) {
	e := newDeployEnv(t)
	ctx := context.Background()
	head := e.repo.Head(t)
	rel, created, err := e.deploy.CreateRelease(ctx, "web", "main")
	if err != nil || rel.Spec.Commit.SHA != head {
		t.Fatalf("release create: %v %+v", err, rel)
	}
	_ = created // the controller may have cut it first from its own fetch
	again, created, err := e.deploy.CreateRelease(ctx, "web", "commit:"+head)
	if err != nil || created || again.Metadata.Name != rel.Metadata.Name {
		t.Fatalf("release create again: %v created=%v %s, want %s unchanged", err, created, again.Metadata.Name, rel.Metadata.Name)
	}
	second := e.repo.Commit(t, "v2", map[string]string{"deploy/web/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\ndata:\n  cluster: ${cluster.name}\n  v: \"2\"\n"})
	rel2, created, err := e.deploy.CreateRelease(ctx, "web", "")
	if err != nil || !created || rel2.Spec.Commit.SHA != second {
		t.Fatalf("release of the source's ref: %v created=%v", err, created)
	}
	pv, err := e.viewer.Preview(ctx, "web", "prod-1", "")
	if err != nil || len(pv.Manifests) != 1 || !strings.Contains(string(pv.Manifests[0]), `"cluster":"prod-1"`) {
		t.Fatalf("preview: %v %+v", err, pv)
	}
	d, err := e.viewer.ReleaseDiff(ctx, rel.Metadata.Name, rel2.Metadata.Name, "prod-1")
	if err != nil || !strings.Contains(d.Diff, "-  v: \"1\"") || !strings.Contains(d.Diff, "+  v: \"2\"") {
		t.Fatalf("diff: %v\n%+v", err, d)
	}
	_, _, err = e.deploy.CreateRelease(ctx, "web", "no-such-branch")
	wantStatus(t, err, http.StatusUnprocessableEntity, v1.ReasonInvalid)
	_, _, err = e.deploy.CreateRelease(ctx, "nosuch", "")
	wantStatus(t, err, http.StatusNotFound, v1.ReasonNotFound)
	_, err = e.viewer.Preview(ctx, "web", "", "")
	wantStatus(t, err, http.StatusBadRequest, v1.ReasonBadRequest)
	_, err = e.viewer.Preview(ctx, "web", "nosuch", "")
	wantStatus(t, err, http.StatusNotFound, v1.ReasonNotFound)
	_, err = e.viewer.ReleaseDiff(ctx, rel.Metadata.Name, "nosuch", "")
	wantStatus(t, err, http.StatusNotFound, v1.ReasonNotFound)
}

// TestReleaseRoutesAuthorization sends every release route as every role and checks the answers
// against the written policy of TestAuthorizationMatrix (allowedByPolicy); the webhook is public
// but authenticated by its signature (TestSourceWebhook), so without one it is 401 for everyone.
func TestReleaseRoutesAuthorization(t *testing.T) {
	e := newDeployEnv(t)
	ctx := context.Background()
	rel, _, err := e.admin.CreateRelease(ctx, "web", "main")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, rt := range e.srv.Routes() {
		var path string
		var body []byte
		switch rt.Pattern() {
		case "POST /api/v1/services/{name}/releases":
			path, body = "/api/v1/services/web/releases", []byte(`{"ref":"main"}`)
		case "GET /api/v1/services/{name}/preview":
			path = "/api/v1/services/web/preview?cluster=prod-1"
		case "GET /api/v1/releases/{name}/diff":
			path = "/api/v1/releases/" + rel.Metadata.Name + "/diff?to=" + rel.Metadata.Name
		case "POST /api/v1/sources/{name}/webhook":
			for _, role := range []string{"admin", "deployer", "viewer", ""} {
				if code := e.status(rt.Method, "/api/v1/sources/shop/webhook", e.secrets[role], "", []byte(`{}`)); code != http.StatusUnauthorized {
					t.Errorf("webhook without a signature as %q: %d, want 401", role, code)
				}
			}
			n++
			continue
		default:
			continue
		}
		n++
		for _, role := range []string{"admin", "deployer", "viewer", "", "bad"} {
			token := e.secrets[role]
			if role == "bad" {
				token = "flt_" + strings.Repeat("z", 43)
			}
			code := e.status(rt.Method, path, token, "", body)
			switch {
			case role == "" || role == "bad":
				if code != http.StatusUnauthorized {
					t.Errorf("%s with %q token: %d, want 401", rt.Pattern(), role, code)
				}
			case allowedByPolicy(role, rt):
				if code < 200 || code > 299 {
					t.Errorf("%s as %s: %d, want 2xx", rt.Pattern(), role, code)
				}
			default:
				if code != http.StatusForbidden {
					t.Errorf("%s as %s: %d, want 403", rt.Pattern(), role, code)
				}
			}
		}
	}
	if n != 4 {
		t.Errorf("checked %d release routes, want 4", n)
	}
}
