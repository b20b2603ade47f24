package server_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/client"
)

// The service page's release form, over a real Git repository: only roles that may create
// releases see it and may post it; it starts from the source's branch; posting a commit id
// makes that release (201, its name shown, the person in the audit trail), posting it again
// says it exists (200), and a ref that does not resolve shows the API's error as text (422).
func TestDashboardCreatesReleases(t *testing.T) {
	e := newDeployEnv(t)
	first := e.repo.Head(t)
	e.waitCommit(t, "shop", first)
	deployer, viewer := signIn(t, e.env, "deployer"), signIn(t, e.env, "viewer")

	_, _, page := viewer.do("GET", "/ui/services/web", nil, nil)
	if strings.Contains(page, `id="release-form"`) {
		t.Error("a viewer sees the release form")
	}
	if code, _, _ := viewer.do("POST", "/ui/services/web", url.Values{"csrf": {viewer.csrf}, "ref": {first}}, nil); code != http.StatusForbidden {
		t.Errorf("a viewer's release: %d, want 403", code)
	}
	if code, _, _ := deployer.do("POST", "/ui/services/web", url.Values{"ref": {first}}, nil); code != http.StatusForbidden {
		t.Errorf("a release without the CSRF token: %d, want 403", code)
	}
	_, _, page = deployer.do("GET", "/ui/services/web", nil, nil)
	if !strings.Contains(page, `id="release-form"`) || !strings.Contains(page, `id="release-ref" value="main"`) {
		t.Fatalf("the deployer's service page has no release form starting from main:\n%s", page)
	}

	// A commit the controller has not released (it releases the branch's head as it moves,
	// and has released the first by now).
	ctx := context.Background()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		o, err := e.admin.Get(ctx, v1.KindService, "web")
		if err != nil {
			t.Fatal(err)
		}
		if o.(*v1.Service).Status.LatestRelease != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the controller did not release the branch's first commit")
		}
	}
	before, err := e.admin.List(ctx, v1.KindRelease, client.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	second := e.repo.Commit(t, "v2", map[string]string{"deploy/web/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\ndata: {v: \"2\"}\n"})
	code, _, body := deployer.do("POST", "/ui/services/web", url.Values{"csrf": {deployer.csrf}, "ref": {second}}, nil)
	if code != http.StatusCreated || !strings.Contains(body, "Created release") {
		t.Fatalf("release at %s: %d\n%s", second, code, body)
	}
	rels, err := e.admin.List(ctx, v1.KindRelease, client.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var made *v1.Release
	for _, o := range rels.Items {
		if r := o.(*v1.Release); r.Spec.Commit.SHA == second {
			made = r
		}
	}
	if made == nil || len(rels.Items) != len(before.Items)+1 {
		for _, o := range rels.Items {
			t.Logf("release %s: %+v", o.(*v1.Release).Metadata.Name, o.(*v1.Release).Spec.Commit)
		}
		t.Fatalf("releases before %d, after %d; none of %s", len(before.Items), len(rels.Items), second)
	}
	if !strings.Contains(body, `id="release-name">`+made.Metadata.Name+`<`) || !strings.Contains(body, `value="`+second+`"`) {
		t.Errorf("the page does not name release %s or keep the ref:\n%s", made.Metadata.Name, body)
	}
	audit, err := e.admin.Audit(ctx, client.AuditOptions{Kind: v1.KindRelease, Name: made.Metadata.Name})
	if err != nil {
		t.Fatal(err)
	}
	if len(audit.Items) == 0 || audit.Items[0].Type != "Created" || !strings.Contains(audit.Items[0].Actor.Name, "deployer") {
		t.Errorf("audit of %s: %+v, want Created by the deployer", made.Metadata.Name, audit.Items)
	}

	code, _, body = deployer.do("POST", "/ui/services/web", url.Values{"csrf": {deployer.csrf}, "ref": {second}}, nil)
	if code != http.StatusOK || !strings.Contains(body, "Already released as") || !strings.Contains(body, made.Metadata.Name) {
		t.Errorf("the same release again: %d\n%s", code, body)
	}

	code, _, body = deployer.do("POST", "/ui/services/web", url.Values{"csrf": {deployer.csrf}, "ref": {"tag:<script>nope</script>"}}, nil)
	if code != http.StatusUnprocessableEntity || !strings.Contains(body, `class="error" id="release-result"`) || strings.Contains(body, "<script>nope") ||
		!strings.Contains(body, "&lt;script&gt;nope") {
		t.Errorf("a ref that does not resolve: %d\n%s", code, body)
	}
}

// The retry button: not on a rollout waiting for approval or paused by a person; on one a
// person aborted, where
// pressing it starts a new rollout of the release and shows that one.
func TestDashboardRetriesFinishedRollouts(t *testing.T) {
	e := newEnv(t)
	dashboardFixture(t, e)
	deployer := signIn(t, e, "deployer")
	if _, _, page := deployer.do("GET", "/ui/rollouts/web-1", nil, nil); strings.Contains(page, `id="btn-retry"`) {
		t.Error("retry offered on a rollout waiting for approval")
	}
	ctx := context.Background()
	// Paused by a person, not by a failure: resume, no retry (the engine would refuse it).
	if _, err := e.admin.RolloutAction(ctx, "web-1", "pause", ""); err != nil {
		t.Fatal(err)
	}
	if _, _, page := deployer.do("GET", "/ui/rollouts/web-1", nil, nil); !strings.Contains(page, `id="btn-resume"`) || strings.Contains(page, `id="btn-retry"`) {
		t.Errorf("a rollout a person paused: want resume and no retry:\n%s", page)
	}
	if _, err := e.admin.RolloutAction(ctx, "web-1", "abort", ""); err != nil {
		t.Fatal(err)
	}
	_, _, page := deployer.do("GET", "/ui/rollouts/web-1", nil, nil)
	if !strings.Contains(page, `id="btn-retry"`) || strings.Contains(page, `id="btn-pause"`) {
		t.Fatalf("an aborted rollout's buttons are not just retry:\n%s", page)
	}
	viewer := signIn(t, e, "viewer")
	if _, _, page := viewer.do("GET", "/ui/rollouts/web-1", nil, nil); strings.Contains(page, `id="btn-retry"`) {
		t.Error("a viewer sees the retry button")
	}
	code, h, body := deployer.do("POST", "/ui/rollouts/web-1/retry", url.Values{"csrf": {deployer.csrf}}, nil)
	if code != http.StatusSeeOther || h.Get("Location") != "/ui/rollouts/web-1-retry2" {
		t.Fatalf("retry: %d to %q\n%s", code, h.Get("Location"), body)
	}
	o, err := e.admin.Get(ctx, v1.KindRollout, "web-1-retry2")
	if err != nil {
		t.Fatal(err)
	}
	if ro := o.(*v1.Rollout); ro.Spec.Release != "web-1" || ro.Spec.Service != "web" {
		t.Errorf("the retry rolls out %s of %s, want web-1 of web", ro.Spec.Release, ro.Spec.Service)
	}
}
