package storetest

import (
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"flotilla.dev/flotilla/internal/store"
)

var rolloutTests = []struct {
	name string
	fn   func(t *testing.T, s store.Store)
}{
	{"Leadership", testLeadership},
	{"LeadershipRace", testLeadershipRace},
	{"CommitTransition", testCommitTransition},
	{"CommitTransitionAllOrNothing", testCommitTransitionAllOrNothing},
	{"RolloutRecords", testRolloutRecords},
	{"AgentSummaries", testAgentSummaries},
}

func testLeadership(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	now := time.Now().UTC()
	a, err := s.AcquireLeadership(ctx, "runner", "a", 10*time.Second, now)
	if err != nil || a.Epoch != 1 || a.Holder != "a" {
		t.Fatalf("AcquireLeadership(a) = %+v, %v; want epoch 1 held by a", a, err)
	}
	_, err = s.AcquireLeadership(ctx, "runner", "b", 10*time.Second, now.Add(time.Second))
	var held *store.LeadershipHeldError
	if !errors.As(err, &held) || !errors.Is(err, store.ErrConflict) || held.Leadership.Holder != "a" {
		t.Fatalf("AcquireLeadership(b) while a holds it: %v; want LeadershipHeldError naming a", err)
	}
	r, err := s.AcquireLeadership(ctx, "runner", "a", 10*time.Second, now.Add(5*time.Second))
	if err != nil || r.Epoch != 1 || !r.ExpiresAt.Equal(now.Add(15*time.Second)) {
		t.Fatalf("renewal = %+v, %v; want epoch 1 expiring at %s", r, err, now.Add(15*time.Second))
	}
	// Another name is independent.
	if o, err := s.AcquireLeadership(ctx, "other", "b", time.Second, now); err != nil || o.Epoch != 1 {
		t.Fatalf("AcquireLeadership(other) = %+v, %v", o, err)
	}
	// After expiry b takes it with a greater epoch, and a's fence fails.
	b, err := s.AcquireLeadership(ctx, "runner", "b", 10*time.Second, now.Add(16*time.Second))
	if err != nil || b.Epoch != 2 || b.Holder != "b" {
		t.Fatalf("AcquireLeadership(b) after expiry = %+v, %v; want epoch 2", b, err)
	}
	wantErr(t, "ReleaseLeadership by a non-holder", s.ReleaseLeadership(ctx, "runner", "a"), store.ErrNotFound)
	if err := s.ReleaseLeadership(ctx, "runner", "b"); err != nil {
		t.Fatalf("ReleaseLeadership(b): %v", err)
	}
	// Released: a takes it at once (the real clock is past the release), epoch grows.
	a2, err := s.AcquireLeadership(ctx, "runner", "a", 10*time.Second, time.Now().Add(time.Millisecond))
	if err != nil || a2.Epoch != 3 {
		t.Fatalf("AcquireLeadership(a) after release = %+v, %v; want epoch 3", a2, err)
	}
	_, err = s.AcquireLeadership(ctx, "", "a", time.Second, now)
	wantErr(t, "AcquireLeadership without a name", err, store.ErrInvalid)
}

// testLeadershipRace checks that of many candidates at once exactly one
// wins.
func testLeadershipRace(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	now := time.Now().UTC()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		wins []string
	)
	for _, h := range []string{"a", "b", "c", "d", "e", "f"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.AcquireLeadership(ctx, "runner", h, time.Minute, now)
			switch {
			case err == nil:
				mu.Lock()
				wins = append(wins, h)
				mu.Unlock()
			case !errors.Is(err, store.ErrConflict):
				t.Errorf("AcquireLeadership(%s): %v", h, err)
			}
		}()
	}
	wg.Wait()
	if len(wins) != 1 {
		t.Fatalf("winners %v; want exactly one", wins)
	}
}

func rolloutObject(t *testing.T, s store.Store, name string) *store.Object {
	t.Helper()
	return mustCreate(t, s, obj("Rollout", name, nil, `{"service":"web","release":"r2"}`))
}

