package deploy_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/internal/deploy"
	"flotilla.dev/flotilla/internal/source/gittest"
)

// latest waits until service's latest release is no longer old and returns it.
func (e *env) latest(service, old string) *v1.Release {
	e.t.Helper()
	var name string
	eventually(e.t, 20*time.Second, "a new release of "+service, func() error {
		s := e.service(service)
		if s.Status.LatestRelease == "" || s.Status.LatestRelease == old {
			return fmt.Errorf("latestRelease %q; conditions %+v", s.Status.LatestRelease, s.Status.Conditions)
		}
		name = s.Status.LatestRelease
		return nil
	})
	// Let the hand-over that follows the release finish.
	eventually(e.t, 10*time.Second, "the controller settles", func() error {
		if !e.c.Idle() {
			return errNotYet
		}
		return nil
	})
	return e.release(name)
}

// Given a repository served over file:// or HTTP and three clusters, two of
// them prod, when a service without a strategy targets prod, then the
// commit is released for the two prod clusters (each with its own
// variables), assigned at once and recorded as current; when a new commit
// is pushed and the source triggered, then a new release follows.
func TestNewCommitProducesRelease(t *testing.T) {
	for _, transport := range []string{"file", "http"} {
		t.Run(transport, func(t *testing.T) {
			repo := webRepo(t)
			url := repo.FileURL()
			var srv *gittest.Server
			if transport == "http" {
				srv = gittest.Serve(t, repo.Root)
				url = srv.RepoURL(repo)
			}
			e := newEnv(t, true)
			e.put(cluster("prod-1", map[string]string{"env": "prod"}, map[string]string{"replicas": "3"}))
			e.put(cluster("prod-2", map[string]string{"env": "prod"}, map[string]string{"replicas": "5"}))
			e.put(cluster("dev-1", map[string]string{"env": "dev"}, map[string]string{"replicas": "1"}))
			e.put(gitSource("shop", url))
			e.put(service("web", "shop", "deploy/web", map[string]string{"env": "prod"}))

			rel := e.latest("web", "")
			first := repo.Head(t)
			if rel.Spec.Commit.SHA != first || !strings.HasPrefix(rel.Spec.Commit.Message, "Add web") ||
				!strings.HasPrefix(rel.Spec.Commit.Author, gittest.Author) || rel.Spec.Commit.Time == nil {
				t.Errorf("release commit %+v, want %s by %s with its message and time", rel.Spec.Commit, first, gittest.Author)
			}
			if rel.Metadata.Name == "" || rel.Status.Phase != v1.ReleaseRendered || len(rel.Status.Bundles) != 2 {
				t.Fatalf("release %+v: want Rendered with 2 bundles", rel.Status)
			}
			if rel.Spec.ServiceSpec.Source.Path != "deploy/web" {
				t.Errorf("release spec snapshot %+v", rel.Spec.ServiceSpec)
			}
			src := e.source("shop")
			if src.Status.Commit == nil || src.Status.Commit.SHA != first || src.Status.LastFetched == nil {
				t.Errorf("source status %+v, want commit %s and a fetch time", src.Status, first)
			}
			eventually(t, 10*time.Second, "web is current", func() error {
				if s := e.service("web"); s.Status.CurrentRelease != rel.Metadata.Name {
					return fmt.Errorf("currentRelease %q, want %q", s.Status.CurrentRelease, rel.Metadata.Name)
				}
				return nil
			})
			for c, replicas := range map[string]string{"prod-1": "3", "prod-2": "5"} {
				r, d := e.assigned(c, "web")
				if want := rel.Status.BundleFor(c); r != rel.Metadata.Name || d != want || d == "" {
					t.Fatalf("%s runs %s %s, want %s %s", c, r, d, rel.Metadata.Name, want)
				}
				data := configData(t, e.objects(d))
				if data["cluster"] != c || data["replicas"] != replicas || data["version"] != "1" {
					t.Errorf("%s bundle data %v", c, data)
				}
			}
			if r, _ := e.assigned("dev-1", "web"); r != "" {
				t.Errorf("dev-1 runs %s; it is not targeted", r)
			}
			if s := e.service("web"); s.Status.CurrentRelease != rel.Metadata.Name {
				t.Errorf("currentRelease %q, want %q", s.Status.CurrentRelease, rel.Metadata.Name)
			}

			second := repo.Commit(t, "Version 2", map[string]string{"deploy/web/cm.yaml": webManifest("2")})
			e.trigger("shop")
			rel2 := e.latest("web", rel.Metadata.Name)
			if rel2.Spec.Commit.SHA != second {
				t.Fatalf("second release is of %s, want %s", rel2.Spec.Commit.SHA, second)
			}
			eventually(t, 10*time.Second, "prod-2 runs the second release", func() error {
				r, d := e.assigned("prod-2", "web")
				if r != rel2.Metadata.Name {
					return fmt.Errorf("prod-2 runs %s", r)
				}
				if v := configData(t, e.objects(d))["version"]; v != "2" {
					return fmt.Errorf("prod-2 runs version %v", v)
				}
				return nil
			})
			// The first release is untouched.
			if again := e.release(rel.Metadata.Name); again.Status.BundleFor("prod-1") != rel.Status.BundleFor("prod-1") {
				t.Errorf("the first release changed")
			}
			if srv != nil && srv.Uploads.Load() == 0 {
				t.Errorf("no fetch went over HTTP")
			}
		})
	}
}

