package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"flotilla.dev/flotilla/devfleet/internal/pki"
)

// Options says what fleet to start.
type Options struct {
	// Names of the clusters, one per cluster; each must be a DNS label.
	Names []string
	// Dir holds kubeconfigs, certificates, etcd data and logs. It is created if missing.
	Dir string
	// Log receives the components' own logs; nil discards them.
	Log io.Writer
	// Progress, if set, is told of each start-up phase as it completes.
	Progress func(msg string)
}

// Cluster is one running cluster as a client sees it.
type Cluster struct {
	Name       string `json:"name"`
	Server     string `json:"server"`
	Kubeconfig string `json:"kubeconfig"`

	dir  string
	pki  pki.Files
	done []<-chan error
}

// Fleet is a set of running clusters. It runs until Stop is called or the context given to
// Start is cancelled.
type Fleet struct {
	Clusters   []*Cluster `json:"clusters"`
	Kubeconfig string     `json:"kubeconfig"`
	// Etcd and EtcdPeer are the shared etcd's client and peer URLs.
	Etcd     string `json:"etcd"`
	EtcdPeer string `json:"etcdPeer"`
	// Ready is how long start-up took, until every cluster was ready for workloads.
	Ready time.Duration `json:"readyNanos"`

	cancel   context.CancelFunc
	stopEtcd func()
}

type cluster = Cluster