func testCommitTransition(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	ro := rolloutObject(t, s, "r2")
	before, _ := s.LatestSeq(ctx)
	tr := store.Transition{
		Rollout:     &store.Object{Name: "r2", ResourceVersion: ro.ResourceVersion, Status: json.RawMessage(`{"phase":"Progressing"}`)},
		Record:      json.RawMessage(`{"step":1}`),
		Assignments: []store.Assignment{{Cluster: "c1", Service: "web", Release: "r2", Bundle: "sha256:b2"}},
		Audit:       map[string]any{"events": []string{"start"}},
	}
	res, err := s.CommitTransition(ctx, tr, system)
	if err != nil {
		t.Fatalf("CommitTransition: %v", err)
	}
	if string(res.Rollout.Status) != `{"phase":"Progressing"}` || res.Rollout.ResourceVersion <= ro.ResourceVersion {
		t.Errorf("rollout after commit = %s at version %d; want the new status at a greater version", res.Rollout.Status, res.Rollout.ResourceVersion)
	}
	if len(res.Changed) != 1 || res.Changed[0].Cluster != "c1" {
		t.Errorf("changed = %+v; want c1", res.Changed)
	}
	got, err := s.Get(ctx, "Rollout", "r2")
	if err != nil || got.ResourceVersion != res.Rollout.ResourceVersion || string(got.Status) != `{"phase":"Progressing"}` {
		t.Fatalf("Get after commit = %+v, %v", got, err)
	}
	ds, err := s.Desired(ctx, "c1")
	if err != nil || len(ds.Assignments) != 1 || ds.Assignments[0].Release != "r2" {
		t.Fatalf("Desired(c1) = %+v, %v; want r2", ds, err)
	}
	evs := mustEvents(t, s, before, store.EventFilter{})
	var kinds []string
	for _, e := range evs {
		kinds = append(kinds, e.Kind)
	}
	if len(evs) != 3 || evs[0].Kind != "Rollout" || evs[0].Type != store.StatusUpdated || evs[1].Kind != store.KindAssignments ||
		evs[2].Kind != store.KindRolloutAudit || evs[2].Name != "r2" {
		t.Fatalf("events of a transition: %v; want Rollout StatusUpdated, Assignments, RolloutAudit", kinds)
	}
	recs, err := s.RolloutRecords(ctx, "r2")
	if err != nil || len(recs) != 1 || string(recs[0].Record) != `{"step":1}` || recs[0].Done {
		t.Fatalf("RolloutRecords(r2) = %+v, %v", recs, err)
	}

	// A stale version writes nothing.
	stale := tr
	stale.Record = json.RawMessage(`{"step":99}`)
	stale.Assignments = []store.Assignment{{Cluster: "c9", Service: "web", Release: "r2", Bundle: "sha256:b2"}}
	_, err = s.CommitTransition(ctx, stale, system)
	wantErr(t, "CommitTransition with a stale version", err, store.ErrConflict)
	if ds, _ := s.Desired(ctx, "c9"); len(ds.Assignments) != 0 {
		t.Errorf("a refused transition assigned c9: %+v", ds.Assignments)
	}
	if recs, _ := s.RolloutRecords(ctx, "r2"); string(recs[0].Record) != `{"step":1}` {
		t.Errorf("a refused transition wrote its record: %s", recs[0].Record)
	}

	// Same status, new record: no Rollout event, the version stays.
	seq, _ := s.LatestSeq(ctx)
	same := store.Transition{Rollout: &store.Object{Name: "r2", ResourceVersion: res.Rollout.ResourceVersion, Status: res.Rollout.Status},
		Record: json.RawMessage(`{"step":2}`), Done: true}
	res2, err := s.CommitTransition(ctx, same, system)
	if err != nil || res2.Rollout.ResourceVersion != res.Rollout.ResourceVersion {
		t.Fatalf("CommitTransition without a status change = %+v, %v; want the version kept", res2, err)
	}
	if evs := mustEvents(t, s, seq, store.EventFilter{}); len(evs) != 0 {
		t.Errorf("a transition that changed only the record wrote %d events", len(evs))
	}
	if recs, _ := s.RolloutRecords(ctx, "r2"); string(recs[0].Record) != `{"step":2}` || !recs[0].Done {
		t.Errorf("record = %s done=%v; want step 2, done", recs[0].Record, recs[0].Done)
	}

	// A fence that does not hold refuses the write; one that holds lets it through.
	now := time.Now().UTC()
	l, err := s.AcquireLeadership(ctx, "runner", "a", time.Minute, now)
	if err != nil {
		t.Fatal(err)
	}
	fenced := store.Transition{Rollout: &store.Object{Name: "r2", ResourceVersion: res.Rollout.ResourceVersion, Status: json.RawMessage(`{"phase":"Paused"}`)},
		Record: json.RawMessage(`{"step":3}`), Fence: &store.Fence{Name: "runner", Holder: "b", Epoch: l.Epoch, Now: now}}
	_, err = s.CommitTransition(ctx, fenced, system)
	wantErr(t, "CommitTransition fenced by a leadership held by another", err, store.ErrConflict)
	fenced.Fence = &store.Fence{Name: "runner", Holder: "a", Epoch: l.Epoch, Now: now}
	if _, err := s.CommitTransition(ctx, fenced, system); err != nil {
		t.Fatalf("CommitTransition with a holding fence: %v", err)
	}
	_, err = s.CommitTransition(ctx, store.Transition{Rollout: &store.Object{Name: "nope", ResourceVersion: 1}, Record: json.RawMessage(`{}`)}, system)
	wantErr(t, "CommitTransition of a missing rollout", err, store.ErrNotFound)
}

