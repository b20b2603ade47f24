package localfleet

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// EnvBinary names the flotilla-devfleet binary; the default is bin/flotilla-devfleet in the
// repository.
const EnvBinary = "FLOTILLA_DEVFLEET_BIN"

// Cluster is one cluster of a running fleet with ready-made clients.
type Cluster struct {
	Name       string `json:"name"`
	Server     string `json:"server"`
	Kubeconfig string `json:"kubeconfig"`

	Config  *rest.Config         `json:"-"`
	Client  kubernetes.Interface `json:"-"`
	Dynamic dynamic.Interface    `json:"-"`
}

// Fleet is a running local fleet.
type Fleet struct {
	Clusters   []*Cluster `json:"clusters"`
	Kubeconfig string     `json:"kubeconfig"`
	Etcd       string     `json:"etcd"`
	EtcdPeer   string     `json:"etcdPeer"`
	ReadyNanos int64      `json:"readyNanos"`

	// Dir holds the fleet's kubeconfigs and logs.
	Dir    string `json:"-"`
	cmd    *exec.Cmd
	exited <-chan error
	log    *bytes.Buffer
	mu     sync.Mutex
}

// StartOptions says what fleet Start runs.
type StartOptions struct {
	Clusters int
	Names    []string
	Dir      string
	// Timeout bounds start-up (default 3 minutes: a loaded 2-core machine is slow).
	Timeout time.Duration
}

// Binary returns the path of the flotilla-devfleet program or an error saying how to build it.
func Binary() (string, error) {
	if p := os.Getenv(EnvBinary); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s=%s: %w", EnvBinary, p, err)
		}
		return p, nil
	}
	// Next to the running program: bin/flotilla beside bin/flotilla-devfleet.
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), "flotilla-devfleet")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	p := filepath.Join(root, "bin", "flotilla-devfleet")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%s not found: run `make fleet` first (builds the local fleet once per machine), or set %s", p, EnvBinary)
	}
	return p, nil
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && bytes.HasPrefix(b, []byte("module flotilla.dev/flotilla\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("testfleet: repository root (go.mod of flotilla.dev/flotilla) not found above the working directory")
		}
		dir = parent
	}
}

// Start runs a new fleet process and waits until it is ready. The caller owns it and must Stop it.
func Start(ctx context.Context, o StartOptions) (*Fleet, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	if o.Timeout == 0 {
		o.Timeout = 3 * time.Minute
	}
	args := []string{"up", "--dir", o.Dir}
	if len(o.Names) > 0 {
		args = append(args, "--names", strings.Join(o.Names, ","))
	} else {
		args = append(args, "--clusters", fmt.Sprint(o.Clusters))
	}
	f := &Fleet{Dir: o.Dir, log: &bytes.Buffer{}}
	f.cmd = exec.Command(bin, args...)
	f.cmd.Stdout = lockedWriter{f}
	f.cmd.Stderr = lockedWriter{f}
	// Its own process group, and killed if the starting process dies, so no fleet outlives it.
	f.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := f.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- f.cmd.Wait() }()
	deadline := time.After(o.Timeout)
	info := filepath.Join(o.Dir, "fleet.json")
	for {
		if data, err := os.ReadFile(info); err == nil {
			if err := json.Unmarshal(data, f); err != nil {
				f.kill()
				return nil, fmt.Errorf("read %s: %w", info, err)
			}
			break
		}
		select {
		case err := <-exited:
			return nil, fmt.Errorf("fleet exited during start-up (%v); its output:\n%s", err, f.Tail())
		case <-deadline:
			f.kill()
			return nil, fmt.Errorf("fleet not ready after %s; its output:\n%s", o.Timeout, f.Tail())
		case <-ctx.Done():
			f.kill()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	for _, c := range f.Clusters {
		cfg, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
		if err != nil {
			f.kill()
			return nil, fmt.Errorf("cluster %s: %w", c.Name, err)
		}
		cfg.QPS, cfg.Burst = 200, 400
		c.Config = cfg
		if c.Client, err = kubernetes.NewForConfig(cfg); err != nil {
			f.kill()
			return nil, fmt.Errorf("cluster %s: %w", c.Name, err)
		}
		if c.Dynamic, err = dynamic.NewForConfig(cfg); err != nil {
			f.kill()
			return nil, fmt.Errorf("cluster %s: %w", c.Name, err)
		}
	}
	f.exited = exited
	return f, nil
}

type lockedWriter struct{ f *Fleet }

func (w lockedWriter) Write(p []byte) (int, error) {
	w.f.mu.Lock()
	defer w.f.mu.Unlock()
	return w.f.log.Write(p)
}

// Tail returns the end of the fleet's output and of its components' log, for error messages.
func (f *Fleet) Tail() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.log.String()
	if len(s) > 4000 {
		s = "..." + s[len(s)-4000:]
	}
	if b, err := os.ReadFile(filepath.Join(f.Dir, "components.log")); err == nil && len(b) > 0 {
		if len(b) > 3000 {
			b = b[len(b)-3000:]
		}
		s += "\n--- components.log (tail) ---\n" + string(b)
	}
	return s
}

func (f *Fleet) kill() {
	_ = syscall.Kill(-f.cmd.Process.Pid, syscall.SIGKILL)
}

// Pid is the fleet process's id.
func (f *Fleet) Pid() int { return f.cmd.Process.Pid }

// Stop sends SIGTERM and waits up to 30 s for the fleet to exit, then kills it.
func (f *Fleet) Stop() error {
	if err := f.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("signal fleet: %w", err)
	}
	select {
	case err := <-f.exited:
		if err != nil {
			return fmt.Errorf("fleet exit: %w", err)
		}
		return nil
	case <-time.After(30 * time.Second):
		f.kill()
		return errors.New("fleet did not exit within 30s of SIGTERM; killed")
	}
}
