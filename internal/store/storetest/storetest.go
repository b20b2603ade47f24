package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"k8s.io/apimachinery/pkg/labels"

	"flotilla.dev/flotilla/internal/store"
)

// Run runs the conformance suite; open must return a fresh, empty store.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"CreateGet", testCreateGet},
		{"CreateErrors", testCreateErrors},
		{"ConcurrentCreate", testConcurrentCreate},
		{"Update", testUpdate},
		{"UpdateStatus", testUpdateStatus},
		{"Delete", testDelete},
		{"List", testList},
		{"ListSelectors", testListSelectors},
		{"ListPagination", testListPagination},
		{"Apply", testApply},
		{"ApplyAllOrNothing", testApplyAllOrNothing},
		{"Events", testEvents},
		{"EventFilters", testEventFilters},
		{"WaitForEvent", testWaitForEvent},
		{"ConcurrentWritersOneWins", testConcurrentWritersOneWins},
		{"ConcurrentRetryNoLostUpdate", testConcurrentRetry},
		{"WatchResumption", testWatchResumption},
		{"Tokens", testTokens},
		{"SSOSessionTokens", testSSOSessionTokens},
	}
	tests = append(tests, agentTests...)
	tests = append(tests, rolloutTests...)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			if err := s.Ping(context.Background()); err != nil {
				t.Fatalf("Ping: %v", err)
			}
			tc.fn(t, s)
		})
	}
}

var (
	alice  = store.Actor{Kind: store.ActorUser, Name: "alice"}
	bob    = store.Actor{Kind: store.ActorToken, Name: "ci-bot"}
	system = store.Actor{Kind: store.ActorSystem, Name: "flotilla"}
)

func ctxFor(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func obj(kind, name string, lbls map[string]string, spec string) *store.Object {
	return &store.Object{Kind: kind, Name: name, Labels: lbls, Spec: json.RawMessage(spec)}
}

func mustCreate(t *testing.T, s store.Store, o *store.Object) *store.Object {
	t.Helper()
	got, err := s.Create(ctxFor(t), o, alice)
	if err != nil {
		t.Fatalf("Create %s %s: %v", o.Kind, o.Name, err)
	}
	return got
}

func mustLatest(t *testing.T, s store.Store) int64 {
	t.Helper()
	seq, err := s.LatestSeq(ctxFor(t))
	if err != nil {
		t.Fatalf("LatestSeq: %v", err)
	}
	return seq
}

func mustEvents(t *testing.T, s store.Store, after int64, f store.EventFilter) []store.Event {
	t.Helper()
	evs, err := s.Events(ctxFor(t), after, 0, f)
	if err != nil {
		t.Fatalf("Events(%d): %v", after, err)
	}
	return evs
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got error %v, want %v", what, err, want)
	}
}

// jsonEqual compares JSON documents by meaning.
var jsonEqual = cmp.Comparer(func(a, b json.RawMessage) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	ca, errA := store.Canonical(a)
	cb, errB := store.Canonical(b)
	return errA == nil && errB == nil && string(ca) == string(cb)
})

// mapEqual treats nil and empty maps alike.
var mapEqual = cmp.Comparer(func(a, b map[string]string) bool { return maps.Equal(a, b) })

var objOpts = cmp.Options{jsonEqual, mapEqual}

func digest(t *testing.T, o *store.Object) string {
	t.Helper()
	d, err := store.Digest(o)
	if err != nil {
		t.Fatalf("Digest: %v", err)
	}
	return d
}

func testCreateGet(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	in := obj("Service", "web", map[string]string{"team": "shop"}, `{"namespace": "web", "n": 12345678901234567890}`)
	in.Annotations = map[string]string{"note": "first"}
	in.Status = json.RawMessage(`{"phase":"New"}`)
	before := time.Now().Add(-time.Second)
	got, err := s.Create(ctx, in, alice)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if got.UID == "" || got.ResourceVersion <= 0 || got.Generation != 1 {
		t.Errorf("Create set uid %q, resourceVersion %d, generation %d; want a uid, a positive version, generation 1",
			got.UID, got.ResourceVersion, got.Generation)
	}
	if got.CreatedAt.Before(before) || !got.UpdatedAt.Equal(got.CreatedAt) {
		t.Errorf("timestamps created %v updated %v; want now and equal", got.CreatedAt, got.UpdatedAt)
	}
	want := *in
	want.UID, want.ResourceVersion, want.Generation = got.UID, got.ResourceVersion, 1
	want.CreatedAt, want.UpdatedAt = got.CreatedAt, got.UpdatedAt
	if d := cmp.Diff(&want, got, objOpts); d != "" {
		t.Errorf("Create returned (-want +got):\n%s", d)
	}
	fetched, err := s.Get(ctx, "Service", "web")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if d := cmp.Diff(got, fetched, objOpts); d != "" {
		t.Errorf("Get differs from Create's result (-create +get):\n%s", d)
	}
	if string(fetched.Spec) != string(in.Spec) {
		t.Errorf("spec bytes changed: got %s, want %s", fetched.Spec, in.Spec)
	}
	// The same name under another kind is another object.
	other := mustCreate(t, s, obj("Cluster", "web", nil, `{}`))
	if other.UID == got.UID || other.ResourceVersion <= got.ResourceVersion {
		t.Errorf("second object: uid %q version %d; want a new uid and a higher version than %d",
			other.UID, other.ResourceVersion, got.ResourceVersion)
	}
	// Mutating what Create returned does not change the store.
	got.Labels["team"] = "changed"
	again, err := s.Get(ctx, "Service", "web")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if again.Labels["team"] != "shop" {
		t.Errorf("stored label changed through a returned map: %q", again.Labels["team"])
	}
	_, err = s.Get(ctx, "Service", "nope")
	wantErr(t, "Get of a missing object", err, store.ErrNotFound)
}