// Given a released service, when a commit breaks rendering, then no release
// is made, the previous one stays assigned, and the service is Stale with
// the render error; when a later commit fixes it, it is released and no
// longer stale.
func TestRenderFailureKeepsLastRelease(t *testing.T) {
	repo := webRepo(t)
	e := newEnv(t, true)
	e.put(cluster("prod-1", map[string]string{"env": "prod"}, map[string]string{"replicas": "3"}))
	e.put(gitSource("shop", repo.FileURL()))
	e.put(service("web", "shop", "deploy/web", map[string]string{"env": "prod"}))
	rel := e.latest("web", "")

	bad := repo.Commit(t, "Break it", map[string]string{"deploy/web/cm.yaml": strings.Replace(webManifest("2"), "${cluster.vars.replicas}", "${cluster.vars.missing}", 1)})
	e.trigger("shop")
	eventually(t, 20*time.Second, "web marked stale", func() error {
		c := condition(e.service("web").Status.Conditions, deploy.ConditionStale)
		if c == nil || c.Status != "True" || c.Reason != deploy.ReasonRenderFailed {
			return fmt.Errorf("condition %+v", c)
		}
		if !strings.Contains(c.Message, bad[:12]) || !strings.Contains(c.Message, "missing") {
			return fmt.Errorf("message %q should name the commit and the missing variable", c.Message)
		}
		return nil
	})
	if got := e.releases(); len(got) != 1 || got[0] != rel.Metadata.Name {
		t.Errorf("releases %v, want only %s", got, rel.Metadata.Name)
	}
	s := e.service("web")
	if s.Status.LatestRelease != rel.Metadata.Name || s.Status.CurrentRelease != rel.Metadata.Name {
		t.Errorf("service status %+v moved off %s", s.Status, rel.Metadata.Name)
	}
	if r, _ := e.assigned("prod-1", "web"); r != rel.Metadata.Name {
		t.Errorf("prod-1 runs %q, want the last good %s", r, rel.Metadata.Name)
	}

	// An empty render is a failure too, never an empty release.
	repo.Commit(t, "Empty it", map[string]string{"deploy/web/cm.yaml": "", "deploy/web/README.md": "nothing\n"})
	e.trigger("shop")
	eventually(t, 20*time.Second, "web stale for an empty render", func() error {
		c := condition(e.service("web").Status.Conditions, deploy.ConditionStale)
		if c == nil || !strings.Contains(c.Message, "no objects") {
			return fmt.Errorf("condition %+v", c)
		}
		return nil
	})
	if got := e.releases(); len(got) != 1 {
		t.Errorf("releases %v after an empty render", got)
	}

	fixed := repo.Commit(t, "Fix it", map[string]string{"deploy/web/cm.yaml": webManifest("3"), "deploy/web/README.md": ""})
	e.trigger("shop")
	rel3 := e.latest("web", rel.Metadata.Name)
	if rel3.Spec.Commit.SHA != fixed {
		t.Errorf("release of %s, want %s", rel3.Spec.Commit.SHA, fixed)
	}
	if c := condition(e.service("web").Status.Conditions, deploy.ConditionStale); c == nil || c.Status != "False" {
		t.Errorf("still stale after the fix: %+v", c)
	}
}

