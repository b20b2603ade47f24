package server_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/client"
	"flotilla.dev/flotilla/internal/store"
)

func TestObjectLifecycle(t *testing.T) { onEveryBackend(t, testObjectLifecycle) }

func testObjectLifecycle(t *testing.T, newEnv envMaker) {
	e := newEnv(t)
	ctx := context.Background()
	created, err := e.deploy.Create(ctx, cluster("prod-eu-1", map[string]string{"env": "prod"}))
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	m := created.GetMetadata()
	if m.UID == "" || m.ResourceVersion == "" || m.Generation != 1 || m.CreationTimestamp == nil {
		t.Fatalf("created metadata = %+v, want uid, resourceVersion, generation 1 and a timestamp", m)
	}

	got, err := e.viewer.Get(ctx, "cl", "prod-eu-1") // a short name works like the kind
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if diff := cmp.Diff(created, got); diff != "" {
		t.Errorf("Get differs from Create's answer (-create +get):\n%s", diff)
	}

	c := got.(*v1.Cluster)
	c.Spec.Vars = map[string]string{"replicas": "5"}
	updated, err := e.deploy.Update(ctx, c)
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	if updated.GetMetadata().Generation != 2 || updated.(*v1.Cluster).Spec.Vars["replicas"] != "5" {
		t.Errorf("after Update: generation %d, vars %v; want 2 and replicas=5", updated.GetMetadata().Generation, updated.(*v1.Cluster).Spec.Vars)
	}

	patched, err := e.deploy.Patch(ctx, "clusters", "prod-eu-1", []byte(`{"metadata":{"labels":{"region":"eu","env":null}}}`))
	if err != nil {
		t.Fatalf("Patch: %v", err)
	}
	if diff := cmp.Diff(map[string]string{"region": "eu"}, patched.GetMetadata().Labels); diff != "" {
		t.Errorf("labels after merge patch (-want +got):\n%s", diff)
	}
	if patched.(*v1.Cluster).Spec.Vars["replicas"] != "5" {
		t.Errorf("merge patch lost spec.vars: %v", patched.(*v1.Cluster).Spec.Vars)
	}

	st := patched.(*v1.Cluster)
	st.Status.Phase = "Ready"
	st.Status.AgentVersion = "v0.1.0"
	withStatus, err := e.admin.UpdateStatus(ctx, st)
	if err != nil {
		t.Fatalf("UpdateStatus: %v", err)
	}
	if withStatus.(*v1.Cluster).Status.AgentVersion != "v0.1.0" || withStatus.GetMetadata().Generation != patched.GetMetadata().Generation {
		t.Errorf("UpdateStatus: status %+v generation %d; want the agent version and an unchanged generation",
			withStatus.(*v1.Cluster).Status, withStatus.GetMetadata().Generation)
	}
	// An update of the spec keeps the status the agent wrote.
	again := withStatus.(*v1.Cluster)
	again.Spec.Vars["replicas"] = "6"
	again.Status = v1.ClusterStatus{}
	kept, err := e.deploy.Update(ctx, again)
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	if kept.(*v1.Cluster).Status.AgentVersion != "v0.1.0" {
		t.Errorf("Update dropped the status: %+v", kept.(*v1.Cluster).Status)
	}

	if _, err := e.deploy.Delete(ctx, "cluster", "prod-eu-1", client.DeleteOptions{}); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	_, err = e.viewer.Get(ctx, "cluster", "prod-eu-1")
	if !client.IsNotFound(err) {
		t.Fatalf("Get after Delete = %v, want not found", err)
	}
}

func TestEveryKindRoundTrips(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, obj := range fleetList(t) {
		kind := obj.GetTypeMeta().Kind
		created, err := e.deploy.Create(ctx, obj)
		if err != nil {
			t.Fatalf("Create %s: %v", kind, err)
		}
		got, err := e.viewer.Get(ctx, kind, obj.GetMetadata().Name)
		if err != nil {
			t.Fatalf("Get %s: %v", kind, err)
		}
		if diff := cmp.Diff(created, got); diff != "" {
			t.Errorf("%s: Get differs from Create (-create +get):\n%s", kind, diff)
		}
		l, err := e.viewer.List(ctx, kind, client.ListOptions{})
		if err != nil || len(l.Items) != 1 {
			t.Fatalf("List %s = %v, %v; want one item", kind, l, err)
		}
	}
}

