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
						ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
						defer cancel()
						if err := testfleet.DeployAndWait(ctx, c.Client, "default", "bench", 2); err != nil {
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