// Given a source that was fetched, when its repository disappears, then the
// source is Stale with the fetch error and keeps its last commit, and the
// service keeps its release.
func TestFetchFailureMarksSourceStale(t *testing.T) {
	repo := webRepo(t)
	e := newEnv(t, true)
	e.put(cluster("prod-1", map[string]string{"env": "prod"}, map[string]string{"replicas": "3"}))
	e.put(gitSource("shop", repo.FileURL()))
	e.put(service("web", "shop", "deploy/web", map[string]string{"env": "prod"}))
	rel := e.latest("web", "")
	repo.Git(t, "branch", "-m", "main", "gone")
	e.trigger("shop")
	eventually(t, 20*time.Second, "source stale", func() error {
		s := e.source("shop")
		c := condition(s.Status.Conditions, deploy.ConditionStale)
		if c == nil || c.Status != "True" || c.Reason != deploy.ReasonFetchFailed || !strings.Contains(s.Status.Message, "main") {
			return fmt.Errorf("status %+v", s.Status)
		}
		if s.Status.Commit == nil || s.Status.Commit.SHA != rel.Spec.Commit.SHA {
			return fmt.Errorf("the last good commit was dropped: %+v", s.Status.Commit)
		}
		return nil
	})
	if s := e.service("web"); s.Status.CurrentRelease != rel.Metadata.Name {
		t.Errorf("currentRelease %q", s.Status.CurrentRelease)
	}
}

// Given a released service, when a matching cluster joins, then it gets the
// current release, rendered for it and added to the release; when a cluster
// is relabelled into the selector it gets it too, and when relabelled out
// the service is removed from it.
func TestPlacementFollowsClusters(t *testing.T) {
	repo := webRepo(t)
	e := newEnv(t, true)
	e.put(cluster("prod-1", map[string]string{"env": "prod"}, map[string]string{"replicas": "3"}))
	e.put(cluster("dev-1", map[string]string{"env": "dev"}, map[string]string{"replicas": "1"}))
	e.put(gitSource("shop", repo.FileURL()))
	e.put(service("web", "shop", "deploy/web", map[string]string{"env": "prod"}))
	rel := e.latest("web", "")
	// A new commit that is not released yet must not leak into placement.
	repo.Commit(t, "Version 2, not fetched", map[string]string{"deploy/web/cm.yaml": webManifest("2")})

	e.put(cluster("prod-9", map[string]string{"env": "prod"}, map[string]string{"replicas": "9"}))
	eventually(t, 20*time.Second, "prod-9 runs the current release", func() error {
		r, d := e.assigned("prod-9", "web")
		if r != rel.Metadata.Name || d == "" {
			return fmt.Errorf("prod-9 runs %q", r)
		}
		data := configData(t, e.objects(d))
		if data["cluster"] != "prod-9" || data["replicas"] != "9" || data["version"] != "1" {
			return fmt.Errorf("prod-9 bundle data %v", data)
		}
		return nil
	})
	after := e.release(rel.Metadata.Name)
	if after.Status.BundleFor("prod-9") == "" || after.Status.BundleFor("prod-1") != rel.Status.BundleFor("prod-1") {
		t.Errorf("release bundles %+v: want prod-9 added and prod-1 unchanged", after.Status.Bundles)
	}
	if after.Spec.Commit.SHA != rel.Spec.Commit.SHA {
		t.Errorf("release spec changed")
	}

	e.put(cluster("dev-1", map[string]string{"env": "prod"}, map[string]string{"replicas": "1"}))
	eventually(t, 20*time.Second, "relabelled dev-1 runs web", func() error {
		if r, _ := e.assigned("dev-1", "web"); r != rel.Metadata.Name {
			return fmt.Errorf("dev-1 runs %q", r)
		}
		return nil
	})
	e.put(cluster("prod-1", map[string]string{"env": "staging"}, map[string]string{"replicas": "3"}))
	eventually(t, 20*time.Second, "relabelled prod-1 no longer runs web", func() error {
		if r, _ := e.assigned("prod-1", "web"); r != "" {
			return fmt.Errorf("prod-1 runs %q", r)
		}
		return nil
	})
	if got := e.releases(); len(got) != 1 {
		t.Errorf("placement made releases: %v", got)
	}
}

