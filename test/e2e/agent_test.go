package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/internal/testfleet"
)

// Given a server and one agent per cluster of the fleet, when a release is assigned to all three
// clusters, then every cluster runs it and its agent reports it applied and healthy; when a new
// release changes an object and drops another, every cluster follows, the dropped object is
// pruned, and an object made by hand next to it is left alone.
func TestAgentsConvergeTheFleetToItsAssignments(t *testing.T) {
	f := testfleet.Get(t)
	ns := f.Namespace(t)
	s := startServer(t)
	ctx := context.Background()
	var names []string
	for _, c := range f.Clusters {
		s.registerAndRunAgent(t, c.Name, c.Kubeconfig, "env=e2e")
		names = append(names, c.Name)
	}

	r1 := []map[string]any{configMap(ns, "web-config", "r1"), deployment(ns, "web", 2)}
	digest1 := s.release(t, "web-r1", r1, names, false)
	if _, err := s.Admin.Assign(ctx, v1.AssignRequest{Service: "web", Release: "web-r1", Clusters: names}); err != nil {
		t.Fatalf("assign web-r1: %v", err)
	}
	for _, c := range f.Clusters {
		eventually(t, 90*time.Second, c.Name+" runs web-r1", func(ctx context.Context) error {
			if err := configMapSays(ctx, c, ns, "r1"); err != nil {
				return err
			}
			d, err := c.Client.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
			if err != nil {
				return err
			}
			if d.Status.AvailableReplicas != 2 {
				return fmt.Errorf("deployment web: %d of 2 replicas available", d.Status.AvailableReplicas)
			}
			return nil
		})
		eventually(t, 60*time.Second, c.Name+" reports web-r1 applied and healthy", func(ctx context.Context) error {
			return reportSays(ctx, s, c.Name, "web-r1", digest1)
		})
	}

	// A ConfigMap made by hand, labelled like Flotilla's objects, must survive the prune below.
	for _, c := range f.Clusters {
		byHand := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "by-hand", Namespace: ns,
			Labels: map[string]string{"app.kubernetes.io/managed-by": "flotilla"}}}
		if _, err := c.Client.CoreV1().ConfigMaps(ns).Create(ctx, byHand, metav1.CreateOptions{}); err != nil {
			t.Fatalf("%s: create by-hand configmap: %v", c.Name, err)
		}
	}

	r2 := []map[string]any{configMap(ns, "web-config", "r2")}
	digest2 := s.release(t, "web-r2", r2, names, true)
	if _, err := s.Admin.Assign(ctx, v1.AssignRequest{Service: "web", Release: "web-r2", Clusters: names}); err != nil {
		t.Fatalf("assign web-r2: %v", err)
	}
	for _, c := range f.Clusters {
		eventually(t, 90*time.Second, c.Name+" runs web-r2 and pruned the deployment", func(ctx context.Context) error {
			if err := configMapSays(ctx, c, ns, "r2"); err != nil {
				return err
			}
			_, err := c.Client.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
			if !apierrors.IsNotFound(err) {
				return fmt.Errorf("deployment web: want it pruned, got err=%v", err)
			}
			return nil
		})
		if _, err := c.Client.CoreV1().ConfigMaps(ns).Get(ctx, "by-hand", metav1.GetOptions{}); err != nil {
			t.Errorf("%s: the configmap made by hand is gone: %v", c.Name, err)
		}
		eventually(t, 60*time.Second, c.Name+" reports web-r2", func(ctx context.Context) error {
			return reportSays(ctx, s, c.Name, "web-r2", digest2)
		})
	}

	// web-r2 has self-heal on: a hand edit of its ConfigMap is put back by the agent.
	c := f.Clusters[0]
	cm, err := c.Client.CoreV1().ConfigMaps(ns).Get(ctx, "web-config", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm.Data["release"] = "edited-by-hand"
	if _, err := c.Client.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("edit configmap by hand: %v", err)
	}
	eventually(t, 30*time.Second, c.Name+" self-heals the edited configmap", func(ctx context.Context) error {
		return configMapSays(ctx, c, ns, "r2")
	})
}

func configMap(ns, name, release string) map[string]any {
	return map[string]any{"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": name, "namespace": ns},
		"data":     map[string]any{"release": release}}
}

func deployment(ns, name string, replicas int) map[string]any {
	labels := map[string]any{"app": name}
	return map[string]any{"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": name, "namespace": ns},
		"spec": map[string]any{"replicas": replicas, "selector": map[string]any{"matchLabels": labels},
			"template": map[string]any{"metadata": map[string]any{"labels": labels},
				"spec": map[string]any{"containers": []any{map[string]any{"name": name, "image": "registry.example/web:1"}}}}}}
}

// release creates a Release of service web, with self-heal as given, whose one bundle, carried inline, serves clusters.
func (s *server) release(t *testing.T, name string, objs []map[string]any, clusters []string, selfHeal bool) string {
	t.Helper()
	return s.releaseOf(t, "web", name, objs, clusters, selfHeal)
}

