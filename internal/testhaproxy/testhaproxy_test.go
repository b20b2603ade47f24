package testhaproxy

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// A missing haproxy skips the test with the install command, and fails it in CI. The check runs
// in a child test process so that its skip or failure is observed, not suffered.
func TestMissingBinary(t *testing.T) {
	if os.Getenv("TESTHAPROXY_CHILD") == "1" {
		Binary(t)
		t.Log("found")
		return
	}
	for _, ci := range []string{"false", "true"} {
		cmd := exec.Command(os.Args[0], "-test.run", "^TestMissingBinary$", "-test.v")
		cmd.Env = append(os.Environ(), "TESTHAPROXY_CHILD=1", EnvBinary+"=/nonexistent/haproxy", "CI="+ci)
		out, err := cmd.CombinedOutput()
		text := string(out)
		switch ci {
		case "false":
			if err != nil || !strings.Contains(text, "--- SKIP") || !strings.Contains(text, InstallHint) {
				t.Errorf("CI=false: want a skip naming %q, got %v:\n%s", InstallHint, err, text)
			}
		case "true":
			if err == nil || !strings.Contains(text, "--- FAIL") || !strings.Contains(text, InstallHint) {
				t.Errorf("CI=true: want a failure naming %q, got %v:\n%s", InstallHint, err, text)
			}
		}
	}
}