// Given a service whose selector matches no cluster, then no release is made
// and the service says why; when a matching cluster joins, the first
// release is cut for it.
func TestFirstClusterGetsFirstRelease(t *testing.T) {
	repo := webRepo(t)
	e := newEnv(t, true)
	e.put(gitSource("shop", repo.FileURL()))
	e.put(service("web", "shop", "deploy/web", map[string]string{"env": "prod"}))
	eventually(t, 20*time.Second, "web says it has no targets", func() error {
		c := condition(e.service("web").Status.Conditions, deploy.ConditionStale)
		if c == nil || c.Reason != deploy.ReasonNoTargets {
			return fmt.Errorf("condition %+v", c)
		}
		return nil
	})
	if got := e.releases(); len(got) != 0 {
		t.Fatalf("releases %v with no target", got)
	}
	e.put(cluster("prod-1", map[string]string{"env": "prod"}, map[string]string{"replicas": "3"}))
	rel := e.latest("web", "")
	eventually(t, 20*time.Second, "prod-1 runs the first release", func() error {
		if r, _ := e.assigned("prod-1", "web"); r != rel.Metadata.Name {
			return fmt.Errorf("prod-1 runs %q", r)
		}
		return nil
	})
}

// Given a service with a strategy, when a commit is released, then a Pending
// rollout named like the release is created and nothing is assigned by the
// controller.
func TestStrategyHandsOverToRollout(t *testing.T) {
	repo := webRepo(t)
	e := newEnv(t, true)
	e.put(cluster("prod-1", map[string]string{"env": "prod"}, map[string]string{"replicas": "3"}))
	e.put(gitSource("shop", repo.FileURL()))
	svc := service("web", "shop", "deploy/web", map[string]string{"env": "prod"})
	svc.Spec.Strategy = "canary"
	e.put(svc)
	rel := e.latest("web", "")
	var ro v1.Rollout
	eventually(t, 10*time.Second, "rollout created", func() error { return e.get(v1.KindRollout, rel.Metadata.Name, &ro) })
	if ro.Spec.Service != "web" || ro.Spec.Release != rel.Metadata.Name || ro.Spec.Strategy != "canary" || ro.Status.Phase != v1.RolloutPending {
		t.Errorf("rollout %+v", ro)
	}
	if r, _ := e.assigned("prod-1", "web"); r != "" {
		t.Errorf("prod-1 was assigned %q directly", r)
	}
	if s := e.service("web"); s.Status.CurrentRelease != "" {
		t.Errorf("currentRelease %q set before the rollout succeeded", s.Status.CurrentRelease)
	}
}

// Given a repository with a tag on an older commit, when a release is
// created by hand for the tag, then it is the tagged commit's; creating it
// again returns the same release; a ref that does not exist is refused.
func TestCreateReleaseByRef(t *testing.T) {
	repo := webRepo(t)
	old := repo.Head(t)
	repo.Git(t, "tag", "v1.0.0")
	repo.Commit(t, "Version 2", map[string]string{"deploy/web/cm.yaml": webManifest("2")})
	e := newEnv(t, false)
	e.put(cluster("prod-1", map[string]string{"env": "prod"}, map[string]string{"replicas": "3"}))
	e.put(gitSource("shop", repo.FileURL()))
	e.put(service("web", "shop", "deploy/web", map[string]string{"env": "prod"}))
	ctx := context.Background()
	for _, ref := range []string{"v1.0.0", "tag:v1.0.0"} {
		rel, created, err := e.c.CreateRelease(ctx, "web", ref, tester)
		if err != nil {
			t.Fatalf("release %s: %v", ref, err)
		}
		if rel.Spec.Commit.SHA != old {
			t.Errorf("release of %s is of %s, want %s", ref, rel.Spec.Commit.SHA, old)
		}
		if created != (ref == "v1.0.0") {
			t.Errorf("ref %s: created=%v", ref, created)
		}
	}
	if r, _ := e.assigned("prod-1", "web"); r == "" {
		t.Errorf("the release made by hand was not assigned")
	}
	rel, created, err := e.c.CreateRelease(ctx, "web", "", tester)
	if err != nil || !created || rel.Spec.Commit.SHA != repo.Head(t) {
		t.Errorf("release of the source's ref: %v created=%v %+v", err, created, rel)
	}
	for _, ref := range []string{"no-such-branch", "-upload-pack=x", "commit:1234"} {
		_, _, err := e.c.CreateRelease(ctx, "web", ref, tester)
		if !errors.Is(err, deploy.ErrBadRef) {
			t.Errorf("ref %q: %v, want ErrBadRef", ref, err)
		}
	}
}

