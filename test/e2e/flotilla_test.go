package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"flotilla.dev/flotilla/internal/testproc"
)

// flotillaBinary builds cmd/flotilla once per test binary: end-to-end tests run the product as a
// user would, as its own processes.
func flotillaBinary(t testing.TB) string {
	t.Helper()
	return testproc.Build(t, "flotilla.dev/flotilla/cmd/flotilla")
}

// process is a flotilla process started by a test, stopped with SIGTERM when the test ends.
type process = testproc.Process

func start(t *testing.T, name string, args ...string) *process {
	t.Helper()
	return testproc.Start(t, flotillaBinary(t), name, args...)
}

// server is a running `flotilla server` with its admin client.
type server struct{ *testproc.Server }

// startServer starts `flotilla server` on SQLite in a directory of its own, with extraArgs.
func startServer(t *testing.T, extraArgs ...string) *server {
	t.Helper()
	return &server{testproc.StartServer(t, flotillaBinary(t), extraArgs...)}
}

// cli runs a flotilla command against s and returns its output, failing the test on an error.
func (s *server) cli(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(flotillaBinary(t), append(args, "--server", s.URL, "--token", s.Token)...)
	cmd.Env = append(os.Environ(), "FLOTILLA_CONFIG="+filepath.Join(t.TempDir(), "config.yaml"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("flotilla %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

var bootstrapToken = regexp.MustCompile(`--token (flb_\S+)`)

// registerAndRunAgent registers a cluster through the CLI, as `flotilla cluster register` tells a
// user to, and runs its agent against kubeconfig.
func (s *server) registerAndRunAgent(t *testing.T, name, kubeconfig string, labels ...string) *process {
	t.Helper()
	return s.runAgent(t, name, s.register(t, name, labels...), kubeconfig, t.TempDir())
}

// register registers a cluster through the CLI and returns the bootstrap token it printed.
func (s *server) register(t *testing.T, name string, labels ...string) string {
	t.Helper()
	args := []string{"cluster", "register", name}
	for _, l := range labels {
		args = append(args, "-l", l)
	}
	out := s.cli(t, args...)
	m := bootstrapToken.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("cluster register printed no agent command with a bootstrap token:\n%s", out)
	}
	return m[1]
}

// runAgent runs `flotilla agent` for cluster name with token (bootstrap token or credential),
// keeping its state in stateDir.
func (s *server) runAgent(t *testing.T, name, token, kubeconfig, stateDir string) *process {
	t.Helper()
	return start(t, "agent "+name, "agent", "--server", s.URL, "--token", token, "--kubeconfig", kubeconfig,
		"--state-dir", stateDir, "--observe-interval", "1s", "--holder", fmt.Sprintf("e2e-%s-%d", name, time.Now().UnixNano()))
}

// eventually polls cond until it returns nil or the time is up, then fails with its last error.
func eventually(t *testing.T, limit time.Duration, what string, cond func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	var err error
	for {
		if err = cond(ctx); err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: not within %s: %v", what, limit, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
