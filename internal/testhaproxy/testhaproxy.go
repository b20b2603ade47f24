package testhaproxy

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "flotilla.dev/flotilla/api/v1"
)

// EnvBinary names the haproxy program to use instead of the one on PATH.
const EnvBinary = "FLOTILLA_TEST_HAPROXY"

// InstallHint is the command that installs the HAProxy tests use.
const InstallHint = "apt-get install -y haproxy"

// Binary returns the path of the haproxy program. When it is missing the
// test fails under CI=true (CI installs it) and is skipped otherwise, with
// the install command.
func Binary(t testing.TB) string {
	t.Helper()
	candidates := []string{"haproxy", "/usr/sbin/haproxy", "/usr/local/sbin/haproxy"}
	if p := os.Getenv(EnvBinary); p != "" {
		candidates = []string{p}
	}
	for _, p := range candidates {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("haproxy not found; CI must install it (%s)", InstallHint)
	}
	t.Skipf("haproxy not found; install it with `%s` to run this test", InstallHint)
	return ""
}

// Server is one server of the backend: a name (the Flotilla backend name of
// a cluster) and the address HAProxy forwards to.
type Server struct {
	Name string
	Addr string
	// Weight is the configured weight; 100 when 0.
	Weight int
}

// Config describes the HAProxy to start.
type Config struct {
	// Backend is the backend's name; "web" when empty.
	Backend string
	Servers []Server
	// Balance is the load-balancing algorithm; "roundrobin" when empty.
	Balance string
}

// HAProxy is a running HAProxy with one HTTP frontend, one backend and an
// admin-level runtime API on a unix socket and on a loopback TCP port.
type HAProxy struct {
	// URL is the frontend, http://127.0.0.1:PORT.
	URL string
	// RuntimeAPI is the unix socket, unix:///...; TCPRuntimeAPI the same
	// API on tcp://127.0.0.1:PORT.
	RuntimeAPI    string
	TCPRuntimeAPI string
	Backend       string
	Dir           string

	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
}

// Start starts HAProxy for cfg and stops it when the test ends. Ports are
// chosen at run time on 127.0.0.1.
func Start(t testing.TB, cfg Config) *HAProxy {
	t.Helper()
	bin := Binary(t)
	if cfg.Backend == "" {
		cfg.Backend = "web"
	}
	if cfg.Balance == "" {
		cfg.Balance = "roundrobin"
	}
	if !v1.IsHAProxyName(cfg.Backend) {
		t.Fatalf("testhaproxy: backend name %q", cfg.Backend)
	}
	dir, err := os.MkdirTemp("", "flotilla-haproxy-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	var lastErr error
	// A port picked free may be taken before HAProxy binds it; try again.
	for attempt := 0; attempt < 5; attempt++ {
		h, err := start(bin, dir, cfg)
		if err == nil {
			t.Cleanup(h.stop)
			return h
		}
		lastErr = err
	}
	t.Fatalf("testhaproxy: %v", lastErr)
	return nil
}

func start(bin, dir string, cfg Config) (*HAProxy, error) {
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	sock := filepath.Join(dir, "admin.sock")
	_ = os.Remove(sock)
	h := &HAProxy{
		URL:           fmt.Sprintf("http://127.0.0.1:%d", ports[0]),
		RuntimeAPI:    "unix://" + sock,
		TCPRuntimeAPI: fmt.Sprintf("tcp://127.0.0.1:%d", ports[1]),
		Backend:       cfg.Backend,
		Dir:           dir,
		out:           &syncBuffer{},
		done:          make(chan struct{}),
	}
	var b strings.Builder
	fmt.Fprintf(&b, `global
  stats socket %s mode 600 level admin
  stats socket ipv4@127.0.0.1:%d level admin
  stats timeout 30s
  maxconn 4096

defaults
  mode http
  option http-keep-alive
  timeout connect 2s
  timeout client 30s
  timeout server 30s
  timeout http-request 10s

frontend fe
  bind 127.0.0.1:%d
  default_backend %s

backend %s
  balance %s
`, sock, ports[1], ports[0], cfg.Backend, cfg.Backend, cfg.Balance)
	for _, s := range cfg.Servers {
		if !v1.IsHAProxyName(s.Name) {
			return nil, fmt.Errorf("server name %q", s.Name)
		}
		w := s.Weight
		if w == 0 {
			w = 100
		}
		fmt.Fprintf(&b, "  server %s %s weight %d\n", s.Name, s.Addr, w)
	}
	conf := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(conf, []byte(b.String()), 0o600); err != nil {
		return nil, err
	}
	h.cmd = exec.Command(bin, "-db", "-f", conf)
	h.cmd.Stdout, h.cmd.Stderr = h.out, h.out
	if err := h.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() { _ = h.cmd.Wait(); close(h.done) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-h.done:
			return nil, fmt.Errorf("haproxy exited at start:\n%s", h.out.String())
		default:
		}
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			if c, err := net.Dial("tcp", strings.TrimPrefix(h.URL, "http://")); err == nil {
				c.Close()
				return h, nil
			}
		}
		if time.Now().After(deadline) {
			h.stop()
			return nil, fmt.Errorf("haproxy not ready after 10s:\n%s", h.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Output returns what HAProxy printed so far.
func (h *HAProxy) Output() string { return h.out.String() }

func (h *HAProxy) stop() {
	select {
	case <-h.done:
		return
	default:
	}
	_ = h.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-h.done:
	case <-time.After(5 * time.Second):
		_ = h.cmd.Process.Kill()
		<-h.done
	}
}

func freePorts(n int) ([]int, error) {
	var ports []int
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			l.Close()
		}
	}()
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