func testCreateErrors(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	mustCreate(t, s, obj("Service", "web", nil, `{}`))
	seq := mustLatest(t, s)
	cases := []struct {
		name string
		o    *store.Object
		want error
	}{
		{"duplicate", obj("Service", "web", nil, `{"x":1}`), store.ErrAlreadyExists},
		{"no kind", obj("", "a", nil, `{}`), store.ErrInvalid},
		{"no name", obj("Service", "", nil, `{}`), store.ErrInvalid},
		{"spec not JSON", obj("Service", "b", nil, `{"x":`), store.ErrInvalid},
		{"status not JSON", &store.Object{Kind: "Service", Name: "c", Status: json.RawMessage(`nope`)}, store.ErrInvalid},
		{"resourceVersion set", &store.Object{Kind: "Service", Name: "d", ResourceVersion: 7}, store.ErrInvalid},
	}
	for _, c := range cases {
		_, err := s.Create(ctx, c.o, alice)
		wantErr(t, "Create "+c.name, err, c.want)
	}
	if got := mustLatest(t, s); got != seq {
		t.Errorf("failed creates moved the sequence from %d to %d", seq, got)
	}
	list, err := s.List(ctx, "Service", store.ListOptions{})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(list.Items) != 1 {
		t.Errorf("failed creates left %d services, want 1", len(list.Items))
	}
}

func testConcurrentCreate(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	const n = 20
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, errs[i] = s.Create(ctx, obj("Service", "race", nil, fmt.Sprintf(`{"by":%d}`, i)), alice)
		})
	}
	wg.Wait()
	won := 0
	for i, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, store.ErrAlreadyExists):
			t.Errorf("creator %d: got %v, want nil or ErrAlreadyExists", i, err)
		}
	}
	if won != 1 {
		t.Errorf("%d creators succeeded, want exactly 1", won)
	}
	if evs := mustEvents(t, s, 0, store.EventFilter{}); len(evs) != 1 {
		t.Errorf("got %d events, want 1", len(evs))
	}
}

func testUpdate(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	created := mustCreate(t, s, obj("Service", "web", map[string]string{"a": "1"}, `{"v":1}`))
	st, err := s.UpdateStatus(ctx, &store.Object{Kind: "Service", Name: "web", ResourceVersion: created.ResourceVersion,
		Status: json.RawMessage(`{"phase":"Ready"}`)}, system)
	if err != nil {
		t.Fatalf("UpdateStatus: %v", err)
	}
	in := obj("Service", "web", map[string]string{"a": "2"}, `{"v":2}`)
	in.ResourceVersion = st.ResourceVersion
	in.Status = json.RawMessage(`{"phase":"Ignored"}`)
	upd, err := s.Update(ctx, in, bob)
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	if upd.ResourceVersion <= st.ResourceVersion || upd.Generation != 2 || upd.UID != created.UID {
		t.Errorf("Update: version %d generation %d uid %q; want version > %d, generation 2, uid %q",
			upd.ResourceVersion, upd.Generation, upd.UID, st.ResourceVersion, created.UID)
	}
	if !upd.CreatedAt.Equal(created.CreatedAt) || upd.UpdatedAt.Before(created.UpdatedAt) {
		t.Errorf("Update timestamps created %v updated %v, were %v %v", upd.CreatedAt, upd.UpdatedAt, created.CreatedAt, created.UpdatedAt)
	}
	if d := cmp.Diff(json.RawMessage(`{"phase":"Ready"}`), upd.Status, jsonEqual); d != "" {
		t.Errorf("Update changed status (-want +got):\n%s", d)
	}
	got, err := s.Get(ctx, "Service", "web")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if d := cmp.Diff(upd, got, objOpts); d != "" {
		t.Errorf("Get after Update (-update +get):\n%s", d)
	}
	// Stale version.
	stale := obj("Service", "web", nil, `{"v":3}`)
	stale.ResourceVersion = created.ResourceVersion
	_, err = s.Update(ctx, stale, bob)
	wantErr(t, "Update with a stale version", err, store.ErrConflict)
	// No change: nothing written.
	seq := mustLatest(t, s)
	same := obj("Service", "web", map[string]string{"a": "2"}, `{ "v": 2 }`)
	same.ResourceVersion = upd.ResourceVersion
	noop, err := s.Update(ctx, same, bob)
	if err != nil {
		t.Fatalf("no-op Update: %v", err)
	}
	if noop.ResourceVersion != upd.ResourceVersion || noop.Generation != 2 || mustLatest(t, s) != seq {
		t.Errorf("no-op Update wrote: version %d generation %d sequence %d; want %d, 2, %d",
			noop.ResourceVersion, noop.Generation, mustLatest(t, s), upd.ResourceVersion, seq)
	}
	// Annotations alone change the generation.
	ann := obj("Service", "web", map[string]string{"a": "2"}, `{"v":2}`)
	ann.Annotations = map[string]string{"why": "test"}
	ann.ResourceVersion = upd.ResourceVersion
	annOut, err := s.Update(ctx, ann, bob)
	if err != nil {
		t.Fatalf("Update annotations: %v", err)
	}
	if annOut.Generation != 3 {
		t.Errorf("annotation change: generation %d, want 3", annOut.Generation)
	}
	missing := obj("Service", "nope", nil, `{}`)
	missing.ResourceVersion = 1
	_, err = s.Update(ctx, missing, bob)
	wantErr(t, "Update of a missing object", err, store.ErrNotFound)
	// Labels changed by Update are what selectors see.
	list, err := s.List(ctx, "Service", store.ListOptions{Selector: labels.SelectorFromSet(labels.Set{"a": "2"})})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(list.Items) != 1 {
		t.Errorf("selector a=2 after update found %d objects, want 1", len(list.Items))
	}
	list, err = s.List(ctx, "Service", store.ListOptions{Selector: labels.SelectorFromSet(labels.Set{"a": "1"})})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(list.Items) != 0 {
		t.Errorf("selector a=1 after update found %d objects, want 0", len(list.Items))
	}
}

