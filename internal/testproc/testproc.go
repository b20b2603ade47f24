package testproc

import (
	"bytes"
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

// stopWithin is how long a process has to end after a signal before the test fails.
const stopWithin = 20 * time.Second

type build struct {
	once sync.Once
	path string
	err  error
}

var builds sync.Map // package path -> *build

// Build builds the main package pkg (an import path such as flotilla.dev/flotilla/cmd/flotilla)
// once per test binary and returns the path of the binary, named after the package's last
// element. A failed build fails the test with the compiler's output.
func Build(t testing.TB, pkg string) string {
	t.Helper()
	v, _ := builds.LoadOrStore(pkg, &build{})
	b := v.(*build)
	b.once.Do(func() {
		dir, err := os.MkdirTemp("", "flotilla-testproc-")
		if err != nil {
			b.err = err
			return
		}
		b.path = filepath.Join(dir, filepath.Base(pkg))
		if out, err := exec.Command("go", "build", "-o", b.path, pkg).CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// Process is a process started by a test with Start.
type Process struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has ended

	mu  sync.Mutex
	out bytes.Buffer
}

// Start runs bin with args until the test ends; name names the process in the test's log.
func Start(t testing.TB, bin, name string, args ...string) *Process {
	t.Helper()
	p := &Process{name: name, cmd: exec.Command(bin, args...), done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = (*output)(p), (*output)(p)
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.done:
			case <-time.After(stopWithin):
				_ = p.cmd.Process.Kill()
				t.Errorf("%s did not stop within %s of SIGTERM", p.name, stopWithin)
			}
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", p.name, p.Output())
		}
	})
	return p
}

// output is the writer of a process's stdout and stderr.
type output Process

func (o *output) Write(b []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.out.Write(b)
}

// Output is what the process has written to stdout and stderr so far.
func (p *Process) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// WaitOutput waits until the process has written msg and returns when it first saw it; it
// fails the test after limit.
func (p *Process) WaitOutput(t testing.TB, msg string, limit time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !strings.Contains(p.Output(), msg) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: no %q within %s; output:\n%s", p.name, msg, limit, p.Output())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Now()
}

// Signal sends sig to the process and waits for it to end, failing the test after limit.
func (p *Process) Signal(t testing.TB, sig syscall.Signal, limit time.Duration) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("%s: signal %v: %v", p.name, sig, err)
	}
	select {
	case <-p.done:
	case <-time.After(limit):
		t.Fatalf("%s did not end within %s of %v", p.name, limit, sig)
	}
}

// Stop ends the process with SIGTERM, as a rolling update would, and waits for it.
func (p *Process) Stop(t testing.TB) {
	t.Helper()
	p.Signal(t, syscall.SIGTERM, stopWithin)
}

// Kill ends the process with SIGKILL, as a crash or an OOM kill would, and waits for it.
func (p *Process) Kill(t testing.TB) {
	t.Helper()
	p.Signal(t, syscall.SIGKILL, stopWithin)
}

// Server is a running `flotilla server` started by StartServer.
type Server struct {
	URL     string         // http://ADDR, ADDR as the server logged it
	Token   string         // the first admin token
	Admin   *client.Client // a client with Token
	DataDir string         // the server's --data-dir
	Proc    *Process
}

var listening = regexp.MustCompile(`msg="flotilla server listening" addr=(\S+)`)

// StartServer runs `bin server` with args until the test ends and waits until it listens.
// Unless args set them, it adds --listen 127.0.0.1:0, --data-dir with a temporary directory and
// --admin-token-file with a file in another; the token is read from the file, which the server
// writes when it creates the first admin token (or a test wrote before, for a server on existing
// data).
func StartServer(t testing.TB, bin string, args ...string) *Server {
	t.Helper()
	s := &Server{}
	var defaults []string
	if _, ok := flagValue(args, "listen"); !ok {
		defaults = append(defaults, "--listen", "127.0.0.1:0")
	}
	s.DataDir, _ = flagValue(args, "data-dir")
	if s.DataDir == "" {
		s.DataDir = t.TempDir()
		defaults = append(defaults, "--data-dir", s.DataDir)
	}
	tokenFile, _ := flagValue(args, "admin-token-file")
	if tokenFile == "" {
		tokenFile = filepath.Join(t.TempDir(), "admin.token")
		defaults = append(defaults, "--admin-token-file", tokenFile)
	}
	p := Start(t, bin, "flotilla server", append(append([]string{"server"}, defaults...), args...)...)
	deadline := time.Now().Add(60 * time.Second)
	for {
		if m := listening.FindStringSubmatch(p.Output()); m != nil {
			p.name = "flotilla server " + m[1]
			tok, err := os.ReadFile(tokenFile)
			if err != nil {
				t.Fatalf("admin token: %v", err)
			}
			s.URL, s.Token, s.Proc = "http://"+m[1], strings.TrimSpace(string(tok)), p
			if s.Admin, err = client.New(client.Options{Server: s.URL, Token: s.Token}); err != nil {
				t.Fatal(err)
			}
			return s
		}
		select {
		case <-p.done:
			t.Fatalf("server ended before it listened; output:\n%s", p.Output())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not start; output:\n%s", p.Output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// flagValue is the value of the last --name flag in args ("--name value" or "--name=value").
func flagValue(args []string, name string) (string, bool) {
	value, found := "", false
	for i, a := range args {
		switch {
		case a == "--"+name && i+1 < len(args):
			value, found = args[i+1], true
		case strings.HasPrefix(a, "--"+name+"="):
			value, found = strings.TrimPrefix(a, "--"+name+"="), true
		}
	}
	return value, found
}
