package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	v1 "flotilla.dev/flotilla/api/v1"
)

func TestTrafficRouterColumns(t *testing.T) {
	hap := &v1.TrafficRouter{Spec: v1.TrafficRouterSpec{HAProxy: &v1.HAProxyRouter{RuntimeAPI: "unix:///run/admin.sock", Backend: "web"}}}
	hap.Metadata.Name = "edge"
	hap.Status.Weights = []v1.TrafficWeight{{Cluster: "a", Weight: 5}, {Cluster: "b", Weight: 95}}
	gw := &v1.TrafficRouter{Spec: v1.TrafficRouterSpec{GatewayAPI: &v1.GatewayAPIRouter{Cluster: "edge-1",
		HTTPRoute: v1.NamespacedName{Namespace: "web", Name: "route"}}}}
	gw.Metadata.Name = "gw"
	hook := &v1.TrafficRouter{Spec: v1.TrafficRouterSpec{Webhook: &v1.WebhookRouter{URL: "https://lb/w", SecretRef: "k"}}}
	hook.Metadata.Name = "hook"
	var out bytes.Buffer
	if err := printObjects(&out, v1.KindTrafficRouter, []v1.Object{hap, gw, hook}, outTable, false, time.Now()); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	want := [][]string{
		{"NAME", "TYPE", "TARGET", "WEIGHTS", "AGE"},
		{"edge", "haproxy", "unix:///run/admin.sock backend web", "a=5,b=95"},
		{"gw", "gatewayAPI", "edge-1:web/route", "<none>"},
		{"hook", "webhook", "https://lb/w", "<none>"},
	}
	if len(lines) != len(want) {
		t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(want), out.String())
	}
	for i, w := range want {
		for _, cell := range w {
			if !strings.Contains(lines[i], cell) {
				t.Errorf("line %d %q lacks %q", i, lines[i], cell)
			}
		}
	}
}