func testUpdateStatus(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	created := mustCreate(t, s, obj("Rollout", "r1", map[string]string{"x": "y"}, `{"release":"a"}`))
	in := &store.Object{Kind: "Rollout", Name: "r1", ResourceVersion: created.ResourceVersion,
		Spec: json.RawMessage(`{"release":"ignored"}`), Labels: map[string]string{"ignored": "yes"},
		Status: json.RawMessage(`{"phase":"Progressing"}`)}
	got, err := s.UpdateStatus(ctx, in, system)
	if err != nil {
		t.Fatalf("UpdateStatus: %v", err)
	}
	want := *created
	want.Status = in.Status
	want.ResourceVersion = got.ResourceVersion
	want.UpdatedAt = got.UpdatedAt
	if d := cmp.Diff(&want, got, objOpts); d != "" {
		t.Errorf("UpdateStatus changed more than status (-want +got):\n%s", d)
	}
	if got.ResourceVersion <= created.ResourceVersion || got.Generation != 1 {
		t.Errorf("UpdateStatus: version %d generation %d; want > %d and 1", got.ResourceVersion, got.Generation, created.ResourceVersion)
	}
	_, err = s.UpdateStatus(ctx, in, system) // in still carries the old version
	wantErr(t, "UpdateStatus with a stale version", err, store.ErrConflict)
	seq := mustLatest(t, s)
	in.ResourceVersion = got.ResourceVersion
	same, err := s.UpdateStatus(ctx, in, system)
	if err != nil {
		t.Fatalf("no-op UpdateStatus: %v", err)
	}
	if same.ResourceVersion != got.ResourceVersion || mustLatest(t, s) != seq {
		t.Errorf("no-op UpdateStatus wrote a new version")
	}
	_, err = s.UpdateStatus(ctx, &store.Object{Kind: "Rollout", Name: "nope", ResourceVersion: 1}, system)
	wantErr(t, "UpdateStatus of a missing object", err, store.ErrNotFound)
}

func testDelete(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	a := mustCreate(t, s, obj("Cluster", "a", map[string]string{"env": "prod"}, `{}`))
	mustCreate(t, s, obj("Cluster", "b", map[string]string{"env": "prod"}, `{}`))
	_, err := s.Delete(ctx, "Cluster", "a", a.ResourceVersion+100, alice)
	wantErr(t, "Delete with a stale version", err, store.ErrConflict)
	last, err := s.Delete(ctx, "Cluster", "a", a.ResourceVersion, alice)
	if err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if d := cmp.Diff(a, last, objOpts); d != "" {
		t.Errorf("Delete returned (-want +got):\n%s", d)
	}
	_, err = s.Get(ctx, "Cluster", "a")
	wantErr(t, "Get after Delete", err, store.ErrNotFound)
	_, err = s.Delete(ctx, "Cluster", "a", 0, alice)
	wantErr(t, "Delete of a missing object", err, store.ErrNotFound)
	if _, err := s.Delete(ctx, "Cluster", "b", 0, alice); err != nil {
		t.Fatalf("unconditional Delete: %v", err)
	}
	list, err := s.List(ctx, "Cluster", store.ListOptions{Selector: labels.SelectorFromSet(labels.Set{"env": "prod"})})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(list.Items) != 0 {
		t.Errorf("deleted objects still listed: %d", len(list.Items))
	}
	// A name can be reused; the new object has a new uid.
	again := mustCreate(t, s, obj("Cluster", "a", nil, `{}`))
	if again.UID == a.UID || again.Generation != 1 {
		t.Errorf("recreated object: uid %q generation %d; want a new uid and generation 1", again.UID, again.Generation)
	}
}

func names(items []*store.Object) []string {
	out := make([]string, len(items))
	for i, o := range items {
		out[i] = o.Name
	}
	return out
}

