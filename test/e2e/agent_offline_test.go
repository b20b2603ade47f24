package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/internal/agent/apply"
	"flotilla.dev/flotilla/internal/agent/state"
	"flotilla.dev/flotilla/internal/bundle"
	"flotilla.dev/flotilla/internal/testfleet"
	"flotilla.dev/flotilla/internal/testproc"
)

// Given an agent that applied a self-healing release, when the server stops and an applied object
// is edited by hand, then the agent puts it back; when the agent is restarted while the server is
// still down, it keeps doing so from its saved state; and when the server starts again, the
// agent's next report says what it did meanwhile.
func TestAgentEnforcesOfflineAcrossRestartsAndReportsWhenTheServerIsBack(t *testing.T) {
	f := testfleet.Get(t)
	c := f.Clusters[2]
	ns := f.Namespace(t)
	ctx := context.Background()
	dataDir := t.TempDir()
	s := startServerIn(t, dataDir, "127.0.0.1:0")
	token := s.register(t, c.Name)
	stateDir := t.TempDir()
	agent := runAgentWith(t, s, c, token, "--state-dir", stateDir)

	digest := s.releaseOf(t, "web", "web-r1", []map[string]any{configMap(ns, "web-config", "r1")}, []string{c.Name}, true)
	if _, err := s.Admin.Assign(ctx, v1.AssignRequest{Service: "web", Release: "web-r1", Clusters: []string{c.Name}}); err != nil {
		t.Fatalf("assign web-r1: %v", err)
	}
	eventually(t, 60*time.Second, "web-r1 applied and reported", func(ctx context.Context) error {
		if err := configMapSays(ctx, c, ns, "r1"); err != nil {
			return err
		}
		return reportSays(ctx, s, c.Name, "web-r1", digest)
	})

	s.Proc.Stop(t)
	editConfigMap(t, c, ns, "edited-offline")
	eventually(t, 30*time.Second, "the agent corrects the edit with the server down", func(ctx context.Context) error {
		return configMapSays(ctx, c, ns, "r1")
	})
	// The correction reaches the cluster a moment before the agent saves its record of it: kill
	// the agent only once the record is saved, as that is what a restart carries over.
	eventually(t, 30*time.Second, "the agent saves the offline correction", func(ctx context.Context) error {
		snap, err := state.NewDir(stateDir).Load(ctx)
		if err != nil {
			return err
		}
		if snap.Offline == nil || snap.Offline.Corrections < 1 {
			return fmt.Errorf("saved offline period %+v", snap.Offline)
		}
		return nil
	})

	agent.Kill(t)
	restarted := runAgentWith(t, s, c, token, "--state-dir", stateDir)
	eventually(t, 30*time.Second, "the restarted agent loads its saved state", func(context.Context) error {
		if !strings.Contains(restarted.Output(), "loaded the saved desired state") {
			return fmt.Errorf("its log so far:\n%s", restarted.Output())
		}
		return nil
	})
	editConfigMap(t, c, ns, "edited-after-restart")
	eventually(t, 30*time.Second, "the restarted agent corrects the edit with the server still down", func(ctx context.Context) error {
		return configMapSays(ctx, c, ns, "r1")
	})

	s = startServerIn(t, dataDir, strings.TrimPrefix(s.URL, "http://"))
	eventually(t, 120*time.Second, "the agent reports what it did offline", func(ctx context.Context) error {
		rep, err := s.Admin.AgentReport(ctx, c.Name)
		if err != nil {
			return err
		}
		p := rep.Report.Offline
		if p == nil || p.Until.IsZero() {
			return fmt.Errorf("offline period %+v", p)
		}
		corrected := 0
		for _, ev := range p.Events {
			if ev.Reason == v1.EventDriftCorrected && ev.Service == "web" && ev.Object == "ConfigMap/"+ns+"/web-config" {
				corrected++
			}
		}
		if p.Corrections < 2 || corrected < 2 || p.Restarts < 1 {
			return fmt.Errorf("offline period: %d corrections (%d events of web-config), %d restarts; want 2 or more, and a restart: %+v",
				p.Corrections, corrected, p.Restarts, p)
		}
		return reportSays(ctx, s, c.Name, "web-r1", digest)
	})
	out := s.cli(t, "describe", "cluster", c.Name)
	for _, want := range []string{"Connectivity:   Connected", "Last offline:", "DriftCorrected web ConfigMap/" + ns + "/web-config",
		"web-r1", "ConfigMap/" + ns + "/web-config"} {
		if !strings.Contains(out, want) {
			t.Errorf("describe cluster lacks %q:\n%s", want, out)
		}
	}
	if out := s.cli(t, "get", "clusters"); !regexp.MustCompile(c.Name + `\s+Ready\s+Healthy`).MatchString(out) {
		t.Errorf("get clusters does not show %s Ready and Healthy:\n%s", c.Name, out)
	}
}