func TestListSelectorAndPages(t *testing.T) { onEveryBackend(t, testListSelectorAndPages) }

func testListSelectorAndPages(t *testing.T, newEnv envMaker) {
	e := newEnv(t)
	ctx := context.Background()
	var objs []v1.Object
	for i := range 25 {
		env := "dev"
		if i%5 == 0 {
			env = "prod"
		}
		objs = append(objs, cluster(fmt.Sprintf("c%02d", i), map[string]string{"env": env, "n": fmt.Sprint(i)}))
	}
	if _, err := e.deploy.Apply(ctx, objs); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	prod, err := e.viewer.ListAll(ctx, "clusters", client.ListOptions{LabelSelector: "env=prod"})
	if err != nil {
		t.Fatalf("List env=prod: %v", err)
	}
	var names []string
	for _, o := range prod {
		names = append(names, o.GetMetadata().Name)
	}
	if diff := cmp.Diff([]string{"c00", "c05", "c10", "c15", "c20"}, names); diff != "" {
		t.Errorf("env=prod (-want +got):\n%s", diff)
	}
	in, err := e.viewer.ListAll(ctx, "clusters", client.ListOptions{LabelSelector: "env in (dev),n notin (1,2,3)"})
	if err != nil || len(in) != 17 {
		t.Errorf("set-based selector: %d objects, %v; want 17", len(in), err)
	}

	var paged []string
	opts := client.ListOptions{Limit: 10}
	pages := 0
	for {
		l, err := e.viewer.List(ctx, "clusters", opts)
		if err != nil {
			t.Fatalf("List page %d: %v", pages, err)
		}
		pages++
		if len(l.Items) > 10 {
			t.Fatalf("page %d has %d items, limit 10", pages, len(l.Items))
		}
		for _, o := range l.Items {
			paged = append(paged, o.GetMetadata().Name)
		}
		if l.Continue == "" {
			break
		}
		opts.Continue = l.Continue
	}
	if pages != 3 || len(paged) != 25 || !slices.IsSorted(paged) {
		t.Errorf("paging: %d pages, %d names (sorted %v); want 3 pages of all 25 names in order", pages, len(paged), slices.IsSorted(paged))
	}
}

func TestApplyCreatesUpdatesAndKeepsUnchanged(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	res, err := e.deploy.Apply(ctx, fleetList(t))
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	for _, r := range res.Items {
		if r.Action != v1.ActionCreated {
			t.Errorf("first apply: %s %s %s, want created", r.Kind, r.Name, r.Action)
		}
	}
	objs := fleetList(t)
	objs[0].GetMetadata().Labels["ring"] = "2"
	res, err = e.deploy.Apply(ctx, objs)
	if err != nil {
		t.Fatalf("second Apply: %v", err)
	}
	want := map[string]string{v1.KindCluster: v1.ActionUpdated}
	for _, r := range res.Items {
		w := want[r.Kind]
		if w == "" {
			w = v1.ActionUnchanged
		}
		if r.Action != w {
			t.Errorf("second apply: %s %s %s, want %s", r.Kind, r.Name, r.Action, w)
		}
	}
}

func TestAuditRecordsWhoWhatWhen(t *testing.T) { onEveryBackend(t, testAuditRecordsWhoWhatWhen) }