func testList(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	for _, n := range []string{"c", "a-b", "ab", "b", "a"} {
		mustCreate(t, s, obj("Service", n, nil, `{}`))
	}
	mustCreate(t, s, obj("Cluster", "zz", nil, `{}`))
	list, err := s.List(ctx, "Service", store.ListOptions{})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if d := cmp.Diff([]string{"a", "a-b", "ab", "b", "c"}, names(list.Items)); d != "" {
		t.Errorf("List names in byte order (-want +got):\n%s", d)
	}
	if list.Continue != "" {
		t.Errorf("unpaged List has continue %q", list.Continue)
	}
	if seq := mustLatest(t, s); list.ResourceVersion != seq {
		t.Errorf("List resourceVersion %d, want latest sequence %d", list.ResourceVersion, seq)
	}
	empty, err := s.List(ctx, "Release", store.ListOptions{})
	if err != nil {
		t.Fatalf("List of an empty kind: %v", err)
	}
	if len(empty.Items) != 0 {
		t.Errorf("empty kind listed %d items", len(empty.Items))
	}
	_, err = s.List(ctx, "Service", store.ListOptions{Continue: "not a token"})
	wantErr(t, "List with a malformed continue token", err, store.ErrInvalid)
	page, err := s.List(ctx, "Service", store.ListOptions{Limit: 2})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	_, err = s.List(ctx, "Cluster", store.ListOptions{Continue: page.Continue})
	wantErr(t, "List with another kind's continue token", err, store.ErrInvalid)
}

func testListSelectors(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	clusters := map[string]map[string]string{
		"eu-1":     {"env": "prod", "region": "eu", "ring": "1"},
		"eu-2":     {"env": "prod", "region": "eu", "ring": "2"},
		"us-1":     {"env": "prod", "region": "us", "ring": "1"},
		"canary":   {"env": "prod", "ring": "0", "canary": "true"},
		"stage":    {"env": "staging", "region": "eu"},
		"unlabeld": nil,
	}
	for n, l := range clusters {
		mustCreate(t, s, obj("Cluster", n, l, `{}`))
	}
	cases := []struct {
		sel  string
		want []string
	}{
		{"", []string{"canary", "eu-1", "eu-2", "stage", "unlabeld", "us-1"}},
		{"env=prod", []string{"canary", "eu-1", "eu-2", "us-1"}},
		{"env==prod,region=eu", []string{"eu-1", "eu-2"}},
		{"env!=prod", []string{"stage", "unlabeld"}},
		{"region in (us, eu)", []string{"eu-1", "eu-2", "stage", "us-1"}},
		{"region notin (eu)", []string{"canary", "unlabeld", "us-1"}},
		{"canary", []string{"canary"}},
		{"!region", []string{"canary", "unlabeld"}},
		{"ring>0", []string{"eu-1", "eu-2", "us-1"}},
		{"ring<2,env=prod", []string{"canary", "eu-1", "us-1"}},
		{"env=nothing", nil},
	}
	for _, c := range cases {
		sel, err := labels.Parse(c.sel)
		if err != nil {
			t.Fatalf("parse %q: %v", c.sel, err)
		}
		list, err := s.List(ctx, "Cluster", store.ListOptions{Selector: sel})
		if err != nil {
			t.Fatalf("List %q: %v", c.sel, err)
		}
		if d := cmp.Diff(c.want, names(list.Items), cmpopts.EquateEmpty()); d != "" {
			t.Errorf("selector %q (-want +got):\n%s", c.sel, d)
		}
		// Paged one at a time, the same answer.
		var paged []string
		opts := store.ListOptions{Selector: sel, Limit: 1}
		for range 20 {
			page, err := s.List(ctx, "Cluster", opts)
			if err != nil {
				t.Fatalf("List %q page: %v", c.sel, err)
			}
			paged = append(paged, names(page.Items)...)
			if page.Continue == "" {
				break
			}
			opts.Continue = page.Continue
		}
		if d := cmp.Diff(c.want, paged, cmpopts.EquateEmpty()); d != "" {
			t.Errorf("selector %q paged by 1 (-want +got):\n%s", c.sel, d)
		}
	}
	list, err := s.List(ctx, "Cluster", store.ListOptions{Selector: labels.Nothing()})
	if err != nil {
		t.Fatalf("List nothing: %v", err)
	}
	if len(list.Items) != 0 {
		t.Errorf("labels.Nothing() listed %d", len(list.Items))
	}
}

func testListPagination(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	var want []string
	objs := make([]*store.Object, 0, 95)
	for i := range 95 {
		n := fmt.Sprintf("svc-%03d", i)
		l := map[string]string{"group": strconv.Itoa(i % 3)}
		objs = append(objs, obj("Service", n, l, `{}`))
		if i%3 == 1 {
			want = append(want, n)
		}
	}
	if _, err := s.Apply(ctx, objs, alice); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	sel := labels.SelectorFromSet(labels.Set{"group": "1"})
	for _, limit := range []int{1, 7, 31, 32, 100} {
		var got []string
		opts := store.ListOptions{Selector: sel, Limit: limit}
		pages := 0
		for {
			page, err := s.List(ctx, "Service", opts)
			if err != nil {
				t.Fatalf("limit %d: List: %v", limit, err)
			}
			pages++
			if len(page.Items) > limit {
				t.Fatalf("limit %d: page of %d", limit, len(page.Items))
			}
			if page.Continue != "" && len(page.Items) != limit {
				t.Errorf("limit %d: short page of %d with a continue token", limit, len(page.Items))
			}
			got = append(got, names(page.Items)...)
			if page.Continue == "" {
				break
			}
			opts.Continue = page.Continue
			if pages > 100 {
				t.Fatalf("limit %d: pagination does not end", limit)
			}
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("limit %d: paged names (-want +got):\n%s", limit, d)
		}
		if wantPages := (len(want) + limit - 1) / limit; pages != wantPages && !(len(want)%limit == 0 && pages == wantPages+1) {
			t.Errorf("limit %d: %d pages, want %d", limit, pages, wantPages)
		}
	}
	// Objects created between pages after the cursor are seen; none twice.
	page, err := s.List(ctx, "Service", store.ListOptions{Limit: 50})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	mustCreate(t, s, obj("Service", "svc-000a", nil, `{}`)) // before the cursor: not seen
	mustCreate(t, s, obj("Service", "zzz", nil, `{}`))      // after: seen
	rest, err := s.List(ctx, "Service", store.ListOptions{Continue: page.Continue})
	if err != nil {
		t.Fatalf("List rest: %v", err)
	}
	all := append(names(page.Items), names(rest.Items)...)
	if len(all) != 96 || all[len(all)-1] != "zzz" {
		t.Errorf("pages across a write: %d names ending %q; want 96 ending zzz", len(all), all[len(all)-1])
	}
}

