package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/client"
	"flotilla.dev/flotilla/internal/bundle"
)

// BenchmarkAgentFanOut starts `flotilla server` on SQLite as its own process and N simulated agents
// (goroutines speaking the real protocol over loopback HTTP, one connection each) long-polling it.
// Each iteration assigns a new release to all N clusters with one call and waits until every agent
// has received its new desired state; the figures are the time from the start of that call to each
// agent's receipt (p50, p99, max over all agents and iterations). Before the first iteration it
// measures the server's resident memory and CPU while all agents are connected and idle.
//
// N is 1,000, or FLOTILLA_BENCH_AGENTS; the idle window is 10s, or FLOTILLA_BENCH_IDLE. The server
// is built from this tree, or is the binary FLOTILLA_BENCH_SERVER names.
//
// Besides the agents' receipt times it reports what separates the server's part from the
// simulated agents', which share the machine's cores with it: the assignment call's duration
// (ms-assign-*: the write and the wake-up of every poll are done when it returns), when each
// answer's headers reached the agent's transport (ms-hdr-*), and the CPU seconds per iteration of
// the server process and of this process with its N agents (cpu-s-server/op, cpu-s-agents/op).
//
//	go test ./bench -run '^$' -bench AgentFanOut -benchtime 10x
//	FLOTILLA_BENCH_AGENTS=10000 FLOTILLA_BENCH_IDLE=30s go test ./bench -run '^$' -bench AgentFanOut -benchtime 5x -timeout 30m
func BenchmarkAgentFanOut(b *testing.B) {
	n := 1000
	if s := os.Getenv("FLOTILLA_BENCH_AGENTS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil || n < 1 {
			b.Fatalf("FLOTILLA_BENCH_AGENTS=%q: want a positive number", s)
		}
	}
	idle := 10 * time.Second
	if s := os.Getenv("FLOTILLA_BENCH_IDLE"); s != "" {
		var err error
		if idle, err = time.ParseDuration(s); err != nil {
			b.Fatalf("FLOTILLA_BENCH_IDLE=%q: %v", s, err)
		}
	}
	b.Run(fmt.Sprintf("agents=%d", n), func(b *testing.B) { benchFanOut(b, n, idle) })
}

func benchFanOut(b *testing.B, n int, idle time.Duration) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := startServer(b, n)
	admin, err := client.New(client.Options{Server: srv.url, Token: srv.token})
	if err != nil {
		b.Fatal(err)
	}
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("c%05d", i)
	}
	for start := 0; start < n; start += 500 {
		var objs []v1.Object
		for _, name := range names[start:min(start+500, n)] {
			c := &v1.Cluster{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindCluster}}
			c.Metadata.Name = name
			objs = append(objs, c)
		}
		if _, err := admin.Apply(ctx, objs); err != nil {
			b.Fatalf("create clusters: %v", err)
		}
	}
	baseRSS := rssMiB(srv.cmd.Process.Pid)
	creds := register(b, ctx, srv.url, admin, names)
	releases := []string{"web-1", "web-2"}
	for i, r := range releases {
		makeRelease(b, ctx, admin, r, fmt.Sprint(i), names)
	}

	// One transport for all agents, with room for a kept-alive connection each.
	tr := &http.Transport{MaxIdleConns: n + 100, MaxIdleConnsPerHost: n + 100, IdleConnTimeout: 5 * time.Minute,
		DialContext: (&net.Dialer{Timeout: 10 * time.Second}).DialContext}
	defer tr.CloseIdleConnections()
	type receipt struct {
		digest string
		at     time.Time // decoded by the agent
		hdr    time.Time // its answer's headers read by the agent's transport
	}
	receipts := make(chan receipt, 4*n)
	var wg sync.WaitGroup
	for _, cred := range creds {
		st := &stampTransport{rt: tr}
		agent, err := client.New(client.Options{Server: srv.url, Token: cred, HTTPClient: &http.Client{Transport: st, Timeout: time.Minute}})
		if err != nil {
			b.Fatal(err)
		}
		wg.Go(func() {
			var after string
			var backoff client.Backoff
			for ctx.Err() == nil {
				ds, err := agent.Desired(ctx, client.DesiredOptions{After: after})
				if err != nil {
					if ctx.Err() == nil {
						_ = client.Sleep(ctx, backoff.Delay(err))
					}
					continue
				}
				backoff.Reset()
				if ds != nil {
					after = ds.Digest
					receipts <- receipt{ds.Digest, time.Now(), st.last}
				}
			}
		})
	}
	defer wg.Wait()
	defer cancel()
	for range n {
		<-receipts // every agent has its initial (empty) state and polls again
	}
	time.Sleep(time.Second)

	pid := srv.cmd.Process.Pid
	cpu0, t0 := cpuSeconds(pid), time.Now()
	time.Sleep(idle)
	idleCores := (cpuSeconds(pid) - cpu0) / time.Since(t0).Seconds()
	idleRSS := rssMiB(pid)

	var lat, hdr, assign []time.Duration
	var serverCPU, agentsCPU float64
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		srvCPU0, selfCPU0 := cpuSeconds(pid), cpuSeconds(os.Getpid())
		start := time.Now()
		resp, err := admin.Assign(ctx, v1.AssignRequest{Service: "web", Release: releases[i%2], Clusters: names})
		if err != nil {
			b.Fatalf("assign: %v", err)
		}
		assign = append(assign, time.Since(start))
		if len(resp.Changed) != n {
			b.Fatalf("assign changed %d clusters, want %d", len(resp.Changed), n)
		}
		want := resp.Changed[0].Digest
		for got := 0; got < n; {
			r := <-receipts
			if r.digest == want {
				lat = append(lat, r.at.Sub(start))
				hdr = append(hdr, r.hdr.Sub(start))
				got++
			}
		}
		serverCPU += cpuSeconds(pid) - srvCPU0
		agentsCPU += cpuSeconds(os.Getpid()) - selfCPU0
	}
	b.StopTimer()
	pct := func(d []time.Duration, p float64) float64 {
		slices.Sort(d)
		return d[min(len(d)-1, int(float64(len(d))*p))].Seconds() * 1000
	}
	b.ReportMetric(pct(lat, 0.50), "ms-p50")
	b.ReportMetric(pct(lat, 0.99), "ms-p99")
	b.ReportMetric(pct(lat, 1), "ms-max")
	b.ReportMetric(pct(hdr, 0.99), "ms-hdr-p99")
	b.ReportMetric(pct(hdr, 1), "ms-hdr-max")
	b.ReportMetric(pct(assign, 0.50), "ms-assign-p50")
	b.ReportMetric(pct(assign, 1), "ms-assign-max")
	b.ReportMetric(serverCPU/float64(len(assign)), "cpu-s-server/op")
	b.ReportMetric(agentsCPU/float64(len(assign)), "cpu-s-agents/op")
	b.ReportMetric(baseRSS, "MiB-rss-base")
	b.ReportMetric(idleRSS, "MiB-rss-idle")
	b.ReportMetric(idleCores, "cores-idle")
}