// Preview renders for one cluster without creating anything, with Secret
// data redacted; Diff shows what changed between two releases, with the
// changed Secret key visible but not its value.
func TestPreviewAndDiff(t *testing.T) {
	repo := gittest.NewRepo(t, "shop.git")
	secret := func(pw string) string {
		return "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\nstringData:\n  password: " + pw + "\n  user: admin\n"
	}
	repo.Commit(t, "one", map[string]string{"deploy/web/cm.yaml": webManifest("1"), "deploy/web/secret.yaml": secret("hunter2")})
	e := newEnv(t, false)
	e.put(cluster("prod-1", map[string]string{"env": "prod"}, map[string]string{"replicas": "3"}))
	e.put(gitSource("shop", repo.FileURL()))
	e.put(service("web", "shop", "deploy/web", map[string]string{"env": "prod"}))
	ctx := context.Background()
	pv, err := e.c.Preview(ctx, "web", "prod-1", "main")
	if err != nil {
		t.Fatal(err)
	}
	all := ""
	for _, m := range pv.Manifests {
		all += string(m) + "\n"
	}
	if len(pv.Manifests) != 2 || !strings.Contains(all, `"cluster":"prod-1"`) || strings.Contains(all, "hunter2") || !strings.Contains(all, "<redacted") {
		t.Errorf("preview manifests (%d):\n%s", len(pv.Manifests), all)
	}
	if got := e.releases(); len(got) != 0 {
		t.Errorf("preview made releases %v", got)
	}
	r1, _, err := e.c.CreateRelease(ctx, "web", "main", tester)
	if err != nil {
		t.Fatal(err)
	}
	repo.Commit(t, "two", map[string]string{"deploy/web/cm.yaml": webManifest("2"), "deploy/web/secret.yaml": secret("correct-horse")})
	r2, _, err := e.c.CreateRelease(ctx, "web", "main", tester)
	if err != nil {
		t.Fatal(err)
	}
	d, err := e.c.Diff(ctx, r1.Metadata.Name, r2.Metadata.Name, "prod-1")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"-  version: \"1\"", "+  version: \"2\"", "-  password: <redacted", "+  password: <redacted",
		"--- " + r1.Metadata.Name + ": core/ConfigMap/web/web", "+++ " + r2.Metadata.Name} {
		if !strings.Contains(d.Diff, want) {
			t.Errorf("diff lacks %q:\n%s", want, d.Diff)
		}
	}
	if strings.Contains(d.Diff, "hunter2") || strings.Contains(d.Diff, "correct-horse") || strings.Contains(d.Diff, "-  user") {
		t.Errorf("diff leaks a secret or shows an unchanged secret key as changed:\n%s", d.Diff)
	}
	if same, err := e.c.Diff(ctx, r1.Metadata.Name, r1.Metadata.Name, ""); err != nil || same.Diff != "" {
		t.Errorf("diff of a release with itself: %v %q", err, same.Diff)
	}
	if _, err := e.c.Diff(ctx, r1.Metadata.Name, r2.Metadata.Name, "nowhere"); !errors.Is(err, deploy.ErrNotServed) {
		t.Errorf("diff for an unknown cluster: %v", err)
	}
}