// Given an agent applying a release of 400 ConfigMaps with its state in Secrets of the cluster,
// when it is killed (SIGKILL) in the middle of the apply and started again (as the agent-only
// binary, flotilla-agent), then it converges:
// every object applied, the inventory holds each object once, and its reports carry a seq above
// the ones before the kill, one entry per service and object.
func TestAgentKilledMidApplyConvergesAfterRestart(t *testing.T) {
	f := testfleet.Get(t)
	c := f.Clusters[0]
	ns := f.Namespace(t)
	ctx := context.Background()
	s := startServer(t)
	token := s.register(t, c.Name)
	agent := runAgentWith(t, s, c, token, "--state-namespace", ns)
	var before int64
	eventually(t, 30*time.Second, "the agent reports", func(ctx context.Context) error {
		rep, err := s.Admin.AgentReport(ctx, c.Name)
		if err == nil {
			before = rep.Report.Seq
		}
		return err
	})

	const n = 400
	objs := make([]map[string]any, n)
	for i := range objs {
		objs[i] = configMap(ns, fmt.Sprintf("big-%03d", i), "r1")
		objs[i]["data"] = map[string]any{"release": "r1", "payload": strings.Repeat(fmt.Sprintf("%03d", i), 300)}
	}
	digest := s.releaseOf(t, "big", "big-r1", objs, []string{c.Name}, false)
	// Kill it as soon as the first object appears, seen by a watch (the apply takes about a second;
	// listing 400 ConfigMaps in a loop could take that long on a loaded machine).
	w, err := c.Client.CoreV1().ConfigMaps(ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if _, err := s.Admin.Assign(ctx, v1.AssignRequest{Service: "big", Release: "big-r1", Clusters: []string{c.Name}}); err != nil {
		t.Fatalf("assign big-r1: %v", err)
	}
	deadline := time.After(60 * time.Second)
	for first := false; !first; {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				t.Fatalf("the ConfigMap watch ended before the agent applied anything")
			}
			if m, isMeta := ev.Object.(metav1.Object); isMeta && strings.HasPrefix(m.GetName(), "big-") {
				first = true
			}
		case <-deadline:
			t.Fatalf("the agent applied nothing within 60s; its log:\n%s", agent.Output())
		}
	}
	agent.Kill(t)
	w.Stop()
	atKill := countConfigMaps(ctx, t, c, ns, "big-")
	if atKill == n {
		t.Fatalf("the agent had applied all %d ConfigMaps before it could be killed: the test did not interrupt an apply", n)
	}
	t.Logf("killed the agent with %d of %d ConfigMaps applied", atKill, n)

	// The restart runs the agent-only binary on the state the first one left: same flags, same state.
	restarted := runAgentWith(t, s, c, token, "--state-namespace", ns, "--binary", agentBinary(t))
	// It gives up its predecessor's lease (found in the saved state) rather than wait the 45 s
	// for it to expire.
	// (The lease take-over is checked in its log below; the bound here is for a loaded machine.)
	eventually(t, 2*time.Minute, "the restarted agent converges and reports", func(ctx context.Context) error {
		if got := countConfigMaps(ctx, t, c, ns, "big-"); got != n {
			return fmt.Errorf("%d of %d ConfigMaps", got, n)
		}
		rep, err := s.Admin.AgentReport(ctx, c.Name)
		if err != nil {
			return err
		}
		r := rep.Report
		if r.Seq <= before {
			return fmt.Errorf("report seq %d, not above %d from before the kill", r.Seq, before)
		}
		if r.AppliedDigest == "" || r.AppliedDigest != r.DesiredDigest {
			return fmt.Errorf("applied digest %q, desired %q", r.AppliedDigest, r.DesiredDigest)
		}
		if len(r.Services) != 1 || r.Services[0].Service != "big" || r.Services[0].Bundle != digest || len(r.Services[0].Errors) > 0 {
			return fmt.Errorf("services %+v", summary(r.Services))
		}
		seen := map[string]bool{}
		for _, o := range r.Services[0].Objects {
			if seen[o.Name] {
				return fmt.Errorf("object %s reported twice", o.Name)
			}
			seen[o.Name] = true
		}
		if len(seen) != n {
			return fmt.Errorf("%d objects reported, want %d", len(seen), n)
		}
		return nil
	})
	eng, err := apply.New(c.Config, apply.Options{})
	if err != nil {
		t.Fatal(err)
	}
	inv, err := eng.Inventory(ctx, "big")
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]bool{}
	for _, e := range inv.Entries {
		if keys[e.Key()] || e.Hash == "" {
			t.Errorf("inventory entry %s duplicated or without hash", e)
		}
		keys[e.Key()] = true
	}
	if len(keys) != n || inv.Release != "big-r1" {
		t.Errorf("inventory of big: %d entries, release %q; want %d, big-r1", len(keys), inv.Release, n)
	}
	// The state the restarted agent enforces offline is in the cluster, not on disk.
	sec, err := c.Client.CoreV1().Secrets(ns).Get(ctx, "flotilla-agent-state", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("no state Secret in %s: %v", ns, err)
	}
	if len(sec.Data["state.json.gz"]) == 0 {
		t.Errorf("state Secret holds %v", slices.Collect(maps.Keys(sec.Data)))
	}
	if !strings.Contains(restarted.Output(), "released the lease of the agent this one replaces") {
		t.Errorf("the restarted agent did not take its predecessor's lease over; its log:\n%s", restarted.Output())
	}
}