func testApply(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	existing := mustCreate(t, s, obj("Service", "web", nil, `{"v":1}`))
	if _, err := s.UpdateStatus(ctx, &store.Object{Kind: "Service", Name: "web",
		ResourceVersion: existing.ResourceVersion, Status: json.RawMessage(`{"ok":true}`)}, system); err != nil {
		t.Fatalf("UpdateStatus: %v", err)
	}
	mustCreate(t, s, obj("Service", "same", map[string]string{"k": "v"}, `{"v":1}`))
	seq := mustLatest(t, s)
	res, err := s.Apply(ctx, []*store.Object{
		obj("Cluster", "new", map[string]string{"env": "prod"}, `{"vars":{}}`),
		obj("Service", "web", nil, `{"v":2}`),
		obj("Service", "same", map[string]string{"k": "v"}, `{"v": 1}`),
	}, bob)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	var actions []string
	for _, r := range res {
		actions = append(actions, r.Object.Kind+"/"+r.Object.Name+":"+r.Action)
	}
	if d := cmp.Diff([]string{"Cluster/new:created", "Service/web:updated", "Service/same:unchanged"}, actions); d != "" {
		t.Fatalf("Apply actions (-want +got):\n%s", d)
	}
	if res[1].Object.Generation != 2 || string(res[1].Object.Status) != `{"ok":true}` {
		t.Errorf("applied update: generation %d status %s; want 2 and the kept status", res[1].Object.Generation, res[1].Object.Status)
	}
	evs := mustEvents(t, s, seq, store.EventFilter{})
	if len(evs) != 2 || evs[0].Seq != seq+1 || evs[1].Seq != seq+2 {
		t.Fatalf("Apply events: %d after %d: %+v; want 2 consecutive", len(evs), seq, evs)
	}
	if evs[0].Type != store.Created || evs[1].Type != store.Updated || evs[1].Actor != bob {
		t.Errorf("Apply event types %s %s actor %v", evs[0].Type, evs[1].Type, evs[1].Actor)
	}
	for i, r := range res[:2] {
		if r.Object.ResourceVersion != evs[i].Seq {
			t.Errorf("%s: version %d, its event has seq %d", r.Object.Name, r.Object.ResourceVersion, evs[i].Seq)
		}
		got, err := s.Get(ctx, r.Object.Kind, r.Object.Name)
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		if d := cmp.Diff(r.Object, got, objOpts); d != "" {
			t.Errorf("Get after Apply (-apply +get):\n%s", d)
		}
	}
	// Applying the same again changes nothing and writes no event.
	seq = mustLatest(t, s)
	res, err = s.Apply(ctx, []*store.Object{obj("Service", "web", nil, `{"v":2}`)}, bob)
	if err != nil {
		t.Fatalf("Apply again: %v", err)
	}
	if res[0].Action != store.ActionUnchanged || mustLatest(t, s) != seq {
		t.Errorf("re-apply: action %s, sequence %d -> %d", res[0].Action, seq, mustLatest(t, s))
	}
	// A matching resourceVersion is accepted.
	cur, _ := s.Get(ctx, "Service", "web")
	upd := obj("Service", "web", nil, `{"v":3}`)
	upd.ResourceVersion = cur.ResourceVersion
	if _, err := s.Apply(ctx, []*store.Object{upd}, bob); err != nil {
		t.Errorf("Apply with the current version: %v", err)
	}
	if res, err := s.Apply(ctx, nil, bob); err != nil || len(res) != 0 {
		t.Errorf("empty Apply: %v, %d results", err, len(res))
	}
}

func testApplyAllOrNothing(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	web := mustCreate(t, s, obj("Service", "web", nil, `{"v":1}`))
	if _, err := s.Update(ctx, &store.Object{Kind: "Service", Name: "web", ResourceVersion: web.ResourceVersion,
		Spec: json.RawMessage(`{"v":2}`)}, alice); err != nil {
		t.Fatalf("Update: %v", err)
	}
	stale := obj("Service", "web", nil, `{"v":9}`)
	stale.ResourceVersion = web.ResourceVersion
	ghost := obj("Service", "ghost", nil, `{}`)
	ghost.ResourceVersion = 42
	batch := func(bad *store.Object) []*store.Object {
		var out []*store.Object
		for i := range 10 {
			out = append(out, obj("Cluster", fmt.Sprintf("c%d", i), map[string]string{"i": strconv.Itoa(i)}, `{}`))
		}
		out[6] = bad
		return out
	}
	cases := []struct {
		name string
		bad  *store.Object
		want error
	}{
		{"stale version", stale, store.ErrConflict},
		{"version of a missing object", ghost, store.ErrConflict},
		{"no name", obj("Cluster", "", nil, `{}`), store.ErrInvalid},
		{"spec not JSON", obj("Cluster", "x", nil, `{`), store.ErrInvalid},
		{"duplicate", obj("Cluster", "c2", nil, `{}`), store.ErrInvalid},
	}
	for _, c := range cases {
		seq := mustLatest(t, s)
		_, err := s.Apply(ctx, batch(c.bad), alice)
		wantErr(t, "Apply with "+c.name, err, c.want)
		if got := mustLatest(t, s); got != seq {
			t.Errorf("%s: sequence moved from %d to %d", c.name, seq, got)
		}
		if evs := mustEvents(t, s, seq, store.EventFilter{}); len(evs) != 0 {
			t.Errorf("%s: %d events emitted", c.name, len(evs))
		}
		list, err := s.List(ctx, "Cluster", store.ListOptions{})
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		if len(list.Items) != 0 {
			t.Errorf("%s: %d clusters written, want none", c.name, len(list.Items))
		}
		got, err := s.Get(ctx, "Service", "web")
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		if string(got.Spec) != `{"v":2}` {
			t.Errorf("%s: web changed to %s", c.name, got.Spec)
		}
	}
}

