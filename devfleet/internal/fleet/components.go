package fleet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"
	_ "unsafe" // for go:linkname to the informer-name registry

	"github.com/spf13/pflag"
	"k8s.io/client-go/tools/cache"
	cliflag "k8s.io/component-base/cli/flag"
	"k8s.io/component-base/configz"
	apiserverapp "k8s.io/kubernetes/cmd/kube-apiserver/app"
	apiserveroptions "k8s.io/kubernetes/cmd/kube-apiserver/app/options"
	cmapp "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	cmoptions "k8s.io/kubernetes/cmd/kube-controller-manager/app/options"
	schedapp "k8s.io/kubernetes/cmd/kube-scheduler/app"
	schedoptions "k8s.io/kubernetes/cmd/kube-scheduler/app/options"
)

// startMu serialises the start of controller-managers and schedulers: each registers itself in
// process-wide registries that assume one instance per process.
var startMu sync.Mutex

// informerNameRegistry is client-go's process-wide set of informer names. The controller-manager
// claims "kube-controller-manager" in it and a second one in the same process would be refused;
// the names only label metrics, so the fleet frees the name once a controller-manager holds it.
//
//go:linkname informerNameRegistry k8s.io/client-go/tools/cache.informerNameRegistry
var informerNameRegistry struct {
	sync.Mutex
	names map[string]*cache.InformerName
}

const cmInformerName = "kube-controller-manager"

func informerNameHeld(name string) bool {
	informerNameRegistry.Lock()
	defer informerNameRegistry.Unlock()
	_, ok := informerNameRegistry.names[name]
	return ok
}

func forgetInformerName(name string) {
	informerNameRegistry.Lock()
	defer informerNameRegistry.Unlock()
	delete(informerNameRegistry.names, name)
}

// parseFlags parses a component's command-line flags into its options, on a flag set of its own
// (the components' cobra commands would also install signal handlers and global flags).
func parseFlags(name string, nfs cliflag.NamedFlagSets, args []string) error {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	for _, s := range nfs.FlagSets {
		fs.AddFlagSet(s)
	}
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%s flags: %w", name, err)
	}
	return nil
}

// runAPIServer starts a kube-apiserver serving on ln and returns at once; the server stops when
// ctx is cancelled and its outcome arrives on the returned channel.
func runAPIServer(ctx context.Context, c *cluster, etcdURL string, ln net.Listener) (<-chan error, error) {
	s := apiserveroptions.NewServerRunOptions()
	nfs := s.Flags()
	args := []string{
		"--etcd-servers=" + etcdURL,
		"--etcd-prefix=/" + c.Name,
		"--bind-address=127.0.0.1",
		"--tls-cert-file=" + c.pki.ServingCert,
		"--tls-private-key-file=" + c.pki.ServingKey,
		"--client-ca-file=" + c.pki.CACert,
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + c.pki.SAPub,
		"--service-account-signing-key-file=" + c.pki.SAKey,
		"--service-cluster-ip-range=10.96.0.0/16",
		"--endpoint-reconciler-type=none",
		"--enable-priority-and-fairness=false",
		"--profiling=false",
		"--allow-privileged=true",
		"--cert-dir=" + c.dir,
	}
	if err := parseFlags("kube-apiserver", nfs, args); err != nil {
		return nil, err
	}
	s.SecureServing.Listener = ln
	s.SecureServing.BindPort = ln.Addr().(*net.TCPAddr).Port
	completed, err := s.Complete(ctx)
	if err != nil {
		return nil, fmt.Errorf("kube-apiserver %s: complete options: %w", c.Name, err)
	}
	if errs := completed.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("kube-apiserver %s: %w", c.Name, errors.Join(errs...))
	}
	done := make(chan error, 1)
	go func() { done <- apiserverapp.Run(ctx, completed) }()
	return done, nil
}

// runControllerManager starts a kube-controller-manager against the cluster and returns once it
// has claimed (and the fleet has released) the process-wide registrations.
func runControllerManager(ctx context.Context, c *cluster) (<-chan error, error) {
	startMu.Lock()
	defer startMu.Unlock()
	s, err := cmoptions.NewKubeControllerManagerOptions()
	if err != nil {
		return nil, fmt.Errorf("kube-controller-manager %s: %w", c.Name, err)
	}
	known, disabled, aliases := cmapp.KnownControllers(), cmapp.ControllersDisabledByDefault(), cmapp.ControllerAliases()
	nfs := s.Flags(known, disabled, aliases)
	s.ParsedFlags = &nfs
	args := []string{
		"--kubeconfig=" + c.Kubeconfig,
		"--leader-elect=false",
		"--secure-port=0",
		"--service-account-private-key-file=" + c.pki.SAKey,
		"--root-ca-file=" + c.pki.CACert,
		"--use-service-account-credentials=false",
		"--concurrent-deployment-syncs=10",
		"--concurrent-replicaset-syncs=10",
		// KWOK's simulated nodes renew their heartbeat less often than the node lifecycle
		// controller's default grace period, so every ~55 s each node flapped NotReady and the
		// controller marked its pods not ready for good (KWOK sets Ready only when a pod starts).
		// Simulated nodes never fail: the grace periods are set out of reach.
		"--node-monitor-grace-period=24h",
		"--node-startup-grace-period=24h",
	}
	if err := parseFlags("kube-controller-manager", nfs, args); err != nil {
		return nil, err
	}
	cfg, err := s.Config(ctx, known, disabled, aliases)
	if err != nil {
		return nil, fmt.Errorf("kube-controller-manager %s: config: %w", c.Name, err)
	}
	configz.Delete(cmapp.ConfigzName)
	forgetInformerName(cmInformerName)
	done := make(chan error, 1)
	go func() { done <- cmapp.Run(ctx, cfg.Complete()) }()
	// Wait until this instance holds its registrations, then release them for the next cluster.
	deadline := time.Now().Add(60 * time.Second)
	for !informerNameHeld(cmInformerName) {
		select {
		case err := <-done:
			return nil, fmt.Errorf("kube-controller-manager %s: exited during start: %w", c.Name, err)
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("kube-controller-manager %s: did not start within 60s", c.Name)
		}
	}
	forgetInformerName(cmInformerName)
	configz.Delete(cmapp.ConfigzName)
	return done, nil
}

// runScheduler starts a kube-scheduler against the cluster. KWOK only fakes nodes and pod status;
// without a scheduler no pod would ever be bound.
func runScheduler(ctx context.Context, c *cluster) (<-chan error, error) {
	startMu.Lock()
	defer startMu.Unlock()
	opts := schedoptions.NewOptions()
	args := []string{"--kubeconfig=" + c.Kubeconfig, "--leader-elect=false", "--secure-port=0"}
	if err := parseFlags("kube-scheduler", *opts.Flags, args); err != nil {
		return nil, err
	}
	cc, sched, err := schedapp.Setup(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("kube-scheduler %s: setup: %w", c.Name, err)
	}
	done := make(chan error, 1)
	started := make(chan struct{})
	go func() {
		// The scheduler registers "componentconfig" in configz first thing in Run; the previous
		// cluster's scheduler holds it, so drop it and try again.
		for attempt := 0; ; attempt++ {
			configz.Delete("componentconfig")
			if attempt == 0 {
				close(started)
			}
			err := schedapp.Run(ctx, cc, sched)
			if err != nil && strings.Contains(err.Error(), "configz") && attempt < 20 && ctx.Err() == nil {
				time.Sleep(50 * time.Millisecond)
				continue
			}
			done <- err
			return
		}
	}()
	<-started
	return done, nil
}
