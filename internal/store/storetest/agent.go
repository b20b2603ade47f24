package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"flotilla.dev/flotilla/internal/store"
)

var agentTests = []struct {
	name string
	fn   func(t *testing.T, s store.Store)
}{
	{"BootstrapTokens", testBootstrapTokens},
	{"AgentRevocation", testAgentRevocation},
	{"Leases", testLeases},
	{"Assignments", testAssignments},
	{"ManyClusterAssignments", testManyClusterAssignments},
	{"Bundles", testBundles},
	{"AgentStatus", testAgentStatus},
}

func testBootstrapTokens(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	now := time.Now().UTC()
	if err := s.CreateBootstrapToken(ctx, store.BootstrapToken{Hash: "h1", Cluster: "eu-1", ExpiresAt: now.Add(time.Hour), CreatedBy: "user:alice"}, alice); err != nil {
		t.Fatalf("CreateBootstrapToken: %v", err)
	}
	if err := s.CreateBootstrapToken(ctx, store.BootstrapToken{Hash: "h2", Cluster: "eu-2", ExpiresAt: now.Add(time.Minute)}, alice); err != nil {
		t.Fatalf("CreateBootstrapToken: %v", err)
	}
	err := s.CreateBootstrapToken(ctx, store.BootstrapToken{Hash: "h1", Cluster: "eu-3", ExpiresAt: now.Add(time.Hour)}, alice)
	wantErr(t, "CreateBootstrapToken with a used hash", err, store.ErrAlreadyExists)
	wantErr(t, "CreateBootstrapToken without expiry", s.CreateBootstrapToken(ctx, store.BootstrapToken{Hash: "h9", Cluster: "x"}, alice), store.ErrInvalid)

	_, err = s.RedeemBootstrapToken(ctx, "nope", store.AgentCredential{Hash: "c0"}, now)
	wantErr(t, "redeem unknown token", err, store.ErrNotFound)
	cluster, err := s.RedeemBootstrapToken(ctx, "h1", store.AgentCredential{Hash: "c1"}, now)
	if err != nil || cluster != "eu-1" {
		t.Fatalf("RedeemBootstrapToken = %q, %v; want eu-1", cluster, err)
	}
	_, err = s.RedeemBootstrapToken(ctx, "h1", store.AgentCredential{Hash: "c1b"}, now)
	wantErr(t, "second redeem", err, store.ErrUsed)
	if _, err := s.AgentByHash(ctx, "c1b"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a refused redeem stored its credential: %v", err)
	}
	_, err = s.RedeemBootstrapToken(ctx, "h2", store.AgentCredential{Hash: "c2"}, now.Add(2*time.Minute))
	wantErr(t, "redeem expired token", err, store.ErrExpired)

	cred, err := s.AgentByHash(ctx, "c1")
	if err != nil || cred.Cluster != "eu-1" {
		t.Fatalf("AgentByHash = %+v, %v; want cluster eu-1", cred, err)
	}
	// Registering again with a new token replaces the credential.
	if err := s.CreateBootstrapToken(ctx, store.BootstrapToken{Hash: "h3", Cluster: "eu-1", ExpiresAt: now.Add(time.Hour)}, alice); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RedeemBootstrapToken(ctx, "h3", store.AgentCredential{Hash: "c3"}, now); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AgentByHash(ctx, "c1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("old credential still works after re-registration: %v", err)
	}
	if _, err := s.AgentByHash(ctx, "c3"); err != nil {
		t.Errorf("new credential: %v", err)
	}
	evs := mustEvents(t, s, 0, store.EventFilter{Kinds: []string{store.KindAgentCredential}})
	if len(evs) != 5 {
		t.Errorf("got %d credential events, want 5 (3 tokens issued, 2 registrations)", len(evs))
	}
	for _, e := range evs {
		if data, _ := json.Marshal(e.Object); jsonContains(data, "h1", "c1", "h3", "c3") {
			t.Errorf("event %d leaks a token hash: %s", e.Seq, data)
		}
	}
}

func jsonContains(data []byte, subs ...string) bool {
	for _, s := range subs {
		if len(s) > 0 && json.Valid(data) && strings.Contains(string(data), `"`+s+`"`) {
			return true
		}
	}
	return false
}