// stampTransport notes when the headers of its last answer were read: one per agent, used only by
// that agent's goroutine.
type stampTransport struct {
	rt   http.RoundTripper
	last time.Time
}

func (t *stampTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.rt.RoundTrip(r)
	t.last = time.Now()
	return resp, err
}

type benchServer struct {
	url, token string
	cmd        *exec.Cmd
}

// startServer builds the flotilla binary and runs `flotilla server` on a fresh SQLite database.
func startServer(b *testing.B, agents int) *benchServer {
	b.Helper()
	dir := b.TempDir()
	bin := os.Getenv("FLOTILLA_BENCH_SERVER") // a prebuilt binary, to compare two builds
	if bin == "" {
		bin = filepath.Join(dir, "flotilla")
		build := exec.Command("go", "build", "-o", bin, "flotilla.dev/flotilla/cmd/flotilla")
		build.Stderr = os.Stderr
		if err := build.Run(); err != nil {
			b.Fatalf("build flotilla: %v", err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	tokenFile := filepath.Join(dir, "admin.token")
	cmd := exec.Command(bin, "server", "--listen", addr, "--data-dir", filepath.Join(dir, "data"), "--admin-token-file", tokenFile,
		"--log-level", "warn", "--max-long-polls", strconv.Itoa(2*agents+100))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(40 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	url := "http://" + addr
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("server at %s not ready after 60s", url)
		}
		time.Sleep(50 * time.Millisecond)
	}
	tok, err := os.ReadFile(tokenFile)
	if err != nil {
		b.Fatal(err)
	}
	return &benchServer{url: url, token: strings.TrimSpace(string(tok)), cmd: cmd}
}

// register issues a bootstrap token for every cluster and redeems it, as agents do, with a few
// workers; it returns the agent credentials.
func register(b *testing.B, ctx context.Context, url string, admin *client.Client, names []string) []string {
	b.Helper()
	anon, err := client.New(client.Options{Server: url})
	if err != nil {
		b.Fatal(err)
	}
	creds := make([]string, len(names))
	work := make(chan int)
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := range work {
				tok, err := admin.CreateBootstrapToken(ctx, names[i], 0)
				if err == nil {
					var reg *v1.RegisterResponse
					if reg, err = anon.Register(ctx, v1.RegisterRequest{Token: tok.Token}); err == nil {
						creds[i] = reg.Credential
						continue
					}
				}
				select {
				case errs <- fmt.Errorf("register %s: %w", names[i], err):
				default:
				}
			}
		})
	}
	for i := range names {
		work <- i
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
	return creds
}

// makeRelease creates a rendered Release of service web whose one inline bundle serves every
// cluster.
func makeRelease(b *testing.B, ctx context.Context, admin *client.Client, name, value string, clusters []string) {
	b.Helper()
	bd, err := bundle.New([]map[string]any{{"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": "settings", "namespace": "web"}, "data": map[string]any{"value": value}}})
	if err != nil {
		b.Fatal(err)
	}
	manifest, _ := json.Marshal(bd.Objects()[0])
	rel := &v1.Release{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindRelease}}
	rel.Metadata.Name = name
	rel.Spec.Service = "web"
	rel.Spec.Commit.SHA = strings.Repeat("cd", 20)
	rel.Spec.ServiceSpec.Source.Name = "shop"
	rel.Spec.ServiceSpec.Placement.ClusterSelector = &v1.LabelSelector{}
	created, err := admin.Create(ctx, rel)
	if err != nil {
		b.Fatalf("create release %s: %v", name, err)
	}
	rel = created.(*v1.Release)
	rel.Status.Phase = v1.ReleaseRendered
	rel.Status.Bundles = []v1.ReleaseBundle{{Digest: bd.Digest(), Clusters: clusters, Manifests: []json.RawMessage{manifest}}}
	if _, err := admin.UpdateStatus(ctx, rel); err != nil {
		b.Fatalf("render release %s: %v", name, err)
	}
}

// cpuSeconds returns the user plus system CPU time of process pid.
func cpuSeconds(pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	// Fields after the command name (which may hold spaces) start after the last ')'.
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / 100 // clock ticks, 100 per second on Linux
}