// testCommitTransitionAllOrNothing checks that a transition whose
// assignments are refused leaves status and record as they were.
func testCommitTransitionAllOrNothing(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	ro := rolloutObject(t, s, "r3")
	bad := store.Transition{Rollout: &store.Object{Name: "r3", ResourceVersion: ro.ResourceVersion, Status: json.RawMessage(`{"phase":"Progressing"}`)},
		Record:      json.RawMessage(`{"step":1}`),
		Assignments: []store.Assignment{{Cluster: "c1", Service: "web", Release: "r3"}}} // no bundle
	_, err := s.CommitTransition(ctx, bad, system)
	wantErr(t, "CommitTransition with an assignment without bundle", err, store.ErrInvalid)
	got, _ := s.Get(ctx, "Rollout", "r3")
	if got.ResourceVersion != ro.ResourceVersion || len(got.Status) > 0 && string(got.Status) != string(ro.Status) {
		t.Errorf("refused transition changed the rollout: %s at %d", got.Status, got.ResourceVersion)
	}
	if recs, _ := s.RolloutRecords(ctx, "r3"); len(recs) != 1 || recs[0].Record != nil {
		t.Errorf("refused transition wrote a record: %+v", recs)
	}
	bad.Record = json.RawMessage(`not json`)
	bad.Assignments = nil
	_, err = s.CommitTransition(ctx, bad, system)
	wantErr(t, "CommitTransition with a record that is not JSON", err, store.ErrInvalid)
}

func testRolloutRecords(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	a := rolloutObject(t, s, "a")
	b := rolloutObject(t, s, "b")
	rolloutObject(t, s, "c")
	mustCreate(t, s, obj("Service", "a", nil, `{}`)) // same name, other kind: never listed
	commit := func(o *store.Object, done bool) {
		t.Helper()
		if _, err := s.CommitTransition(ctx, store.Transition{Rollout: &store.Object{Name: o.Name, ResourceVersion: o.ResourceVersion},
			Record: json.RawMessage(`{"n":"` + o.Name + `"}`), Done: done}, system); err != nil {
			t.Fatal(err)
		}
	}
	commit(a, true)
	commit(b, false)
	recs, err := s.RolloutRecords(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range recs {
		names = append(names, r.Object.Name)
		if r.Object.Kind != "Rollout" {
			t.Errorf("record of %s %s listed", r.Object.Kind, r.Object.Name)
		}
	}
	if len(recs) != 2 || names[0] != "b" || names[1] != "c" || string(recs[0].Record) != `{"n":"b"}` || recs[1].Record != nil {
		t.Fatalf("RolloutRecords() = %v; want b (with its record) and c (none): done ones left out", names)
	}
	recs, err = s.RolloutRecords(ctx, "a", "zz")
	if err != nil || len(recs) != 1 || !recs[0].Done || string(recs[0].Record) != `{"n":"a"}` {
		t.Fatalf("RolloutRecords(a, zz) = %+v, %v; want a, done", recs, err)
	}
}

// testAgentSummaries checks that AgentSummaries returns what AgentStatuses does, without the
// reports.
func testAgentSummaries(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	hb := time.Now().UTC().Truncate(time.Millisecond)
	for i, c := range []string{"eu-1", "eu-2", "us-1"} {
		if _, err := s.RecordAgentStatus(ctx, store.AgentStatus{Cluster: c, Seq: int64(i + 1), Epoch: 2, Health: "Healthy",
			AgentVersion: "v1", Summary: json.RawMessage(`{"health":"Healthy"}`), Report: json.RawMessage(`{"big":"report"}`),
			LastHeartbeat: hb}); err != nil {
			t.Fatal(err)
		}
	}
	all, err := s.AgentSummaries(ctx)
	if err != nil || len(all) != 3 {
		t.Fatalf("AgentSummaries() = %d, %v; want 3", len(all), err)
	}
	some, err := s.AgentSummaries(ctx, "eu-2", "nope")
	if err != nil || len(some) != 1 {
		t.Fatalf("AgentSummaries(eu-2, nope) = %v, %v; want eu-2 only", some, err)
	}
	st := some["eu-2"]
	if st.Seq != 2 || st.Epoch != 2 || st.Health != "Healthy" || st.AgentVersion != "v1" || !st.LastHeartbeat.Equal(hb) ||
		string(st.Summary) != `{"health":"Healthy"}` || st.Report != nil {
		t.Errorf("AgentSummaries(eu-2) = %+v; want its status, summary and heartbeat, no report", st)
	}
}
