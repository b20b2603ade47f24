package cli

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	v1 "flotilla.dev/flotilla/api/v1"
)

func TestDescribeClusterShowsAgentServicesObjectsAndOfflinePeriod(t *testing.T) {
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	cl := &v1.Cluster{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindCluster}}
	cl.Metadata.Name = "eu-1"
	objs := []v1.ObjectReport{{Kind: "ConfigMap", Namespace: "web", Name: "drifted", Health: v1.HealthHealthy, Drifted: true}}
	for i := range 60 {
		objs = append(objs, v1.ObjectReport{Kind: "ConfigMap", Namespace: "web", Name: fmt.Sprintf("cm-%02d", i), Health: v1.HealthHealthy})
	}
	objs = append(objs, v1.ObjectReport{Group: "apps", Kind: "Deployment", Namespace: "web", Name: "api", Health: v1.HealthProgressing, Message: "1 of 2 updated"})
	rep := &v1.AgentReport{Cluster: "eu-1", Epoch: 3, LastHeartbeat: now.Add(-5 * time.Second), Report: v1.AgentStatusReport{
		Seq: 9, AgentVersion: "v0.3.0", KubernetesVersion: "v1.36.1", Health: v1.HealthProgressing,
		DesiredDigest: "sha256:" + strings.Repeat("a", 64), AppliedDigest: "sha256:" + strings.Repeat("a", 64),
		Services: []v1.ServiceReport{{Service: "web", Release: "web-r2", Bundle: "sha256:" + strings.Repeat("b", 64), Health: v1.HealthProgressing,
			Objects: objs, Errors: []v1.AgentError{{Object: "ConfigMap/web/x", Message: "forbidden"}}}},
		Offline: &v1.OfflinePeriod{Since: now.Add(-10 * time.Minute), Until: now.Add(-7 * time.Minute), Corrections: 2, Restarts: 1,
			Events: []v1.AgentEvent{{Time: now.Add(-8 * time.Minute), Reason: v1.EventDriftCorrected, Service: "web", Object: "ConfigMap/web/drifted"}}},
	}}
	var b bytes.Buffer
	describeCluster(&b, cl, rep, now)
	out := b.String()
	for _, want := range []string{
		"Connected (last heartbeat 5s ago",
		"Version:        v0.3.0",
		"Kubernetes:     v1.36.1",
		"aaaaaaaaaaaa, applied aaaaaaaaaaaa (in sync)",
		"from 2026-11-26T09:50:00Z until 2026-11-26T09:53:00Z, 3m: 2 corrections, 0 applies, 0 errors, 1 restarts",
		"DriftCorrected web ConfigMap/web/drifted",
		"web      web-r2   bbbbbbbbbbbb  Progressing  62       1        1",
		"web      ConfigMap/web/drifted    Healthy      drifted",
		"Deployment.apps/web/api",
		"... and 12 more, healthy and without drift",
		"web ConfigMap/web/x: forbidden",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("describe cluster lacks %q; it printed:\n%s", want, out)
		}
	}
	// Drifted and unhealthy objects come first.
	if i, j := strings.Index(out, "Deployment.apps/web/api"), strings.Index(out, "cm-00"); i > j {
		t.Errorf("the progressing deployment is listed after healthy objects:\n%s", out)
	}

	b.Reset()
	rep.LastHeartbeat = now.Add(-5 * time.Minute)
	describeCluster(&b, cl, rep, now)
	if !strings.Contains(b.String(), "Disconnected (last heartbeat 5m ago") {
		t.Errorf("an agent silent for 5m is not shown disconnected:\n%s", b.String())
	}
	b.Reset()
	describeCluster(&b, cl, nil, now)
	if !strings.Contains(b.String(), "no report yet") {
		t.Errorf("a cluster without a report:\n%s", b.String())
	}
}
