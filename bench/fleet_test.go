package bench

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"flotilla.dev/flotilla/internal/testfleet"
)

// BenchmarkFleetStartup measures, for N clusters, the time from starting the fleet program to a
// Deployment of two replicas being Available in every cluster, and the fleet's resident memory
// then. Run: go test ./bench -run '^$' -bench FleetStartup -benchtime 1x
func BenchmarkFleetStartup(b *testing.B) {
	for _, n := range []int{3, 5} {
		b.Run(fmt.Sprintf("clusters=%d", n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				began := time.Now()
				f, err := testfleet.Start(context.Background(), testfleet.StartOptions{Clusters: n, Dir: b.TempDir()})
				if err != nil {
					b.Fatal(err)
				}
				ready := time.Since(began)
				var wg sync.WaitGroup
				errs := make(chan error, n)
				for _, c := range f.Clusters {
					wg.Go(func() {
						if err := deploy(c.Client); err != nil {
							errs <- fmt.Errorf("%s: %w", c.Name, err)
						}
					})
				}
				wg.Wait()
				available := time.Since(began)
				rss := rssMiB(f.Pid())
				if err := f.Stop(); err != nil {
					b.Fatal(err)
				}
				close(errs)
				for err := range errs {
					b.Fatal(err)
				}
				b.ReportMetric(ready.Seconds(), "s-ready")
				b.ReportMetric(available.Seconds(), "s-available")
				b.ReportMetric(rss, "MiB-rss")
			}
		})
	}
}

func deploy(cs kubernetes.Interface) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	labels := map[string]string{"app": "bench"}
	replicas := int32(2)
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "bench"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "bench:1"}}},
			},
		},
	}
	if _, err := cs.AppsV1().Deployments("default").Create(ctx, d, metav1.CreateOptions{}); err != nil {
		return err
	}
	for {
		got, err := cs.AppsV1().Deployments("default").Get(ctx, "bench", metav1.GetOptions{})
		if err == nil && got.Status.AvailableReplicas == replicas {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("deployment not available: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// rssMiB reads a process's resident set size from /proc.
func rssMiB(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			kb, _ := strconv.ParseFloat(strings.Fields(line)[1], 64)
			return kb / 1024
		}
	}
	return -1
}