// Without local sources allowed (the server's default), a file:// source is
// refused and says so in its status; nothing is released.
func TestLocalSourceRefusedByDefault(t *testing.T) {
	repo := webRepo(t)
	e := newEnvAllowing(t, true, false)
	e.put(cluster("prod-1", map[string]string{"env": "prod"}, map[string]string{"replicas": "3"}))
	e.put(gitSource("shop", repo.FileURL()))
	e.put(service("web", "shop", "deploy/web", map[string]string{"env": "prod"}))
	eventually(t, 20*time.Second, "source refused", func() error {
		s := e.source("shop")
		c := condition(s.Status.Conditions, deploy.ConditionStale)
		if c == nil || c.Reason != deploy.ReasonFetchFailed || !strings.Contains(s.Status.Message, "refused") {
			return fmt.Errorf("status %+v", s.Status)
		}
		return nil
	})
	if got := e.releases(); len(got) != 0 {
		t.Errorf("releases %v from a refused source", got)
	}
}

// Given a released service, when its spec changes (here its namespace),
// then the same commit is released again under a new name with the new
// spec snapshot, and the old release keeps the old one.
func TestServiceChangeMakesRelease(t *testing.T) {
	repo := webRepo(t)
	e := newEnv(t, true)
	e.put(cluster("prod-1", map[string]string{"env": "prod"}, map[string]string{"replicas": "3"}))
	e.put(gitSource("shop", repo.FileURL()))
	svc := service("web", "shop", "deploy/web", map[string]string{"env": "prod"})
	e.put(svc)
	rel := e.latest("web", "")
	svc.Spec.Namespace = "shop"
	e.put(svc)
	rel2 := e.latest("web", rel.Metadata.Name)
	if rel2.Spec.Commit.SHA != rel.Spec.Commit.SHA || rel2.Spec.ServiceSpec.Namespace != "shop" {
		t.Errorf("second release %s: commit %s namespace %q", rel2.Metadata.Name, rel2.Spec.Commit.SHA, rel2.Spec.ServiceSpec.Namespace)
	}
	if old := e.release(rel.Metadata.Name); old.Spec.ServiceSpec.Namespace != "web" {
		t.Errorf("the first release's snapshot changed to namespace %q", old.Spec.ServiceSpec.Namespace)
	}
	_, d := e.assigned("prod-1", "web")
	if ns := e.objects(d)[0]["metadata"].(map[string]any)["namespace"]; ns != "shop" {
		t.Errorf("prod-1 runs objects in namespace %v, want shop", ns)
	}
}

// Given a service without a strategy on two clusters, when its selector
// changes to pick only one of them and a third, then the new release is
// assigned to the new targets and the cluster left out drops the service in
// the same change; when the service is deleted, every cluster drops it.
func TestSelectorChangeAndDeletionRemoveTheService(t *testing.T) {
	repo := webRepo(t)
	e := newEnv(t, true)
	e.put(cluster("eu-1", map[string]string{"env": "prod", "region": "eu"}, map[string]string{"replicas": "3"}))
	e.put(cluster("us-1", map[string]string{"env": "prod", "region": "us"}, map[string]string{"replicas": "3"}))
	e.put(cluster("eu-dev", map[string]string{"env": "dev", "region": "eu"}, map[string]string{"replicas": "1"}))
	e.put(gitSource("shop", repo.FileURL()))
	svc := service("web", "shop", "deploy/web", map[string]string{"env": "prod"})
	e.put(svc)
	rel := e.latest("web", "")
	svc.Spec.Placement.ClusterSelector = &v1.LabelSelector{MatchLabels: map[string]string{"region": "eu"}}
	e.put(svc)
	rel2 := e.latest("web", rel.Metadata.Name)
	for c, want := range map[string]string{"eu-1": rel2.Metadata.Name, "eu-dev": rel2.Metadata.Name, "us-1": ""} {
		if r, _ := e.assigned(c, "web"); r != want {
			t.Errorf("%s runs %q, want %q", c, r, want)
		}
	}
	if _, err := e.st.Delete(context.Background(), v1.KindService, "web", 0, tester); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "every cluster drops the deleted service", func() error {
		for _, c := range []string{"eu-1", "eu-dev", "us-1"} {
			if r, _ := e.assigned(c, "web"); r != "" {
				return fmt.Errorf("%s still runs %s", c, r)
			}
		}
		return nil
	})
	if got := e.releases(); len(got) != 2 {
		t.Errorf("releases %v: the deleted service's releases should stay as history", got)
	}
}
