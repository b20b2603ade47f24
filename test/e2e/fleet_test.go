package e2e

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"flotilla.dev/flotilla/internal/testfleet"
)

// Given a fleet of three clusters, when a Deployment and a Service are created in each, then all
// three Deployments become Available, and an object made in one cluster exists in no other.
func TestFleetRunsWorkloadsInIsolatedClusters(t *testing.T) {
	f := testfleet.Get(t)
	if len(f.Clusters) < 3 {
		t.Fatalf("fleet has %d clusters, want at least 3", len(f.Clusters))
	}
	ns := f.Namespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	var wg sync.WaitGroup
	errs := make([]error, len(f.Clusters))
	for i, c := range f.Clusters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = deployAndWait(ctx, c.Client, ns, "web")
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("cluster %s: %v", f.Clusters[i].Name, err)
		}
	}

	// Isolation: a ConfigMap created in the first cluster is NotFound in the others.
	first := f.Clusters[0]
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "only-in-" + first.Name}, Data: map[string]string{"k": "v"}}
	if _, err := first.Client.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatalf("cluster %s: create configmap: %v", first.Name, err)
	}
	if _, err := first.Client.CoreV1().ConfigMaps(ns).Get(ctx, cm.Name, metav1.GetOptions{}); err != nil {
		t.Fatalf("cluster %s: configmap just created is not readable: %v", first.Name, err)
	}
	for _, c := range f.Clusters[1:] {
		_, err := c.Client.CoreV1().ConfigMaps(ns).Get(ctx, cm.Name, metav1.GetOptions{})
		if !apierrors.IsNotFound(err) {
			t.Errorf("cluster %s: configmap from %s: got err=%v, want NotFound", c.Name, first.Name, err)
		}
	}
	// Each cluster is its own API server.
	servers := map[string]bool{}
	for _, c := range f.Clusters {
		servers[c.Server] = true
	}
	if len(servers) != len(f.Clusters) {
		t.Errorf("clusters share API servers: %v", servers)
	}
}

// deployAndWait runs a Deployment of two replicas behind a Service and waits until it is Available.
func deployAndWait(ctx context.Context, cs kubernetes.Interface, ns, name string) error {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": name},
			Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}},
	}
	if _, err := cs.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create service: %w", err)
	}
	return testfleet.DeployAndWait(ctx, cs, ns, name, 2)
}

// Given a running fleet, when it receives SIGTERM, then it exits promptly, leaves no process of
// its group behind and every port it listened on can be bound again.
func TestFleetStopsCleanlyOnSIGTERM(t *testing.T) {
	if os.Getenv(testfleet.EnvNoFleet) == "1" {
		testfleet.Get(t) // skips (or fails in CI) with the standard message
	}
	dir := t.TempDir()
	f, err := testfleet.Start(context.Background(), testfleet.StartOptions{Names: []string{"solo"}, Dir: dir})
	if err != nil {
		t.Fatalf("start fleet: %v", err)
	}
	pid := f.Pid()
	var ports []int
	for _, u := range []string{f.Clusters[0].Server, f.Etcd, f.EtcdPeer} {
		p, err := url.Parse(u)
		if err != nil {
			t.Fatalf("parse %q: %v", u, err)
		}
		port, _ := strconv.Atoi(p.Port())
		ports = append(ports, port)
	}
	for _, port := range ports {
		if portFree(port) {
			t.Fatalf("port %d is free while the fleet runs; the test would prove nothing", port)
		}
	}
	if err := f.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if left := groupMembers(pid); len(left) > 0 {
		t.Errorf("processes left in the fleet's process group %d: %v", pid, left)
	}
	if err := syscall.Kill(pid, 0); err == nil {
		t.Errorf("fleet process %d still exists after Stop", pid)
	}
	for _, port := range ports {
		if !portFree(port) {
			t.Errorf("port %d still in use after the fleet stopped", port)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "fleet.json")); !os.IsNotExist(err) {
		t.Errorf("fleet.json still present after stop (err=%v); a stopped fleet must not look ready", err)
	}
}

func portFree(port int) bool {
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// groupMembers lists the processes whose process group is pgid, from /proc.
func groupMembers(pgid int) []string {
	entries, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// Fields after the command name in parentheses: state ppid pgrp ...
		s := string(b)
		rest := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(rest) > 2 && rest[2] == strconv.Itoa(pgid) {
			out = append(out, e.Name()+" "+s[:strings.LastIndexByte(s, ')')+1])
		}
	}
	return out
}
