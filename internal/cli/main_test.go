package cli_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binary is the flotilla binary built once for all tests by TestMain.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "flotilla-cli-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "flotilla")
	build := exec.Command("go", "build", "-o", binary, "flotilla.dev/flotilla/cmd/flotilla")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build flotilla:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// cliServer is a `flotilla server` subprocess on a free loopback port.
type cliServer struct {
	URL   string
	Token string
	Dir   string
	cmd   *exec.Cmd
	log   *syncBuffer
	exit  chan error
}

// syncBuffer is a buffer written by the log reader and read by the test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) WriteString(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.WriteString(s)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var listening = regexp.MustCompile(`msg="flotilla server listening" addr=(\S+)`)

// startServer runs `flotilla server` with its data directory set by a config file, the listen
// address by a flag that overrides the file's, the admin token file by a flag, and the log level by
// the environment, which overrides the file's.
func startServer(t *testing.T) *cliServer {
	t.Helper()
	return startServerIn(t, t.TempDir())
}

// startServerIn starts a server whose data lives in dir; a second server in the same dir finds the
// first one's store.
func startServerIn(t *testing.T, dir string, args ...string) *cliServer {
	t.Helper()
	tokenFile := filepath.Join(dir, "secrets", "admin.token")
	config := filepath.Join(dir, "server.yaml")
	writeFile(t, config, fmt.Sprintf("dataDir: %s\nlisten: 127.0.0.1:1\nlogLevel: error\n", filepath.Join(dir, "data")))
	cmd := exec.Command(binary, append([]string{"server", "--config", config, "--listen", "127.0.0.1:0", "--admin-token-file", tokenFile}, args...)...)
	cmd.Env = append(os.Environ(), "FLOTILLA_LOG_LEVEL=info")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	s := &cliServer{Dir: dir, cmd: cmd, log: &syncBuffer{}, exit: make(chan error, 1)}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			s.log.WriteString(line + "\n")
			if m := listening.FindStringSubmatch(line); m != nil && !sent {
				addr <- m[1]
				sent = true
			}
		}
		s.exit <- cmd.Wait()
	}()
	t.Cleanup(func() { s.stop(t) })
	select {
	case a := <-addr:
		s.URL = "http://" + a
	case <-time.After(60 * time.Second):
		t.Fatalf("server did not start; log:\n%s", s.log)
	}
	if strings.Contains(s.log.String(), "already has API tokens") {
		return s
	}
	tok, err := os.ReadFile(tokenFile)
	if err != nil {
		t.Fatalf("admin token file: %v", err)
	}
	if fi, _ := os.Stat(tokenFile); fi.Mode().Perm() != 0o600 {
		t.Errorf("admin token file mode %v, want 0600", fi.Mode().Perm())
	}
	s.Token = strings.TrimSpace(string(tok))
	if !strings.Contains(s.log.String(), s.Token) {
		// The token is printed once on stderr; the reader goroutine may lag a little.
		time.Sleep(100 * time.Millisecond)
	}
	return s
}

// stop sends SIGTERM and requires a clean exit (graceful shutdown).
func (s *cliServer) stop(t *testing.T) {
	t.Helper()
	if s.cmd.Process == nil || s.cmd.ProcessState != nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.exit:
		if err != nil {
			t.Errorf("server exit after SIGTERM: %v; log:\n%s", err, s.log)
		}
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		t.Errorf("server did not stop after SIGTERM; log:\n%s", s.log)
	}
}

// cli runs the binary with a private config file and returns stdout, stderr and the exit code.
type cli struct {
	t   *testing.T
	env []string
}

func newCLI(t *testing.T) *cli {
	t.Helper()
	home := t.TempDir()
	env := []string{"HOME=" + home, "PATH=" + os.Getenv("PATH"), "FLOTILLA_CONFIG=" + filepath.Join(home, "flotilla", "config.yaml")}
	return &cli{t: t, env: env}
}

func (c *cli) configPath() string { return strings.TrimPrefix(c.env[2], "FLOTILLA_CONFIG=") }

type result struct {
	stdout, stderr string
	code           int
}

func (c *cli) run(stdin string, args ...string) result {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = c.env
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := errors.AsType[*exec.ExitError](err); ok {
		code = ee.ExitCode()
	} else if err != nil {
		c.t.Fatalf("flotilla %s: %v", strings.Join(args, " "), err)
	}
	return result{out.String(), errb.String(), code}
}

// ok runs a command that must succeed and returns its stdout.
func (c *cli) ok(args ...string) string {
	c.t.Helper()
	r := c.run("", args...)
	if r.code != 0 {
		c.t.Fatalf("flotilla %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// fails runs a command that must fail and returns its stderr.
func (c *cli) fails(args ...string) string {
	c.t.Helper()
	r := c.run("", args...)
	if r.code == 0 {
		c.t.Fatalf("flotilla %s succeeded, want a failure\nstdout:\n%s", strings.Join(args, " "), r.stdout)
	}
	return r.stderr
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func mustContain(t *testing.T, what, got string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(got, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, got)
		}
	}
}

func ready(t *testing.T, url string) {
	t.Helper()
	resp, err := http.Get(url + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/readyz = %d", resp.StatusCode)
	}
}