// Start brings up every cluster and returns when all are ready for workloads. On error,
// everything already started is stopped.
func Start(ctx context.Context, o Options) (_ *Fleet, err error) {
	began := time.Now()
	if len(o.Names) == 0 {
		return nil, errors.New("fleet: no clusters requested")
	}
	seen := map[string]bool{}
	for _, n := range o.Names {
		if !dnsLabel(n) {
			return nil, fmt.Errorf("fleet: cluster name %q: must be a DNS label (a-z, 0-9, '-', at most 63)", n)
		}
		if seen[n] {
			return nil, fmt.Errorf("fleet: cluster name %q given twice", n)
		}
		seen[n] = true
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, fmt.Errorf("fleet: %w", err)
	}
	// Start from a clean directory so no stale kubeconfig points at a dead cluster.
	for _, n := range append([]string{"etcd", "fleet.json", "kubeconfig"}, o.Names...) {
		os.RemoveAll(filepath.Join(dir, n))
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("fleet: %w", err)
	}
	logw := o.Log
	if logw == nil {
		logw = io.Discard
	}
	progress := func(format string, args ...any) {
		if o.Progress != nil {
			o.Progress(fmt.Sprintf("%5.1fs ", time.Since(began).Seconds()) + fmt.Sprintf(format, args...))
		}
	}
	stages, err := loadStages()
	if err != nil {
		return nil, err
	}

	ctx, cancel := context.WithCancel(ctx)
	f := &Fleet{Kubeconfig: filepath.Join(dir, "kubeconfig"), cancel: cancel}
	defer func() {
		if err != nil {
			f.Stop()
		}
	}()
	etcd, etcdURL, err := startEtcd(ctx, dir)
	if err != nil {
		return nil, err
	}
	f.stopEtcd = func() { etcd.Close() }
	f.Etcd, f.EtcdPeer = etcdURL, etcd.Config().ListenPeerUrls[0].String()
	progress("etcd ready at %s", etcdURL)

	// API servers start concurrently: they are independent and most of their start-up is waiting.
	for _, name := range o.Names {
		c := &Cluster{Name: name, dir: filepath.Join(dir, name)}
		if c.pki, err = pki.Write(c.dir); err != nil {
			return nil, err
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("fleet %s: listen: %w", name, err)
		}
		c.Server = fmt.Sprintf("https://%s", ln.Addr().String())
		c.Kubeconfig = filepath.Join(c.dir, "kubeconfig")
		if err := writeKubeconfig(c.Kubeconfig, []*Cluster{c}); err != nil {
			ln.Close()
			return nil, err
		}
		done, err := runAPIServer(ctx, c, etcdURL, ln)
		if err != nil {
			ln.Close()
			return nil, err
		}
		c.done = append(c.done, done)
		f.Clusters = append(f.Clusters, c)
	}
	if err := writeKubeconfig(f.Kubeconfig, f.Clusters); err != nil {
		return nil, err
	}
	// Each cluster goes on to its controllers as soon as its own API server is ready.
	var g errgroup.Group
	for _, c := range f.Clusters {
		g.Go(func() error {
			if err := waitAPIServer(ctx, c); err != nil {
				return err
			}
			progress("%s: API server ready", c.Name)
			done, err := runControllerManager(ctx, c)
			if err != nil {
				return err
			}
			c.done = append(c.done, done)
			if done, err = runScheduler(ctx, c); err != nil {
				return err
			}
			c.done = append(c.done, done)
			if err := runKWOK(ctx, c, stages, logw); err != nil {
				return err
			}
			if err := waitWorkloadReady(ctx, c); err != nil {
				return err
			}
			progress("%s: node Ready, default service account present", c.Name)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	f.Ready = time.Since(began)
	data, _ := json.MarshalIndent(f, "", "  ")
	if err := writeFileAtomic(filepath.Join(dir, "fleet.json"), append(data, '\n')); err != nil {
		return nil, err
	}
	return f, nil
}

// Stop stops every component, then etcd. Components that ignore cancellation are given 15 s.
func (f *Fleet) Stop() {
	f.cancel()
	deadline := time.After(15 * time.Second)
	for _, c := range f.Clusters {
		for _, d := range c.done {
			select {
			case <-d:
			case <-deadline:
			}
		}
	}
	if f.stopEtcd != nil {
		f.stopEtcd()
	}
}

func clientFor(c *Cluster) (*kubernetes.Clientset, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
	if err != nil {
		return nil, err
	}
	cfg.QPS, cfg.Burst = 100, 200
	return kubernetes.NewForConfig(cfg)
}

func waitAPIServer(ctx context.Context, c *Cluster) error {
	cs, err := clientFor(c)
	if err != nil {
		return fmt.Errorf("fleet %s: %w", c.Name, err)
	}
	return poll(ctx, 90*time.Second, func() (bool, error) {
		for _, d := range c.done {
			select {
			case err := <-d:
				return false, fmt.Errorf("fleet %s: kube-apiserver exited: %v", c.Name, err)
			default:
			}
		}
		body, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err == nil && string(body) == "ok", nil
	}, "fleet "+c.Name+": kube-apiserver not ready")
}

// waitWorkloadReady waits until a Deployment created now would become Available without delay:
// the fake node is Ready and the default service account exists.
func waitWorkloadReady(ctx context.Context, c *Cluster) error {
	cs, err := clientFor(c)
	if err != nil {
		return fmt.Errorf("fleet %s: %w", c.Name, err)
	}
	return poll(ctx, 90*time.Second, func() (bool, error) {
		n, err := cs.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		ready := false
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
				ready = true
			}
		}
		if !ready || len(n.Spec.Taints) > 0 {
			return false, nil
		}
		_, err = cs.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	}, "fleet "+c.Name+": node or default service account not ready")
}

func poll(ctx context.Context, limit time.Duration, cond func() (bool, error), what string) error {
	deadline := time.Now().Add(limit)
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s after %s", what, limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func writeKubeconfig(path string, clusters []*Cluster) error {
	cfg := clientcmdapi.NewConfig()
	for _, c := range clusters {
		cfg.Clusters[c.Name] = &clientcmdapi.Cluster{Server: c.Server, CertificateAuthority: c.pki.CACert}
		cfg.AuthInfos[c.Name] = &clientcmdapi.AuthInfo{ClientCertificate: c.pki.AdminCert, ClientKey: c.pki.AdminKey}
		cfg.Contexts[c.Name] = &clientcmdapi.Context{Cluster: c.Name, AuthInfo: c.Name, Namespace: "default"}
	}
	cfg.CurrentContext = clusters[0].Name
	data, err := clientcmd.Write(*cfg)
	if err != nil {
		return fmt.Errorf("fleet: kubeconfig: %w", err)
	}
	return writeFileAtomic(path, data)
}

func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("fleet: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("fleet: %w", err)
	}
	return nil
}

func dnsLabel(s string) bool {
	if len(s) == 0 || len(s) > 63 {
		return false
	}
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
		case r == '-' && i > 0 && i < len(s)-1:
		default:
			return false
		}
	}
	return true
}