func testEvents(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	if seq := mustLatest(t, s); seq != 0 {
		t.Fatalf("empty store: latest sequence %d", seq)
	}
	if evs := mustEvents(t, s, 0, store.EventFilter{}); len(evs) != 0 {
		t.Fatalf("empty store has %d events", len(evs))
	}
	c := mustCreate(t, s, obj("Service", "web", map[string]string{"a": "b"}, `{"v":1}`))
	u, err := s.Update(ctx, &store.Object{Kind: "Service", Name: "web", ResourceVersion: c.ResourceVersion,
		Labels: map[string]string{"a": "b"}, Spec: json.RawMessage(`{"v":2}`)}, bob)
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	st, err := s.UpdateStatus(ctx, &store.Object{Kind: "Service", Name: "web", ResourceVersion: u.ResourceVersion,
		Status: json.RawMessage(`{"phase":"Ready"}`)}, system)
	if err != nil {
		t.Fatalf("UpdateStatus: %v", err)
	}
	d, err := s.Delete(ctx, "Service", "web", 0, alice)
	if err != nil {
		t.Fatalf("Delete: %v", err)
	}
	evs := mustEvents(t, s, 0, store.EventFilter{})
	dc, du := digest(t, c), digest(t, u)
	if dc == du {
		t.Fatalf("digests of different specs are equal")
	}
	type summary struct {
		Seq           int64
		Type          store.EventType
		Actor         store.Actor
		Before, After string
		Version       int64
	}
	var got []summary
	for _, e := range evs {
		got = append(got, summary{e.Seq, e.Type, e.Actor, e.DigestBefore, e.DigestAfter, e.Object.ResourceVersion})
		if e.Kind != "Service" || e.Name != "web" || e.Time.IsZero() {
			t.Errorf("event %d: kind %q name %q time %v", e.Seq, e.Kind, e.Name, e.Time)
		}
	}
	want := []summary{
		{1, store.Created, alice, "", dc, 1},
		{2, store.Updated, bob, dc, du, 2},
		{3, store.StatusUpdated, system, du, du, 3},
		{4, store.Deleted, alice, du, "", 3},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if len(evs) == 4 {
		for i, o := range []*store.Object{c, u, st, d} {
			if diff := cmp.Diff(o, evs[i].Object, objOpts); diff != "" {
				t.Errorf("event %d object (-want +got):\n%s", evs[i].Seq, diff)
			}
		}
		for i := 1; i < 4; i++ {
			if evs[i].Time.Before(evs[i-1].Time) {
				t.Errorf("event %d time %v before event %d time %v", evs[i].Seq, evs[i].Time, evs[i-1].Seq, evs[i-1].Time)
			}
		}
	}
	if seq := mustLatest(t, s); seq != 4 {
		t.Errorf("latest sequence %d, want 4", seq)
	}
	after2 := mustEvents(t, s, 2, store.EventFilter{})
	if len(after2) != 2 || after2[0].Seq != 3 {
		t.Errorf("Events(after 2) = %d events starting %v", len(after2), after2)
	}
	limited, err := s.Events(ctx, 0, 3, store.EventFilter{})
	if err != nil || len(limited) != 3 || limited[2].Seq != 3 {
		t.Errorf("Events(limit 3) = %d events, %v", len(limited), err)
	}
}

func testEventFilters(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	mustCreate(t, s, obj("Service", "web", nil, `{}`))
	mid := time.Now()
	time.Sleep(20 * time.Millisecond)
	if _, err := s.Create(ctx, obj("Cluster", "eu", nil, `{}`), bob); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, obj("Source", "web", nil, `{}`), bob); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Delete(ctx, "Service", "web", 0, system); err != nil {
		t.Fatal(err)
	}
	seqs := func(f store.EventFilter) []int64 {
		var out []int64
		for _, e := range mustEvents(t, s, 0, f) {
			out = append(out, e.Seq)
		}
		return out
	}
	cases := []struct {
		name string
		f    store.EventFilter
		want []int64
	}{
		{"kinds", store.EventFilter{Kinds: []string{"Service", "Source"}}, []int64{1, 3, 4}},
		{"name", store.EventFilter{Name: "web"}, []int64{1, 3, 4}},
		{"kind and name", store.EventFilter{Kinds: []string{"Service"}, Name: "web"}, []int64{1, 4}},
		{"actor", store.EventFilter{Actor: "ci-bot"}, []int64{2, 3}},
		{"since", store.EventFilter{Since: mid}, []int64{2, 3, 4}},
		{"until", store.EventFilter{Until: mid}, []int64{1}},
		{"none match", store.EventFilter{Actor: "nobody"}, nil},
	}
	for _, c := range cases {
		if d := cmp.Diff(c.want, seqs(c.f), cmpopts.EquateEmpty()); d != "" {
			t.Errorf("filter %s (-want +got):\n%s", c.name, d)
		}
	}
}

