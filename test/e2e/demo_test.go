package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Given a fresh directory, when `flotilla demo --exit-after-scenario` runs, then the whole story
// happens with real parts (its own fleet of four clusters, agents, Git, Prometheus): the first and
// a good release reach every cluster through the canary, and a bad release fails the canary's
// analysis and is rolled back by itself without reaching any other cluster; and the demo stops
// everything it started.
//
// It starts a second fleet next to the shared one, so it runs only with FLOTILLA_TEST_DEMO=1
// (`make test-demo`, which CI runs).
func TestDemoRunsTheCanaryStory(t *testing.T) {
	if os.Getenv("FLOTILLA_TEST_DEMO") != "1" {
		t.Skip("the demo test runs with FLOTILLA_TEST_DEMO=1 (make test-demo)")
	}
	bin := flotillaBinary(t)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "demo", "--exit-after-scenario", "--dir", dir, "--listen", "127.0.0.1:0", "--step-timeout", "4m")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	err := cmd.Run()
	t.Logf("demo output:\n%s", out.String())
	if err != nil {
		for _, f := range []string{"server.log", "agent-eu-canary.log"} {
			if b, rerr := os.ReadFile(dir + "/logs/" + f); rerr == nil {
				t.Logf("%s (tail):\n%s", f, tail(string(b), 3000))
			}
		}
		t.Fatalf("flotilla demo: %v", err)
	}
	text := out.String()
	for _, want := range []string{
		"rollout web-", "RolledBack",
		"done: v3 reached only eu-canary",
		"stopped; nothing is left running",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the narration lacks %q", want)
		}
	}
	// Nothing the demo started outlives it: no process still has the demo's directory on its
	// command line.
	ps, _ := exec.Command("ps", "-eo", "args").Output()
	for _, line := range strings.Split(string(ps), "\n") {
		if strings.Contains(line, dir) {
			t.Errorf("still running after the demo: %s", line)
		}
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
