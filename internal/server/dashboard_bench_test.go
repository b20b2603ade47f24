package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/internal/store"
)

// BenchmarkDashboardFleet measures the fleet page at 1,000 clusters, each with an agent report
// of three services: the server's time to answer GET /ui/ (session check, store reads, render,
// gzip) over loopback, and the page's size on the wire.
func BenchmarkDashboardFleet(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("clusters=%d", n), func(b *testing.B) {
			e := newEnv(b)
			fleetOf(b, e, n)
			br := signIn(b, e, "viewer")
			req, _ := http.NewRequest("GET", e.ts.URL+"/ui/", nil)
			req.AddCookie(br.cookie)
			if os.Getenv("BENCH_NO_GZIP") == "" {
				req.Header.Set("Accept-Encoding", "gzip") // as browsers send; the body is counted compressed
			}
			size := 0
			cpu0 := cpuTime()
			b.ResetTimer()
			for b.Loop() {
				resp, err := e.ts.Client().Do(req)
				if err != nil {
					b.Fatal(err)
				}
				data, _ := readAll(resp)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Fatalf("GET /ui/: %d", resp.StatusCode)
				}
				size = len(data)
			}
			b.StopTimer()
			// CPU time of the whole process (server and client) per page: on a shared, busy
			// machine this says more than wall time.
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N)/1e6, "cpu-ms/op")
			b.ReportMetric(float64(size), "bytes/page")
		})
	}
}

// fleetOf stores n clusters in three regions, each with an agent report of three services.
func fleetOf(b testing.TB, e *env, n int) {
	b.Helper()
	ctx := context.Background()
	actor := store.Actor{Kind: store.ActorSystem, Name: "bench"}
	var objs []*store.Object
	for i := range n {
		objs = append(objs, &store.Object{Kind: v1.KindCluster, Name: fmt.Sprintf("prod-%04d", i),
			Labels: map[string]string{"env": "prod", "region": []string{"eu", "us", "ap"}[i%3], "ring": fmt.Sprint(i % 4)}, Spec: json.RawMessage(`{}`)})
	}
	if _, err := e.store.Apply(ctx, objs, actor); err != nil {
		b.Fatal(err)
	}
	for i := range n {
		var svcs []v1.ServiceReport
		var sums []string
		for _, s := range []string{"web", "api", "worker"} {
			sums = append(sums, `{"service":"`+s+`","release":"`+s+`-42","health":"Healthy"}`)
			svcs = append(svcs, v1.ServiceReport{Service: s, Release: s + "-42", Health: v1.HealthHealthy, Objects: []v1.ObjectReport{
				{Group: "apps", Kind: "Deployment", Namespace: s, Name: s, Health: v1.HealthHealthy},
				{Kind: "Service", Namespace: s, Name: s, Health: v1.HealthHealthy},
				{Kind: "ConfigMap", Namespace: s, Name: s + "-config", Health: v1.HealthHealthy}}})
		}
		rep, _ := json.Marshal(v1.AgentStatusReport{Seq: 1, Health: v1.HealthHealthy, Services: svcs})
		if _, err := e.store.RecordAgentStatus(ctx, store.AgentStatus{Cluster: fmt.Sprintf("prod-%04d", i), Seq: 1, Epoch: 1, Health: v1.HealthHealthy,
			Report: rep, Summary: json.RawMessage(`{"health":"Healthy","services":[` + strings.Join(sums, ",") + `]}`), LastHeartbeat: time.Now()}); err != nil {
			b.Fatal(err)
		}
	}
}

// cpuTime is the user and system CPU time of this process.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