func testAuditRecordsWhoWhatWhen(t *testing.T, newEnv envMaker) {
	e := newEnv(t)
	ctx := context.Background()
	start := time.Now().Add(-time.Second)
	if _, err := e.deploy.Create(ctx, cluster("a", nil)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.Patch(ctx, "cluster", "a", []byte(`{"metadata":{"labels":{"x":"y"}}}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.deploy.Create(ctx, fleet(t)[v1.KindSource]); err != nil {
		t.Fatal(err)
	}
	if _, err := e.deploy.Delete(ctx, "cluster", "a", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}

	all, err := e.viewer.Audit(ctx, client.AuditOptions{Kind: "cluster", Name: "a"})
	if err != nil {
		t.Fatalf("Audit: %v", err)
	}
	type row struct{ Type, Actor string }
	var got []row
	for _, ev := range all.Items {
		got = append(got, row{ev.Type, ev.Actor.String()})
		if ev.Time.Before(start) {
			t.Errorf("event %d time %v is before the test started", ev.Seq, ev.Time)
		}
	}
	want := []row{{"Created", "token:deployer-token"}, {"Updated", "token:admin"}, {"Deleted", "token:deployer-token"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("audit of cluster a (-want +got):\n%s", diff)
	}
	created, updated, deleted := all.Items[0], all.Items[1], all.Items[2]
	if created.DigestBefore != "" || created.DigestAfter == "" || updated.DigestBefore != created.DigestAfter ||
		updated.DigestAfter == updated.DigestBefore || deleted.DigestBefore != updated.DigestAfter || deleted.DigestAfter != "" {
		t.Errorf("digests do not chain: created %q->%q, updated %q->%q, deleted %q->%q", created.DigestBefore, created.DigestAfter,
			updated.DigestBefore, updated.DigestAfter, deleted.DigestBefore, deleted.DigestAfter)
	}

	byAdmin, err := e.viewer.Audit(ctx, client.AuditOptions{Actor: "admin", After: e.baseSeq})
	if err != nil || len(byAdmin.Items) != 1 || byAdmin.Items[0].Type != "Updated" {
		t.Errorf("audit --actor admin = %+v, %v; want the one update", byAdmin, err)
	}
	future, err := e.viewer.Audit(ctx, client.AuditOptions{Since: time.Now().Add(time.Hour)})
	if err != nil || len(future.Items) != 0 {
		t.Errorf("audit since an hour ahead = %d events, %v; want none", len(future.Items), err)
	}
	page, err := e.viewer.Audit(ctx, client.AuditOptions{Limit: 2, After: e.baseSeq})
	if err != nil || len(page.Items) != 2 || page.Next != page.Items[1].Seq {
		t.Fatalf("audit limit 2 = %+v, %v; want two events and next = the last seq", page, err)
	}
	rest, err := e.viewer.Audit(ctx, client.AuditOptions{After: page.Next})
	if err != nil || len(rest.Items) != 2 || rest.Next != 0 {
		t.Errorf("audit after %d = %+v, %v; want the other two events and no next", page.Next, rest, err)
	}
}

func TestTokens(t *testing.T) { onEveryBackend(t, testTokens) }

func testTokens(t *testing.T, newEnv envMaker) {
	e := newEnv(t)
	ctx := context.Background()
	expires := e.clock.Now().Add(time.Hour)
	tok, err := e.admin.CreateToken(ctx, v1.TokenRequest{Name: "ci", Role: "deployer", ExpiresAt: &expires})
	if err != nil {
		t.Fatalf("CreateToken: %v", err)
	}
	if tok.Secret == "" || tok.ID == "" || tok.CreatedBy != "token:admin" {
		t.Fatalf("CreateToken = %+v, want a secret, an id and the creator", tok)
	}
	ci := e.client(tok.Secret)
	who, err := ci.WhoAmI(ctx)
	if err != nil {
		t.Fatalf("WhoAmI with the new token: %v", err)
	}
	if diff := cmp.Diff(&v1.WhoAmI{Name: "ci", Kind: "token", Roles: []string{"deployer"}}, who); diff != "" {
		t.Errorf("WhoAmI (-want +got):\n%s", diff)
	}
	list, err := e.admin.Tokens(ctx)
	if err != nil {
		t.Fatalf("Tokens: %v", err)
	}
	var names []string
	for _, l := range list {
		names = append(names, l.Name)
		if l.Secret != "" {
			t.Errorf("token list shows the secret of %s", l.Name)
		}
	}
	slices.Sort(names)
	if diff := cmp.Diff([]string{"admin", "ci", "deployer-token", "viewer-token"}, names); diff != "" {
		t.Errorf("token names (-want +got):\n%s", diff)
	}

	_, err = e.admin.CreateToken(ctx, v1.TokenRequest{Name: "ci", Role: "viewer"})
	wantStatus(t, err, 409, v1.ReasonAlreadyExists)
	_, err = e.admin.CreateToken(ctx, v1.TokenRequest{Name: "Bad_Name", Role: "root"})
	st := wantStatus(t, err, 422, v1.ReasonInvalid)
	if !hasField(st.Fields, "name") || !hasField(st.Fields, "role") {
		t.Errorf("invalid token request fields = %+v, want name and role", st.Fields)
	}

	// Expiry: an hour and a minute later the token no longer works.
	e.clock.Advance(61 * time.Minute)
	_, err = ci.WhoAmI(ctx)
	st = wantStatus(t, err, 401, v1.ReasonUnauthorized)
	if !contains(st.Message, "expired") {
		t.Errorf("expired token message = %q, want it to say expired", st.Message)
	}
	e.clock.Advance(-61 * time.Minute)

	if err := e.admin.DeleteToken(ctx, tok.ID); err != nil {
		t.Fatalf("DeleteToken: %v", err)
	}
	_, err = ci.WhoAmI(ctx)
	wantStatus(t, err, 401, v1.ReasonUnauthorized)
	err = e.admin.DeleteToken(ctx, tok.ID)
	wantStatus(t, err, 404, v1.ReasonNotFound)

	// The audit trail says who created and who revoked the token, and never shows its secret.
	trail, err := e.viewer.Audit(ctx, client.AuditOptions{Kind: store.KindToken, Name: "ci"})
	if err != nil {
		t.Fatalf("Audit of token ci: %v", err)
	}
	type entry struct{ Type, Actor string }
	var got []entry
	for _, ev := range trail.Items {
		got = append(got, entry{ev.Type, ev.Actor.String()})
		if contains(string(ev.Object), tok.Secret) {
			t.Errorf("audit event %d shows the token's secret", ev.Seq)
		}
	}
	want := []entry{{"Created", "token:admin"}, {"Deleted", "token:admin"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("audit of token ci (-want +got):\n%s", diff)
	}
}

func TestConcurrentUpdates(t *testing.T) { onEveryBackend(t, testConcurrentUpdates) }

// testConcurrentUpdates sends many updates based on the same version at once: exactly one wins and
// every other gets a conflict. Then merge patches without a version, each adding its own label,
// all land: a patch that loses a race is retried on the new version.
func testConcurrentUpdates(t *testing.T, newEnv envMaker) {
	e := newEnv(t)
	ctx := context.Background()
	base, err := e.deploy.Create(ctx, cluster("hot", nil))
	if err != nil {
		t.Fatal(err)
	}
	const writers = 20
	errs := make(chan error, writers)
	for i := range writers {
		go func() {
			c := cluster("hot", map[string]string{"writer": fmt.Sprint(i)})
			c.Metadata.ResourceVersion = base.GetMetadata().ResourceVersion
			_, err := e.deploy.Update(ctx, c)
			errs <- err
		}()
	}
	won, conflicts := 0, 0
	for range writers {
		switch err := <-errs; {
		case err == nil:
			won++
		case client.IsConflict(err):
			conflicts++
		default:
			t.Errorf("update: %v", err)
		}
	}
	if won != 1 || conflicts != writers-1 {
		t.Errorf("%d updates won and %d conflicted, want 1 and %d", won, conflicts, writers-1)
	}

	// Each patch can lose at most once to every other patch, so with as many patches as the
	// server's retries, every one lands.
	const patches = 6
	for i := range patches {
		go func() {
			_, err := e.deploy.Patch(ctx, "cluster", "hot", fmt.Appendf(nil, `{"metadata":{"labels":{"p%d":"x"}}}`, i))
			errs <- err
		}()
	}
	for range patches {
		if err := <-errs; err != nil {
			t.Errorf("patch: %v", err)
		}
	}
	got, err := e.viewer.Get(ctx, "cluster", "hot")
	if err != nil {
		t.Fatal(err)
	}
	for i := range patches {
		if got.GetMetadata().Labels[fmt.Sprintf("p%d", i)] != "x" {
			t.Errorf("label p%d lost; labels = %v", i, got.GetMetadata().Labels)
		}
	}
}
