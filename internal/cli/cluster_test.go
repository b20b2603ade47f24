package cli_test

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/client"
)

var bootstrapToken = regexp.MustCompile(`flb_[0-9A-Za-z]{43}`)

// TestClusterRegisterInstallRevoke registers a cluster through the binary, connects an agent with
// the printed token through the client, sees it in `get clusters`, and revokes it.
func TestClusterRegisterInstallRevoke(t *testing.T) {
	s := startServer(t)
	c := newCLI(t)
	c.ok("login", "--server", s.URL, "--token", s.Token)

	out := c.ok("cluster", "register", "eu-1", "-l", "env=prod", "-l", "region=eu,ring=1")
	tok := bootstrapToken.FindString(out)
	if tok == "" {
		t.Fatalf("register printed no bootstrap token:\n%s", out)
	}
	mustContain(t, "register output", out, "flotilla agent --server "+s.URL+" --token "+tok+" --kubeconfig",
		"flotilla cluster install-manifest eu-1 --token "+tok)
	mustContain(t, "get cluster labels", c.ok("get", "cluster", "eu-1", "-o", "wide"), "env=prod,region=eu,ring=1", "Pending")
	if stderr := c.fails("cluster", "register", "bad_name!"); !strings.Contains(stderr, "name") {
		t.Errorf("register of a bad name: %s", stderr)
	}

	manifest := c.ok("cluster", "install-manifest", "eu-1", "--token", tok)
	var kinds []string
	for _, part := range strings.Split(manifest, "\n---\n") {
		var obj struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal([]byte(part), &obj); err != nil {
			t.Fatalf("install manifest is not YAML: %v\n%s", err, part)
		}
		if obj.Kind != "" {
			kinds = append(kinds, obj.Kind+"/"+obj.Metadata.Name)
		}
	}
	for _, want := range []string{"Namespace/flotilla-system", "ServiceAccount/flotilla-agent", "Secret/flotilla-agent-bootstrap",
		"ClusterRole/flotilla-agent-read", "ClusterRole/flotilla-agent-apply", "Deployment/flotilla-agent"} {
		mustContain(t, "install manifest kinds", strings.Join(kinds, " "), want)
	}
	mustContain(t, "install manifest", manifest, "--server\", \""+s.URL, "token: "+tok)

	ctx := context.Background()
	anon, err := client.New(client.Options{Server: s.URL})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := anon.Register(ctx, v1.RegisterRequest{Token: tok})
	if err != nil {
		t.Fatalf("register with the printed token: %v", err)
	}
	agent, err := client.New(client.Options{Server: s.URL, Token: reg.Credential})
	if err != nil {
		t.Fatal(err)
	}
	l, err := agent.AcquireLease(ctx, "pod-1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := agent.PostStatus(ctx, l.Epoch, v1.AgentStatusReport{Seq: 1, AgentVersion: "v9.9.9", KubernetesVersion: "v1.33.2",
		Health: v1.HealthHealthy}); err != nil {
		t.Fatal(err)
	}
	table := c.ok("get", "clusters")
	if !regexp.MustCompile(`(?m)^eu-1\s+Ready\s+Healthy\s+v9\.9\.9\s+v1\.33\.2\s+\d+s\s+\d+s$`).MatchString(table) {
		t.Errorf("get clusters after a report:\n%s", table)
	}

	mustContain(t, "revoke", c.ok("cluster", "revoke", "eu-1"), "revoked")
	if _, err := agent.AcquireLease(ctx, "pod-1"); !client.IsUnauthorized(err) {
		t.Errorf("agent call after revoke = %v, want 401", err)
	}
	if stderr := c.fails("cluster", "revoke", "eu-1"); !strings.Contains(stderr, "no agent credential") {
		t.Errorf("second revoke: %s", stderr)
	}
}
