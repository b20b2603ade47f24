package cli_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/client"
	"flotilla.dev/flotilla/internal/bundle"
)

// TestRolloutCommands plans a rollout, then steers it with every control verb through the CLI:
// the rollout waits at an approval gate before its first wave (no agent is needed for that), and
// get, describe and status show what it waits for.
func TestRolloutCommands(t *testing.T) {
	s := startServer(t)
	c := newCLI(t)
	c.ok("login", "--server", s.URL, "--token", s.Token)
	objs := `apiVersion: flotilla.dev/v1alpha1
kind: Cluster
metadata: {name: a, labels: {ring: canary}}
---
apiVersion: flotilla.dev/v1alpha1
kind: Cluster
metadata: {name: b}
---
apiVersion: flotilla.dev/v1alpha1
kind: RolloutStrategy
metadata: {name: gated}
spec:
  type: rolling
  waves:
  - name: canary
    clusters: {matchLabels: {ring: canary}}
    before: [{approval: {roles: [admin]}}]
  - name: rest
    clusters: {}
---
apiVersion: flotilla.dev/v1alpha1
kind: Service
metadata: {name: web}
spec:
  source: {name: shop}
  placement: {clusterSelector: {}}
  strategy: gated
---
apiVersion: flotilla.dev/v1alpha1
kind: Release
metadata: {name: web-2}
spec:
  service: web
  commit: {sha: 0123456789abcdef0123456789abcdef01234567}
  serviceSpec: {source: {name: shop}, placement: {clusterSelector: {}}}
`
	if r := c.run(objs, "apply", "-f", "-"); r.code != 0 {
		t.Fatalf("apply: %s", r.stderr)
	}
	// The release's bundle, inline, for both clusters.
	admin, err := client.New(client.Options{Server: s.URL, Token: s.Token})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cm := map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": "web", "namespace": "web"}}
	b, err := bundle.New([]map[string]any{cm})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(cm)
	o, err := admin.Get(ctx, "releases", "web-2")
	if err != nil {
		t.Fatal(err)
	}
	rel := o.(*v1.Release)
	rel.Status = v1.ReleaseStatus{Phase: v1.ReleaseRendered, Bundles: []v1.ReleaseBundle{{Digest: b.Digest(), Clusters: []string{"a", "b"},
		Manifests: []json.RawMessage{raw}}}}
	if _, err := admin.UpdateStatus(ctx, rel); err != nil {
		t.Fatal(err)
	}

	plan := c.ok("rollout", "plan", "web", "--release", "web-2")
	mustContain(t, "rollout plan", plan, "strategy gated (rolling", "Wave 1: canary (1 clusters", "gate  before: approval by admin",
		"Wave 2: rest (1 clusters", "2 clusters in 2 waves.")
	var p v1.RolloutPlan
	if err := json.Unmarshal([]byte(c.ok("rollout", "plan", "web", "--release", "web-2", "-o", "json")), &p); err != nil || len(p.Waves) != 2 ||
		p.Waves[0].Clusters[0].Name != "a" || p.Waves[1].Clusters[0].Name != "b" {
		t.Errorf("rollout plan -o json = %+v, %v", p, err)
	}
	mustContain(t, "plan of a service without a release", c.fails("rollout", "plan", "web"), "no latest release")

	if r := c.run("apiVersion: flotilla.dev/v1alpha1\nkind: Rollout\nmetadata: {name: web-2}\nspec: {service: web, release: web-2}\n",
		"apply", "-f", "-"); r.code != 0 {
		t.Fatalf("apply rollout: %s", r.stderr)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		out := c.ok("get", "rollouts")
		if strings.Contains(out, "WaitingApproval") && strings.Contains(out, "approval by admin") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("get rollouts never showed the pending approval:\n%s", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	mustContain(t, "rollout status", c.ok("rollout", "status", "web-2"), "Rollout web-2: service web, - -> web-2",
		"Phase: WaitingApproval", "Waiting for: approval by admin (gate canary/before/0)", "Wave canary: 0/1 healthy  <- current", "Wave rest: 0/1 healthy")
	mustContain(t, "describe rollout", c.ok("describe", "rollout", "web-2"), "Progress:", "Waiting for: approval by admin")

	mustContain(t, "pause", c.ok("rollout", "pause", "web-2"), "rollout web-2 paused: now Paused")
	mustContain(t, "resume", c.ok("rollout", "resume", "web-2"), "now WaitingApproval")
	mustContain(t, "approve", c.ok("rollout", "approve", "web-2"), "rollout web-2 approved: now Progressing")
	mustContain(t, "approve twice", c.fails("rollout", "approve", "web-2"), "no approval is pending")
	mustContain(t, "abort", c.ok("rollout", "abort", "web-2"), "now Aborted")
	mustContain(t, "retry", c.ok("rollout", "retry", "web-2"), "rollout web-2 retried")
	mustContain(t, "get rollouts after retry", c.ok("get", "rollouts"), "web-2-retry2")
	mustContain(t, "unknown rollout", c.fails("rollout", "pause", "nope"), "not found")
	mustContain(t, "audit", c.ok("audit", "--kind", "RolloutAudit"), "web-2")
}