func summary(srs []v1.ServiceReport) string {
	var b strings.Builder
	for _, sr := range srs {
		fmt.Fprintf(&b, "%s %s %s health %s, %d objects, errors %v; ", sr.Service, sr.Release, sr.Bundle, sr.Health, len(sr.Objects), sr.Errors)
	}
	return b.String()
}

func countConfigMaps(ctx context.Context, t *testing.T, c *testfleet.Cluster, ns, prefix string) int {
	t.Helper()
	l, err := c.Client.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return -1
	}
	n := 0
	for _, cm := range l.Items {
		if strings.HasPrefix(cm.Name, prefix) {
			n++
		}
	}
	return n
}

func editConfigMap(t *testing.T, c *testfleet.Cluster, ns, value string) {
	t.Helper()
	ctx := context.Background()
	cm, err := c.Client.CoreV1().ConfigMaps(ns).Get(ctx, "web-config", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm.Data["release"] = value
	if _, err := c.Client.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("edit configmap by hand: %v", err)
	}
}

// startServerIn starts `flotilla server` on the SQLite data in dir, listening on listen, so that a
// test can stop it and start it again on the same data and address.
func startServerIn(t *testing.T, dir, listen string, extraArgs ...string) *server {
	t.Helper()
	args := append([]string{"--listen", listen, "--data-dir", dir, "--admin-token-file", filepath.Join(dir, "admin.token")}, extraArgs...)
	return &server{testproc.StartServer(t, flotillaBinary(t), args...)}
}

var agentSeq int

// agentBinary builds cmd/flotilla-agent, the agent-only binary, once per test binary.
func agentBinary(t *testing.T) string {
	t.Helper()
	return testproc.Build(t, "flotilla.dev/flotilla/cmd/flotilla-agent")
}

// runAgentWith runs the agent of cluster c with a holder of its own and the given state flags;
// "--binary PATH" among them runs another binary (taking the same arguments) than flotilla.
func runAgentWith(t *testing.T, s *server, c *testfleet.Cluster, token string, flags ...string) *process {
	t.Helper()
	agentSeq++
	bin := ""
	if i := slices.Index(flags, "--binary"); i >= 0 {
		bin = flags[i+1]
		flags = slices.Delete(slices.Clone(flags), i, i+2)
	}
	args := append([]string{"agent", "--server", s.URL, "--token", token, "--kubeconfig", c.Kubeconfig,
		"--observe-interval", "1s", "--holder", fmt.Sprintf("e2e-%s-%d-%d", c.Name, time.Now().UnixNano(), agentSeq)}, flags...)
	if bin == "" {
		return start(t, "agent "+c.Name, args...)
	}
	return testproc.Start(t, bin, filepath.Base(bin)+" "+c.Name, args...)
}

// releaseOf creates a Release of service, with self-heal as given, whose one bundle, carried
// inline, serves clusters; it returns the bundle's digest.
func (s *server) releaseOf(t *testing.T, service, name string, objs []map[string]any, clusters []string, selfHeal bool) string {
	t.Helper()
	ctx := context.Background()
	b, err := bundle.New(objs)
	if err != nil {
		t.Fatalf("bundle for %s: %v", name, err)
	}
	var manifests []json.RawMessage
	for _, o := range objs {
		raw, err := json.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		manifests = append(manifests, raw)
	}
	rel := &v1.Release{
		TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindRelease},
		Metadata: v1.ObjectMeta{Name: name},
		Spec: v1.ReleaseSpec{Service: service, Commit: v1.Commit{SHA: "0123456789abcdef0123456789abcdef01234567"},
			ServiceSpec: v1.ServiceSpec{Source: v1.ServiceSource{Name: "shop", Path: "deploy/" + service},
				Placement: v1.Placement{ClusterSelector: &v1.LabelSelector{}},
				Sync:      v1.SyncPolicy{SelfHeal: &selfHeal}}},
	}
	created, err := s.Admin.Create(ctx, rel)
	if err != nil {
		t.Fatalf("create release %s: %v", name, err)
	}
	got := created.(*v1.Release)
	got.Status = v1.ReleaseStatus{Phase: v1.ReleaseRendered,
		Bundles: []v1.ReleaseBundle{{Digest: b.Digest(), Clusters: clusters, Manifests: manifests}}}
	if _, err := s.Admin.UpdateStatus(ctx, got); err != nil {
		t.Fatalf("release %s status: %v", name, err)
	}
	return b.Digest()
}