func configMapSays(ctx context.Context, c *testfleet.Cluster, ns, release string) error {
	cm, err := c.Client.CoreV1().ConfigMaps(ns).Get(ctx, "web-config", metav1.GetOptions{})
	if err != nil {
		return err
	}
	if cm.Data["release"] != release {
		return fmt.Errorf("configmap web-config says release %q, want %q", cm.Data["release"], release)
	}
	return nil
}

// reportSays checks the agent's last report: the release and bundle applied and healthy.
func reportSays(ctx context.Context, s *server, cluster, release, digest string) error {
	rep, err := s.Admin.AgentReport(ctx, cluster)
	if err != nil {
		return err
	}
	r := rep.Report
	if r.AppliedDigest == "" || r.AppliedDigest != r.DesiredDigest {
		return fmt.Errorf("applied digest %q, desired %q", r.AppliedDigest, r.DesiredDigest)
	}
	for _, sr := range r.Services {
		if sr.Service != "web" {
			continue
		}
		if sr.Release != release || sr.Bundle != digest || sr.Health != v1.HealthHealthy || len(sr.Errors) > 0 {
			return fmt.Errorf("service web reported as release %q bundle %q health %s errors %v; want %s %s Healthy",
				sr.Release, sr.Bundle, sr.Health, sr.Errors, release, digest)
		}
		return nil
	}
	return fmt.Errorf("no report of service web in %+v", r.Services)
}

// Given a cluster whose agent runs, when a second agent starts with the same credential, then
// the server refuses it the lease and it says so in its log, while the first keeps reporting.
func TestSecondAgentForAClusterIsRefused(t *testing.T) {
	f := testfleet.Get(t)
	c := f.Clusters[0]
	s := startServer(t)
	state := t.TempDir()
	s.runAgent(t, c.Name, s.register(t, c.Name), c.Kubeconfig, state)
	ctx := context.Background()
	eventually(t, 30*time.Second, "first agent reports", func(ctx context.Context) error {
		_, err := s.Admin.AgentReport(ctx, c.Name)
		return err
	})
	cred, err := os.ReadFile(filepath.Join(state, "credential"))
	if err != nil {
		t.Fatalf("the first agent kept no credential: %v", err)
	}
	second := s.runAgent(t, c.Name, strings.TrimSpace(string(cred)), c.Kubeconfig, t.TempDir())
	eventually(t, 30*time.Second, "second agent says it is refused", func(context.Context) error {
		if !strings.Contains(second.Output(), "another agent holds this cluster's lease") {
			return fmt.Errorf("its log so far:\n%s", second.Output())
		}
		return nil
	})
	before, err := s.Admin.AgentReport(ctx, c.Name)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "first agent keeps reporting", func(ctx context.Context) error {
		now, err := s.Admin.AgentReport(ctx, c.Name)
		if err != nil {
			return err
		}
		if now.Epoch != before.Epoch || !now.LastHeartbeat.After(before.LastHeartbeat) {
			return fmt.Errorf("epoch %d -> %d, heartbeat %v -> %v", before.Epoch, now.Epoch, before.LastHeartbeat, now.LastHeartbeat)
		}
		return nil
	})
}

// Given a running agent, when its cluster's credential is revoked with the CLI, then the agent's
// calls are refused at once and its cluster stops getting heartbeats.
func TestRevokedAgentIsCutOffAtOnce(t *testing.T) {
	f := testfleet.Get(t)
	c := f.Clusters[1]
	s := startServer(t)
	agent := s.registerAndRunAgent(t, c.Name, c.Kubeconfig)
	eventually(t, 30*time.Second, "agent reports", func(ctx context.Context) error {
		_, err := s.Admin.AgentReport(ctx, c.Name)
		return err
	})
	s.cli(t, "cluster", "revoke", c.Name)
	revoked := time.Now()
	eventually(t, 30*time.Second, "agent is refused", func(context.Context) error {
		if !strings.Contains(agent.Output(), "credential is not known or was revoked") {
			return fmt.Errorf("agent log shows no refusal yet:\n%s", agent.Output())
		}
		return nil
	})
	refused, err := s.Admin.AgentReport(context.Background(), c.Name)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second) // three observe intervals
	rep, err := s.Admin.AgentReport(context.Background(), c.Name)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.LastHeartbeat.Equal(refused.LastHeartbeat) {
		t.Errorf("heartbeat at %v, after the agent was refused (last heartbeat then %v)", rep.LastHeartbeat, refused.LastHeartbeat)
	}
	// A report that was already authenticated when the revocation committed may still land just
	// after it; none may come later.
	if rep.LastHeartbeat.After(revoked.Add(time.Second)) {
		t.Errorf("heartbeat at %v, more than a second after the revocation at %v", rep.LastHeartbeat, revoked)
	}
}