func testAgentRevocation(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	now := time.Now()
	wantErr(t, "revoke unknown cluster", s.RevokeAgent(ctx, "ghost", alice), store.ErrNotFound)
	for _, h := range []string{"t1", "t2"} {
		if err := s.CreateBootstrapToken(ctx, store.BootstrapToken{Hash: h, Cluster: "c", ExpiresAt: now.Add(time.Hour)}, alice); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.RedeemBootstrapToken(ctx, "t1", store.AgentCredential{Hash: "cred"}, now); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AcquireLease(ctx, "c", "pod-a", time.Minute, now); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeAgent(ctx, "c", alice); err != nil {
		t.Fatalf("RevokeAgent: %v", err)
	}
	if _, err := s.AgentByHash(ctx, "cred"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("AgentByHash after revoke = %v, want ErrNotFound", err)
	}
	_, err := s.RedeemBootstrapToken(ctx, "t2", store.AgentCredential{Hash: "cred2"}, now)
	wantErr(t, "redeem an outstanding token after revoke", err, store.ErrNotFound)
	_, err = s.GetLease(ctx, "c")
	wantErr(t, "lease after revoke", err, store.ErrNotFound)
	wantErr(t, "revoke twice", s.RevokeAgent(ctx, "c", alice), store.ErrNotFound)
}

func testLeases(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	now := time.Now().UTC().Truncate(time.Millisecond)
	l, err := s.AcquireLease(ctx, "c", "a", 30*time.Second, now)
	if err != nil || l.Epoch != 1 || l.Holder != "a" {
		t.Fatalf("first AcquireLease = %+v, %v; want epoch 1 for a", l, err)
	}
	l, err = s.AcquireLease(ctx, "c", "a", 30*time.Second, now.Add(10*time.Second))
	if err != nil || l.Epoch != 1 {
		t.Fatalf("renew = %+v, %v; want epoch 1", l, err)
	}
	_, err = s.AcquireLease(ctx, "c", "b", 30*time.Second, now.Add(20*time.Second))
	var held *store.LeaseHeldError
	if !errors.As(err, &held) || !errors.Is(err, store.ErrConflict) || held.Lease.Holder != "a" {
		t.Fatalf("second agent's AcquireLease = %v, want a LeaseHeldError naming a", err)
	}
	l, err = s.AcquireLease(ctx, "c", "b", 30*time.Second, now.Add(41*time.Second))
	if err != nil || l.Epoch != 2 || l.Holder != "b" {
		t.Fatalf("AcquireLease after expiry = %+v, %v; want epoch 2 for b", l, err)
	}
	wantErr(t, "release by a non-holder", s.ReleaseLease(ctx, "c", "a"), store.ErrNotFound)
	if err := s.ReleaseLease(ctx, "c", "b"); err != nil {
		t.Fatalf("ReleaseLease: %v", err)
	}
	l, err = s.AcquireLease(ctx, "c", "a", 30*time.Second, time.Now().Add(time.Second))
	if err != nil || l.Epoch != 3 {
		t.Fatalf("AcquireLease after release = %+v, %v; want epoch 3", l, err)
	}
	got, err := s.GetLease(ctx, "c")
	if err != nil || got.Holder != "a" || got.Epoch != 3 {
		t.Fatalf("GetLease = %+v, %v", got, err)
	}
	_, err = s.AcquireLease(ctx, "c", "", time.Second, now)
	wantErr(t, "AcquireLease without holder", err, store.ErrInvalid)
}

const (
	bundleA = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	bundleB = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

func testAssignments(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	empty, err := s.Desired(ctx, "eu-1")
	if err != nil || len(empty.Assignments) != 0 || empty.Digest != store.DesiredDigest(nil) {
		t.Fatalf("Desired of an unassigned cluster = %+v, %v; want no assignments and the empty digest", empty, err)
	}
	start := mustLatest(t, s)
	changed, err := s.SetAssignments(ctx, []store.Assignment{
		{Cluster: "eu-1", Service: "web", Release: "web-1", Bundle: bundleA, Options: json.RawMessage(`{"namespace":"web"}`)},
		{Cluster: "eu-1", Service: "api", Release: "api-1", Bundle: bundleB},
		{Cluster: "eu-2", Service: "web", Release: "web-1", Bundle: bundleA},
	}, alice)
	if err != nil || len(changed) != 2 {
		t.Fatalf("SetAssignments = %+v, %v; want two clusters changed", changed, err)
	}
	d1, err := s.Desired(ctx, "eu-1")
	if err != nil {
		t.Fatal(err)
	}
	if d1.Digest == empty.Digest || d1.Digest != changed[0].Digest || d1.Seq != changed[0].Seq {
		t.Errorf("Desired(eu-1) digest %s seq %d; want %s seq %d from SetAssignments", d1.Digest, d1.Seq, changed[0].Digest, changed[0].Seq)
	}
	var services []string
	for _, a := range d1.Assignments {
		services = append(services, a.Service+"="+a.Release)
	}
	if diff := cmp.Diff([]string{"api=api-1", "web=web-1"}, services); diff != "" {
		t.Errorf("assignments of eu-1 (-want +got):\n%s", diff)
	}
	evs := mustEvents(t, s, start, store.EventFilter{})
	if len(evs) != 1 || evs[0].Kind != store.KindAssignments || evs[0].Name != "api,web" || evs[0].Actor != alice {
		t.Fatalf("events after SetAssignments = %+v; want one Assignments event by alice naming api,web", evs)
	}
	var fromEvent store.AssignmentsChange
	if err := json.Unmarshal(evs[0].Object.Spec, &fromEvent); err != nil || len(fromEvent.Changed) != 2 ||
		fromEvent.Changed[0].Digest != d1.Digest || len(fromEvent.Changed[0].Assignments) != 2 {
		t.Errorf("event carries %+v (%v); want the whole desired state of eu-1 and eu-2", fromEvent, err)
	}

	// The same assignments again change nothing and write nothing.
	before := mustLatest(t, s)
	again, err := s.SetAssignments(ctx, []store.Assignment{{Cluster: "eu-1", Service: "web", Release: "web-1", Bundle: bundleA,
		Options: json.RawMessage(`{ "namespace": "web" }`)}}, alice)
	if err != nil || len(again) != 0 || mustLatest(t, s) != before {
		t.Errorf("repeating an assignment = %+v, %v, seq %d -> %d; want no change", again, err, before, mustLatest(t, s))
	}
	// Changing one service changes the digest; removing it changes it again.
	ch, err := s.SetAssignments(ctx, []store.Assignment{{Cluster: "eu-1", Service: "web", Release: "web-2", Bundle: bundleB}}, bob)
	if err != nil || len(ch) != 1 || ch[0].Digest == d1.Digest {
		t.Fatalf("update = %+v, %v; want a new digest", ch, err)
	}
	if ok, _ := s.BundleAssigned(ctx, "eu-1", bundleA); ok {
		t.Errorf("bundle A still assigned to eu-1 after the update")
	}
	if ok, _ := s.BundleAssigned(ctx, "eu-2", bundleA); !ok {
		t.Errorf("bundle A not assigned to eu-2")
	}
	rm, err := s.SetAssignments(ctx, []store.Assignment{{Cluster: "eu-1", Service: "web"}, {Cluster: "eu-1", Service: "api"}}, bob)
	if err != nil || len(rm) != 1 || len(rm[0].Assignments) != 0 || rm[0].Digest != empty.Digest {
		t.Fatalf("remove all = %+v, %v; want the empty state", rm, err)
	}
	_, err = s.SetAssignments(ctx, []store.Assignment{{Cluster: "x", Service: "a", Release: "r", Bundle: bundleA}, {Cluster: "x", Service: "a", Release: "r", Bundle: bundleB}}, bob)
	wantErr(t, "duplicate assignment", err, store.ErrInvalid)
	_, err = s.SetAssignments(ctx, []store.Assignment{{Cluster: "x", Service: "a", Release: "r"}}, bob)
	wantErr(t, "assignment without bundle", err, store.ErrInvalid)
}

func testManyClusterAssignments(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	var as []store.Assignment
	for i := range 1000 {
		as = append(as, store.Assignment{Cluster: fmt.Sprintf("c%04d", i), Service: "web", Release: "web-1", Bundle: bundleA})
	}
	start := mustLatest(t, s)
	changed, err := s.SetAssignments(ctx, as, alice)
	if err != nil || len(changed) != 1000 {
		t.Fatalf("SetAssignments of 1000 clusters: %d changed, %v", len(changed), err)
	}
	if got := mustLatest(t, s); got != start+1 {
		t.Errorf("latest seq %d, want %d (one event per call)", got, start+1)
	}
	d, err := s.Desired(ctx, "c0999")
	if err != nil || len(d.Assignments) != 1 || d.Seq != start+1 {
		t.Errorf("Desired(c0999) = %+v, %v", d, err)
	}
}

func testBundles(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	data := []byte("{\"apiVersion\":\"v1\"}\n\x00\xff")
	if _, err := s.GetBundle(ctx, bundleA); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetBundle of a missing bundle = %v, want ErrNotFound", err)
	}
	created, err := s.PutBundle(ctx, bundleA, data, alice)
	if err != nil || !created {
		t.Fatalf("PutBundle = %v, %v; want created", created, err)
	}
	seq := mustLatest(t, s)
	created, err = s.PutBundle(ctx, bundleA, []byte("other"), alice)
	if err != nil || created || mustLatest(t, s) != seq {
		t.Fatalf("PutBundle again = %v, %v; want a no-op", created, err)
	}
	got, err := s.GetBundle(ctx, bundleA)
	if err != nil || string(got) != string(data) {
		t.Fatalf("GetBundle = %q, %v; want the first bytes stored", got, err)
	}
	if ok, err := s.HasBundle(ctx, bundleA); !ok || err != nil {
		t.Errorf("HasBundle = %v, %v", ok, err)
	}
	if ok, err := s.HasBundle(ctx, bundleB); ok || err != nil {
		t.Errorf("HasBundle(missing) = %v, %v", ok, err)
	}
}

func testAgentStatus(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	start := mustLatest(t, s)
	st := store.AgentStatus{Cluster: "eu-1", Seq: 1, Epoch: 1, AgentVersion: "v1", KubernetesVersion: "v1.33.0", Health: "Healthy",
		Summary: json.RawMessage(`{"health":"Healthy"}`), Report: json.RawMessage(`{"services":[]}`)}
	changed, err := s.RecordAgentStatus(ctx, st)
	if err != nil || !changed {
		t.Fatalf("first RecordAgentStatus = %v, %v; want changed", changed, err)
	}
	_, err = s.RecordAgentStatus(ctx, st)
	wantErr(t, "repeat of seq 1", err, store.ErrDuplicate)
	// Heartbeats with the same summary write no event.
	for seq := int64(2); seq <= 20; seq++ {
		st.Seq = seq
		if changed, err := s.RecordAgentStatus(ctx, st); err != nil || changed {
			t.Fatalf("heartbeat %d = %v, %v; want unchanged", seq, changed, err)
		}
	}
	st.Seq, st.Health, st.Summary = 21, "Degraded", json.RawMessage(`{"health":"Degraded"}`)
	if changed, err := s.RecordAgentStatus(ctx, st); err != nil || !changed {
		t.Fatalf("health change = %v, %v; want changed", changed, err)
	}
	st.Seq = 5
	_, err = s.RecordAgentStatus(ctx, st)
	wantErr(t, "an older seq", err, store.ErrDuplicate)
	evs := mustEvents(t, s, start, store.EventFilter{})
	if len(evs) != 2 || evs[0].Kind != store.KindAgentStatus || evs[1].Type != store.Updated {
		t.Fatalf("got %d events after 21 reports, want 2 (first report and the health change): %+v", len(evs), evs)
	}
	all, err := s.AgentStatuses(ctx)
	if err != nil || len(all) != 1 || all["eu-1"].Seq != 21 || all["eu-1"].Health != "Degraded" || all["eu-1"].LastHeartbeat.IsZero() {
		t.Fatalf("AgentStatuses = %+v, %v", all, err)
	}
	some, err := s.AgentStatuses(ctx, "eu-1", "none")
	if err != nil || len(some) != 1 {
		t.Fatalf("AgentStatuses(eu-1, none) = %+v, %v", some, err)
	}
}