func testWaitForEvent(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	mustCreate(t, s, obj("Service", "a", nil, `{}`))
	if err := s.WaitForEvent(ctx, 0); err != nil {
		t.Fatalf("WaitForEvent with an event already there: %v", err)
	}
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	err := s.WaitForEvent(short, 1)
	cancel()
	wantErr(t, "WaitForEvent with nothing new", err, context.DeadlineExceeded)
	for round := range 3 {
		after := mustLatest(t, s)
		woke := make(chan error, 1)
		started := time.Now()
		go func() { woke <- s.WaitForEvent(ctx, after) }()
		time.Sleep(50 * time.Millisecond)
		select {
		case err := <-woke:
			t.Fatalf("round %d: WaitForEvent returned %v before any write", round, err)
		default:
		}
		mustCreate(t, s, obj("Service", fmt.Sprintf("w%d", round), nil, `{}`))
		select {
		case err := <-woke:
			if err != nil {
				t.Fatalf("round %d: WaitForEvent: %v", round, err)
			}
			if waited := time.Since(started); waited > 2*time.Second {
				t.Errorf("round %d: woke after %v", round, waited)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("round %d: WaitForEvent did not wake after a write", round)
		}
	}
}

func testConcurrentWritersOneWins(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	base := mustCreate(t, s, obj("Service", "hot", nil, `{"writer":-1}`))
	const n = 50
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			o := obj("Service", "hot", nil, fmt.Sprintf(`{"writer":%d}`, i))
			o.ResourceVersion = base.ResourceVersion
			_, errs[i] = s.Update(ctx, o, alice)
		})
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil:
			if winner >= 0 {
				t.Errorf("writers %d and %d both won", winner, i)
			}
			winner = i
		case !errors.Is(err, store.ErrConflict):
			t.Errorf("writer %d: got %v, want ErrConflict", i, err)
		}
	}
	if winner < 0 {
		t.Fatalf("no writer won")
	}
	got, err := s.Get(ctx, "Service", "hot")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	var spec struct{ Writer int }
	if err := json.Unmarshal(got.Spec, &spec); err != nil {
		t.Fatal(err)
	}
	if spec.Writer != winner || got.Generation != 2 {
		t.Errorf("stored writer %d generation %d; want the winner %d and generation 2", spec.Writer, got.Generation, winner)
	}
	if evs := mustEvents(t, s, base.ResourceVersion, store.EventFilter{}); len(evs) != 1 {
		t.Errorf("%d events after the race, want 1", len(evs))
	}
}

