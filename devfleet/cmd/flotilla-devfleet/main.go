// Command flotilla-devfleet runs a local fleet of real Kubernetes clusters in one process, for
// Flotilla's demo and tests. `flotilla-devfleet up --clusters 3 --dir .fleet` prints each
// cluster's name, API address and kubeconfig, writes DIR/fleet.json once every cluster is ready
// for workloads, and runs until SIGINT or SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"k8s.io/klog/v2"

	"flotilla.dev/flotilla/devfleet/internal/fleet"
)

// userErr is where the program's own error messages go: the terminal's standard error, even
// after captureStderr has sent file descriptor 2 to the log.
var userErr io.Writer = os.Stderr

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(userErr, "flotilla-devfleet:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprint(os.Stderr, `usage: flotilla-devfleet up [--clusters N | --names a,b,c] [--dir DIR]

Starts N real Kubernetes clusters (kube-apiserver, controller-manager, scheduler, embedded etcd,
KWOK fake node) on loopback in this process and keeps them running until interrupted.
`)
}

func run(args []string) error {
	if len(args) == 0 || args[0] != "up" {
		usage()
		return fmt.Errorf("unknown or missing command")
	}
	fs := flag.NewFlagSet("up", flag.ContinueOnError)
	n := fs.Int("clusters", 3, "number of clusters, named fleet-1..fleet-N")
	names := fs.String("names", "", "comma-separated cluster names (overrides --clusters)")
	dir := fs.String("dir", ".fleet", "directory for kubeconfigs, certificates, data and logs")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	var list []string
	if *names != "" {
		list = strings.Split(*names, ",")
	} else {
		if *n < 1 || *n > 50 {
			return fmt.Errorf("--clusters %d: must be between 1 and 50", *n)
		}
		for i := 1; i <= *n; i++ {
			list = append(list, fmt.Sprintf("fleet-%d", i))
		}
	}
	if err := os.MkdirAll(*dir, 0o700); err != nil {
		return err
	}
	logf, err := os.OpenFile(filepath.Join(*dir, "components.log"), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	quietKlog(logf)
	stderr, err := captureStderr(logf)
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Printf("starting %d clusters in %s (logs: %s)\n", len(list), *dir, logf.Name())
	f, err := fleet.Start(ctx, fleet.Options{Names: list, Dir: *dir, Log: logf,
		Progress: func(msg string) { fmt.Println("  " + msg) }})
	if err != nil {
		return err
	}
	for _, c := range f.Clusters {
		fmt.Printf("cluster %-12s %s  kubeconfig=%s\n", c.Name, c.Server, c.Kubeconfig)
	}
	fmt.Printf("fleet ready in %.1fs; all contexts: KUBECONFIG=%s\n", f.Ready.Seconds(), f.Kubeconfig)
	fmt.Println("press Ctrl-C to stop")
	<-ctx.Done()
	fmt.Println("stopping fleet")
	stopped := make(chan struct{})
	go func() { f.Stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(20 * time.Second):
		fmt.Fprintln(stderr, "flotilla-devfleet: components did not stop within 20s; exiting anyway")
	}
	// The fleet is throwaway: its etcd data goes with it; kubeconfigs and logs stay for inspection.
	os.Remove(filepath.Join(*dir, "fleet.json"))
	os.RemoveAll(filepath.Join(*dir, "etcd"))
	return nil
}

// captureStderr points file descriptor 2 at w, so that what the components write to standard
// error directly (etcd clients log there with their own logger) lands in the log file, and
// returns a handle on the original standard error for the program's own messages.
func captureStderr(w *os.File) (*os.File, error) {
	fd, err := unix.Dup(2)
	if err != nil {
		return nil, fmt.Errorf("dup stderr: %w", err)
	}
	if err := unix.Dup3(int(w.Fd()), 2, 0); err != nil {
		return nil, fmt.Errorf("redirect stderr: %w", err)
	}
	orig := os.NewFile(uintptr(fd), "/dev/stderr")
	userErr = orig
	return orig, nil
}

// quietKlog sends the Kubernetes components' logs to w instead of the terminal.
func quietKlog(w io.Writer) {
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	_ = fs.Set("logtostderr", "false")
	_ = fs.Set("alsologtostderr", "false")
	_ = fs.Set("stderrthreshold", "FATAL")
	_ = fs.Set("v", "0")
	klog.SetOutput(w)
}
