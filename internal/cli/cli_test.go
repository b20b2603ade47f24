package cli_test

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"flotilla.dev/flotilla/internal/store/postgres/pgtest"
)

func TestServerPrintsAdminTokenOnceAndStopsCleanly(t *testing.T) {
	s := startServer(t)
	ready(t, s.URL)
	if n := strings.Count(s.log.String(), s.Token); n != 1 {
		t.Errorf("the admin token appears %d times in the server's stderr, want once:\n%s", n, s.log)
	}
	mustContain(t, "server stderr", s.log.String(), "created the first admin token")
	s.stop(t)
	mustContain(t, "server stderr", s.log.String(), "flotilla server stopped")

	// A restart on the same data keeps the tokens and creates no new one.
	again := startServerIn(t, s.Dir)
	if strings.Contains(again.log.String(), "created the first admin token") || !strings.Contains(again.log.String(), "already has API tokens") {
		t.Errorf("the restarted server's stderr:\n%s", again.log)
	}
	c := newCLI(t)
	mustContain(t, "whoami after restart", c.ok("--server", again.URL, "--token", s.Token, "whoami"), "token:admin")
}

func TestLoginWritesContextAndGlobalFlagsOverride(t *testing.T) {
	s := startServer(t)
	c := newCLI(t)
	out := c.ok("login", "--server", s.URL, "--token", s.Token, "--context", "local")
	mustContain(t, "login output", out, "token:admin", `Context "local"`)
	fi, err := os.Stat(c.configPath())
	if err != nil {
		t.Fatalf("config file: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("config file mode %v, want 0600", fi.Mode().Perm())
	}
	data, _ := os.ReadFile(c.configPath())
	mustContain(t, "config file", string(data), "currentContext: local", s.URL, s.Token)

	mustContain(t, "whoami", c.ok("whoami"), "token:admin (roles: admin)")

	// A bad token is refused at login, and nothing is saved for it.
	errOut := c.fails("login", "--server", s.URL, "--token", "flt_nope", "--context", "broken")
	mustContain(t, "bad login", errOut, "malformed")
	data, _ = os.ReadFile(c.configPath())
	if strings.Contains(string(data), "broken") {
		t.Errorf("a failed login was saved:\n%s", data)
	}

	// A context pointing at a dead server; --server and --token override it.
	c.ok("login", "--server", s.URL, "--token", s.Token, "--context", "other")
	data, _ = os.ReadFile(c.configPath())
	text := strings.Replace(string(data), s.URL, "http://127.0.0.1:1", 1) // the first context, "local"
	if err := os.WriteFile(c.configPath(), []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	c.fails("--context", "local", "get", "clusters")
	c.ok("--context", "local", "--server", s.URL, "get", "clusters")
	c.ok("--context", "other", "get", "clusters")
	errOut = c.fails("--context", "nowhere", "get", "clusters")
	mustContain(t, "unknown context", errOut, `context "nowhere"`)
	// The environment overrides the file, and a flag the environment.
	c.env = append(c.env, "FLOTILLA_TOKEN=flt_"+strings.Repeat("Q", 43))
	mustContain(t, "get with a bad env token", c.fails("--context", "other", "get", "clusters"), "not known")
	c.ok("--context", "other", "--token", s.Token, "get", "clusters")
}

func TestApplyGetDescribeDelete(t *testing.T) {
	s := startServer(t)
	c := newCLI(t)
	c.ok("login", "--server", s.URL, "--token", s.Token)

	out := c.ok("apply", "-f", "testdata/fleet")
	for _, want := range []string{"source/shop created", "service/web created", "rolloutstrategy/web-rolling created",
		"cluster/prod-eu-1 created", "cluster/prod-us-1 created", "cluster/dev-1 created"} {
		mustContain(t, "apply output", out, want)
	}
	out = c.ok("apply", "-f", "testdata/fleet/clusters.yaml")
	mustContain(t, "second apply", out, "cluster/prod-eu-1 unchanged")

	table := c.ok("get", "clusters")
	lines := strings.Split(strings.TrimSpace(table), "\n")
	if len(lines) != 4 || !regexp.MustCompile(`^NAME\s+PHASE\s+HEALTH\s+AGENT\s+KUBERNETES\s+LAST SEEN\s+AGE$`).MatchString(lines[0]) {
		t.Errorf("get clusters table:\n%s", table)
	}
	if !regexp.MustCompile(`(?m)^prod-eu-1\s+Pending\s+<none>\s+<none>\s+<none>\s+<none>\s+\d+s$`).MatchString(table) {
		t.Errorf("get clusters: no row for prod-eu-1 with an age:\n%s", table)
	}
	prod := c.ok("get", "cl", "-l", "env=prod", "-o", "wide")
	mustContain(t, "get -l env=prod -o wide", prod, "LABELS", "env=prod,region=eu,ring=1", "prod-us-1")
	if strings.Contains(prod, "dev-1") {
		t.Errorf("selector env=prod listed dev-1:\n%s", prod)
	}
	mustContain(t, "get services", c.ok("get", "svc"), "SOURCE", "web", "shop", "web-rolling")

	var obj map[string]any
	if err := yaml.Unmarshal([]byte(c.ok("get", "cluster", "prod-eu-1", "-o", "yaml")), &obj); err != nil {
		t.Fatalf("-o yaml: %v", err)
	}
	if obj["kind"] != "Cluster" || obj["metadata"].(map[string]any)["resourceVersion"] == "" {
		t.Errorf("-o yaml object = %v", obj)
	}
	var list map[string]any
	if err := json.Unmarshal([]byte(c.ok("get", "clusters", "-o", "json")), &list); err != nil {
		t.Fatalf("-o json: %v", err)
	}
	if list["kind"] != "ClusterList" || len(list["items"].([]any)) != 3 {
		t.Errorf("-o json list = %v", list)
	}

	desc := c.ok("describe", "service", "web")
	mustContain(t, "describe", desc, "Name:", "web", "Labels:", "team=storefront", "Spec:", "placement:", "Events:", "Created", "token:admin")

	mustContain(t, "delete", c.ok("delete", "cluster", "dev-1"), "cluster/dev-1 deleted")
	mustContain(t, "get deleted", c.fails("get", "cluster", "dev-1"), "not found")
	mustContain(t, "delete again", c.fails("delete", "cluster", "dev-1"), "not found")
	mustContain(t, "unknown kind", c.fails("get", "spaceships"), `unknown kind "spaceships"`, "cluster")
	mustContain(t, "bad output", c.fails("get", "clusters", "-o", "xml"), "table, wide, yaml or json")

	// apply from standard input.
	r := c.run("apiVersion: flotilla.dev/v1alpha1\nkind: Cluster\nmetadata: {name: from-stdin}\n", "apply", "-f", "-")
	if r.code != 0 || !strings.Contains(r.stdout, "cluster/from-stdin created") {
		t.Errorf("apply -f -: exit %d, %s %s", r.code, r.stdout, r.stderr)
	}
}

func TestApplyIsAllOrNothing(t *testing.T) {
	s := startServer(t)
	c := newCLI(t)
	c.ok("login", "--server", s.URL, "--token", s.Token)

	errOut := c.fails("apply", "-f", "testdata/bad/ten.yaml")
	mustContain(t, "apply of ten with one bad name", errOut, "testdata/bad/ten.yaml: document 7", "metadata.name", "nothing was written")
	errOut = c.fails("apply", "-f", "testdata/bad/malformed.yaml")
	mustContain(t, "apply of malformed YAML", errOut, "testdata/bad/malformed.yaml: document 2 (line 9)", "nothing was written")
	errOut = c.fails("apply", "-f", "testdata/dup")
	mustContain(t, "apply of a duplicate", errOut, "testdata/dup/b.yaml: document 1", "duplicate", "nothing was written")
	mustContain(t, "get after failed applies", c.ok("get", "clusters"), "No Cluster objects found.")
	// The only audited changes are the server's own admin token: nothing from the failed applies.
	audit := strings.Split(strings.TrimSpace(c.ok("audit")), "\n")
	if len(audit) != 2 || !strings.Contains(audit[1], "Token") || !strings.Contains(audit[1], "admin") {
		t.Errorf("audit after failed applies = %q, want only the bootstrap admin token's creation", audit)
	}
}

func TestAuditAndTokens(t *testing.T) {
	s := startServer(t)
	c := newCLI(t)
	c.ok("login", "--server", s.URL, "--token", s.Token)
	c.ok("apply", "-f", "testdata/fleet/clusters.yaml")

	r := c.run("", "token", "create", "ci", "--role", "viewer")
	if r.code != 0 {
		t.Fatalf("token create: %s", r.stderr)
	}
	secret := strings.TrimSpace(r.stdout)
	if !strings.HasPrefix(secret, "flt_") || !strings.Contains(r.stderr, "shown only this once") {
		t.Fatalf("token create printed %q / %q", r.stdout, r.stderr)
	}
	mustContain(t, "token list", c.ok("token", "list"), "ci", "viewer", "token:admin", "never")
	if strings.Contains(c.ok("token", "list"), secret) {
		t.Error("token list shows a secret")
	}
	mustContain(t, "get as viewer", c.ok("--token", secret, "get", "clusters"), "prod-eu-1")
	errOut := c.fails("--token", secret, "apply", "-f", "testdata/fleet/clusters.yaml")
	mustContain(t, "apply as viewer", errOut, "token:ci may not apply clusters", "nothing was written")
	mustContain(t, "token create as viewer", c.fails("--token", secret, "token", "create", "x", "--role", "admin"), "may not create tokens")
	c.ok("--server", s.URL, "delete", "cluster", "dev-1")

	audit := c.ok("audit", "--kind", "cl")
	lines := strings.Split(strings.TrimSpace(audit), "\n")
	if len(lines) != 5 || !strings.HasPrefix(lines[0], "SEQ") {
		t.Errorf("audit --kind cl: want a header and 4 events:\n%s", audit)
	}
	mustContain(t, "audit", audit, "token:admin", "Created", "Deleted", "dev-1")
	one := c.ok("audit", "--name", "dev-1", "-o", "json")
	var l struct{ Items []map[string]any }
	if err := json.Unmarshal([]byte(one), &l); err != nil || len(l.Items) != 2 {
		t.Errorf("audit --name dev-1 -o json = %s (%v), want 2 events", one, err)
	}
	mustContain(t, "audit --actor ci", c.ok("audit", "--actor", "ci"), "No events found.")
	mustContain(t, "audit --since", c.ok("audit", "--since", "1h", "--limit", "2"), "prod-eu-1")
	mustContain(t, "audit bad since", c.fails("audit", "--since", "yesterday"), "--since")

	mustContain(t, "token delete", c.ok("token", "delete", "ci"), "token ci deleted")
	mustContain(t, "revoked token", c.fails("--token", secret, "get", "clusters"), "not known")
}

func TestCompletion(t *testing.T) {
	c := newCLI(t)
	for _, sh := range []string{"bash", "zsh", "fish"} {
		if out := c.ok("completion", sh); !strings.Contains(out, "flotilla") {
			t.Errorf("completion %s does not mention flotilla", sh)
		}
	}
	kinds := c.ok("__complete", "get", "")
	mustContain(t, "completion of kinds", kinds, "cluster", "services", "rolloutstrategies", "svc")
	ro := c.ok("__complete", "describe", "ro")
	mustContain(t, "completion of ro", ro, "rollout", "rolloutstrategy")
	if strings.Contains(ro, "cluster") {
		t.Errorf("completion of 'ro' offers cluster:\n%s", ro)
	}
	c.fails("completion", "powershell")
	mustContain(t, "get without a server", c.fails("get", "clusters"), "flotilla login")
}

func TestCompletionOfNamesFromServer(t *testing.T) {
	s := startServer(t)
	c := newCLI(t)
	c.ok("login", "--server", s.URL, "--token", s.Token)
	c.ok("apply", "-f", "testdata/fleet/clusters.yaml")
	out := c.ok("__complete", "get", "cluster", "prod")
	mustContain(t, "name completion", out, "prod-eu-1", "prod-us-1")
	if strings.Contains(out, "dev-1") {
		t.Errorf("name completion of 'prod' offers dev-1:\n%s", out)
	}
}

func TestServerOnPostgreSQL(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	s := startServerIn(t, t.TempDir(), "--db", dsn)
	mustContain(t, "server log", s.log.String(), "store=\"postgres ")
	c := newCLI(t)
	c.ok("login", "--server", s.URL, "--token", s.Token)
	mustContain(t, "apply", c.ok("apply", "-f", "testdata/fleet"), "service/web created")
	mustContain(t, "get", c.ok("get", "clusters", "-l", "region=eu"), "prod-eu-1")
	mustContain(t, "all or nothing", c.fails("apply", "-f", "testdata/bad/ten.yaml"), "nothing was written")
	if out := c.ok("get", "clusters"); strings.Contains(out, "c0") {
		t.Errorf("a failed apply wrote to PostgreSQL:\n%s", out)
	}
	mustContain(t, "audit", c.ok("audit", "--kind", "service"), "Created", "web", "token:admin")
}