func testConcurrentRetry(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	mustCreate(t, s, obj("Service", "counter", nil, `{"n":0}`))
	const workers, increments = 10, 20
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			for range increments {
				for attempt := 0; ; attempt++ {
					if attempt > 10000 {
						errs <- fmt.Errorf("no progress after %d attempts", attempt)
						return
					}
					cur, err := s.Get(ctx, "Service", "counter")
					if err != nil {
						errs <- err
						return
					}
					var spec struct{ N int }
					if err := json.Unmarshal(cur.Spec, &spec); err != nil {
						errs <- err
						return
					}
					cur.Spec = json.RawMessage(fmt.Sprintf(`{"n":%d}`, spec.N+1))
					_, err = s.Update(ctx, cur, alice)
					if err == nil {
						break
					}
					if !errors.Is(err, store.ErrConflict) {
						errs <- err
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("worker: %v", err)
	}
	got, err := s.Get(ctx, "Service", "counter")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	var spec struct{ N int }
	if err := json.Unmarshal(got.Spec, &spec); err != nil {
		t.Fatal(err)
	}
	if spec.N != workers*increments || got.Generation != workers*increments+1 {
		t.Errorf("counter %d generation %d; want %d and %d", spec.N, got.Generation, workers*increments, workers*increments+1)
	}
}

func testWatchResumption(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	const writers, perWriter = 4, 60
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				o, err := s.Create(ctx, obj("Service", fmt.Sprintf("w%d-%03d", w, i), nil, `{}`), alice)
				if err == nil && i%3 == 0 {
					o.Spec = json.RawMessage(`{"touched":true}`)
					_, err = s.Update(ctx, o, alice)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	var seen []int64
	after := int64(0)
	reads := 0
	finished := false
	for {
		evs, err := s.Events(ctx, after, 7, store.EventFilter{})
		if err != nil {
			t.Fatalf("Events(%d): %v", after, err)
		}
		reads++
		for _, e := range evs {
			seen = append(seen, e.Seq)
			after = e.Seq
		}
		if len(evs) > 0 {
			continue
		}
		if finished {
			break
		}
		select {
		case <-done:
			finished = true // one more pass drains what was committed last
		default:
			wctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
			_ = s.WaitForEvent(wctx, after)
			cancel()
		}
	}
	close(errs)
	for err := range errs {
		t.Fatalf("writer: %v", err)
	}
	want := int64(writers*perWriter + writers*((perWriter+2)/3))
	if int64(len(seen)) != want {
		t.Errorf("read %d events in %d reads, want %d", len(seen), reads, want)
	}
	for i, seq := range seen {
		if seq != int64(i+1) {
			t.Fatalf("event %d has seq %d: gap or duplicate (previous %v)", i, seq, seen[max(0, i-3):i])
		}
	}
	if latest := mustLatest(t, s); latest != want {
		t.Errorf("latest sequence %d, want %d", latest, want)
	}
}

// testSSOSessionTokens checks the tokens `flotilla login --sso` makes: named after the person
// (colon and at sign included), several at once for one person (a laptop and a workstation), each
// with its own expiry.
func testSSOSessionTokens(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	created := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	sso := store.Actor{Kind: store.ActorSystem, Name: "sso"}
	var want []store.Token
	for i, ttl := range []time.Duration{12 * time.Hour, time.Minute} {
		exp := created.Add(ttl)
		tk := store.Token{ID: fmt.Sprintf("sso-%d", i), Name: "oidc:alice@example.com", Hash: fmt.Sprintf("sso-hash-%d", i), Role: "admin",
			CreatedAt: created, ExpiresAt: &exp, CreatedBy: "system:sso"}
		if err := s.CreateToken(ctx, tk, sso); err != nil {
			t.Fatalf("CreateToken %s: %v", tk.ID, err)
		}
		want = append(want, tk)
	}
	for _, tk := range want {
		got, err := s.TokenByHash(ctx, tk.Hash)
		if err != nil {
			t.Fatalf("TokenByHash %s: %v", tk.ID, err)
		}
		if d := cmp.Diff(&tk, got); d != "" {
			t.Errorf("TokenByHash %s (-want +got):\n%s", tk.ID, d)
		}
	}
	list, err := s.ListTokens(ctx)
	if err != nil {
		t.Fatalf("ListTokens: %v", err)
	}
	if d := cmp.Diff(want, list); d != "" {
		t.Errorf("ListTokens (-want +got):\n%s", d)
	}
}

func testTokens(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	created := time.Date(2026, 11, 1, 12, 0, 0, 123456000, time.UTC)
	expires := created.Add(24 * time.Hour)
	toks := []store.Token{
		{ID: "tok-b", Name: "ci", Hash: "hash-b", Role: "deployer", CreatedAt: created, ExpiresAt: &expires, CreatedBy: "alice"},
		{ID: "tok-a", Name: "admin", Hash: "hash-a", Role: "admin", CreatedAt: created, CreatedBy: "system"},
	}
	for _, tk := range toks {
		if err := s.CreateToken(ctx, tk, alice); err != nil {
			t.Fatalf("CreateToken %s: %v", tk.ID, err)
		}
	}
	dupID := toks[0]
	dupID.Hash = "other"
	wantErr(t, "CreateToken with a duplicate id", s.CreateToken(ctx, dupID, alice), store.ErrAlreadyExists)
	dupHash := toks[0]
	dupHash.ID = "tok-c"
	wantErr(t, "CreateToken with a duplicate hash", s.CreateToken(ctx, dupHash, alice), store.ErrAlreadyExists)
	wantErr(t, "CreateToken without a hash", s.CreateToken(ctx, store.Token{ID: "x", Role: "viewer"}, alice), store.ErrInvalid)
	got, err := s.TokenByHash(ctx, "hash-b")
	if err != nil {
		t.Fatalf("TokenByHash: %v", err)
	}
	if d := cmp.Diff(&toks[0], got); d != "" {
		t.Errorf("TokenByHash (-want +got):\n%s", d)
	}
	_, err = s.TokenByHash(ctx, "nope")
	wantErr(t, "TokenByHash of an unknown hash", err, store.ErrNotFound)
	list, err := s.ListTokens(ctx)
	if err != nil {
		t.Fatalf("ListTokens: %v", err)
	}
	if d := cmp.Diff([]store.Token{toks[1], toks[0]}, list); d != "" {
		t.Errorf("ListTokens (-want +got):\n%s", d)
	}
	bob := store.Actor{Kind: store.ActorUser, Name: "bob"}
	if err := s.DeleteToken(ctx, "tok-b", bob); err != nil {
		t.Fatalf("DeleteToken: %v", err)
	}
	wantErr(t, "DeleteToken again", s.DeleteToken(ctx, "tok-b", bob), store.ErrNotFound)
	_, err = s.TokenByHash(ctx, "hash-b")
	wantErr(t, "TokenByHash after delete", err, store.ErrNotFound)
	// Every token change is audited, failed ones are not, and no event carries a hash.
	evs, err := s.Events(ctx, 0, 0, store.EventFilter{})
	if err != nil {
		t.Fatalf("Events: %v", err)
	}
	type audit struct {
		Type              store.EventType
		Kind, Name, Actor string
	}
	var audited []audit
	for _, ev := range evs {
		audited = append(audited, audit{ev.Type, ev.Kind, ev.Name, ev.Actor.Name})
		if ev.Object != nil && strings.Contains(string(ev.Object.Spec), "hash-") {
			t.Errorf("event %d carries a token hash: %s", ev.Seq, ev.Object.Spec)
		}
	}
	want := []audit{
		{store.Created, store.KindToken, "ci", "alice"},
		{store.Created, store.KindToken, "admin", "alice"},
		{store.Deleted, store.KindToken, "ci", "bob"},
	}
	if d := cmp.Diff(want, audited); d != "" {
		t.Errorf("token events (-want +got):\n%s", d)
	}
}
