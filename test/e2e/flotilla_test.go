package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"flotilla.dev/flotilla/client"
)

var (
	buildOnce sync.Once
	binary    string
	buildErr  error
)

// flotillaBinary builds cmd/flotilla once per test binary: end-to-end tests run the product as a
// user would, as its own processes.
func flotillaBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "flotilla-e2e-")
		if err != nil {
			buildErr = err
			return
		}
		binary = filepath.Join(dir, "flotilla")
		out, err := exec.Command("go", "build", "-o", binary, "flotilla.dev/flotilla/cmd/flotilla").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binary
}

// process is a flotilla process started by a test, stopped with SIGTERM when the test ends.
type process struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	log  bytes.Buffer
	exit chan error
}

func (p *process) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.Write(b)
}

func (p *process) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// startBinary is start for another binary than flotilla: stopped with SIGTERM when the test ends.
func startBinary(t *testing.T, bin, name string, args ...string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(bin, args...), exit: make(chan error, 1)}
	p.cmd.Stdout, p.cmd.Stderr = p, p
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { p.exit <- p.cmd.Wait() }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exit:
		case <-time.After(20 * time.Second):
			_ = p.cmd.Process.Kill()
			t.Errorf("%s did not stop within 20s of SIGTERM", name)
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", name, p.output())
		}
	})
	return p
}

func start(t *testing.T, name string, args ...string) *process {
	t.Helper()
	return startBinary(t, flotillaBinary(t), name, args...)
}

// server is a running `flotilla server` on SQLite with its admin client.
type server struct {
	URL   string
	Token string
	Admin *client.Client
	proc  *process
}

var listening = regexp.MustCompile(`msg="flotilla server listening" addr=(\S+)`)

func startServer(t *testing.T, extraArgs ...string) *server {
	t.Helper()
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "admin.token")
	p := start(t, "flotilla server", append([]string{"server", "--listen", "127.0.0.1:0", "--data-dir", dir, "--admin-token-file", tokenFile}, extraArgs...)...)
	deadline := time.Now().Add(60 * time.Second)
	for {
		if m := listening.FindStringSubmatch(p.output()); m != nil {
			tok, err := os.ReadFile(tokenFile)
			if err != nil {
				t.Fatalf("admin token: %v", err)
			}
			s := &server{URL: "http://" + m[1], Token: strings.TrimSpace(string(tok)), proc: p}
			if s.Admin, err = client.New(client.Options{Server: s.URL, Token: s.Token}); err != nil {
				t.Fatal(err)
			}
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not start; output:\n%s", p.output())
		}
		time.Sleep(20 * time.Millisecond)
	}
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
