package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/client"
	"flotilla.dev/flotilla/internal/bundle"
	"flotilla.dev/flotilla/internal/testfleet"
)

// BenchmarkAgentFootprint measures the resident memory of one `flotilla agent` process that keeps
// N ConfigMaps applied in a local cluster (N is 1,000, or FLOTILLA_BENCH_OBJECTS): after the apply
// it lets the agent idle for FLOTILLA_BENCH_IDLE (default 70s, so that at least two observe passes
// of the default 30s interval run: each reads every object back and checks drift) and samples
// its RSS every 500 ms. Reported: RSS at the end of the idle window, the highest idle sample, the
// peak (VmHWM, which includes the apply) and the anonymous (heap, stacks) and file-backed (the
// binary's pages) parts at the end. Extra environment for the agent
// process (e.g. GOGC=50) is taken from FLOTILLA_BENCH_AGENT_ENV (space separated).
//
// It runs twice: binary=flotilla runs `flotilla agent`, binary=flotilla-agent the agent-only
// binary (cmd/flotilla-agent), which links none of the server, renderers and other commands.
//
//	go test ./bench -run '^$' -bench AgentFootprint -benchtime 1x -timeout 20m
func BenchmarkAgentFootprint(b *testing.B) {
	n := 1000
	if s := os.Getenv("FLOTILLA_BENCH_OBJECTS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil || n < 1 {
			b.Fatalf("FLOTILLA_BENCH_OBJECTS=%q: want a positive number", s)
		}
	}
	idle := 70 * time.Second
	if s := os.Getenv("FLOTILLA_BENCH_IDLE"); s != "" {
		var err error
		if idle, err = time.ParseDuration(s); err != nil {
			b.Fatalf("FLOTILLA_BENCH_IDLE=%q: %v", s, err)
		}
	}
	ctx := context.Background()
	f, err := testfleet.Start(ctx, testfleet.StartOptions{Clusters: 1, Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = f.Stop() })
	c := f.Clusters[0]
	srv := startServer(b, 10)
	admin, err := client.New(client.Options{Server: srv.url, Token: srv.token})
	if err != nil {
		b.Fatal(err)
	}
	cl := &v1.Cluster{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindCluster}}
	cl.Metadata.Name = c.Name
	if _, err := admin.Create(ctx, cl); err != nil {
		b.Fatal(err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "footprint"}}
	if _, err := c.Client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}

	agentBin := filepath.Join(b.TempDir(), "flotilla-agent")
	// Built as `make build` builds it: stripped.
	build := exec.Command("go", "build", "-ldflags", "-s -w", "-o", agentBin, "flotilla.dev/flotilla/cmd/flotilla-agent")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		b.Fatalf("build flotilla-agent: %v", err)
	}
	run := 0
	for _, bin := range []string{srv.cmd.Path, agentBin} {
		b.Run("binary="+filepath.Base(bin), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				run++
				footprintOnce(b, ctx, srv.url, admin, c, bin, n, run, idle)
			}
		})
	}
}

// footprintOnce runs one agent process from bin, applies a release of n ConfigMaps through it,
// lets it idle and reports its memory.
func footprintOnce(b *testing.B, ctx context.Context, url string, admin *client.Client, c *testfleet.Cluster, bin string, n, i int, idle time.Duration) {
	b.Helper()
	tok, err := admin.CreateBootstrapToken(ctx, c.Name, 0)
	if err != nil {
		b.Fatal(err)
	}
	agent := exec.Command(bin, "agent", "--server", url, "--token", tok.Token, "--kubeconfig", c.Kubeconfig,
		"--state-dir", filepath.Join(b.TempDir(), "state"), "--holder", fmt.Sprintf("footprint-%d", i))
	agent.Env = append(os.Environ(), strings.Fields(os.Getenv("FLOTILLA_BENCH_AGENT_ENV"))...)
	logFile, err := os.Create(filepath.Join(b.TempDir(), "agent.log"))
	if err != nil {
		b.Fatal(err)
	}
	agent.Stderr = logFile
	if err := agent.Start(); err != nil {
		b.Fatal(err)
	}
	stop := func() {
		_ = agent.Process.Signal(os.Interrupt)
		_ = agent.Wait()
	}
	rel := fmt.Sprintf("footprint-%d", i)
	digest := footprintRelease(b, ctx, admin, rel, n, i, c.Name)
	if _, err := admin.Assign(ctx, v1.AssignRequest{Service: "footprint", Release: rel, Clusters: []string{c.Name}}); err != nil {
		stop()
		b.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Minute)
	for {
		rep, err := admin.AgentReport(ctx, c.Name)
		if err == nil && len(rep.Report.Services) == 1 && rep.Report.Services[0].Bundle == digest &&
			rep.Report.AppliedDigest == rep.Report.DesiredDigest && len(rep.Report.Services[0].Objects) == n {
			break
		}
		if time.Now().After(deadline) {
			stop()
			log, _ := os.ReadFile(logFile.Name())
			b.Fatalf("the agent did not report %d objects applied within 5m (last: %v); its log:\n%s", n, err, tail(string(log), 40))
		}
		time.Sleep(200 * time.Millisecond)
	}
	pid := agent.Process.Pid
	var last, highest float64
	for end := time.Now().Add(idle); time.Now().Before(end); time.Sleep(500 * time.Millisecond) {
		last = rssMiB(pid)
		highest = max(highest, last)
	}
	hwm := procStatus(pid, "VmHWM")
	anon, file := procStatus(pid, "RssAnon"), procStatus(pid, "RssFile")
	stop()
	b.ReportMetric(last, "MiB-rss-idle")
	b.ReportMetric(highest, "MiB-rss-idle-max")
	b.ReportMetric(hwm, "MiB-rss-peak")
	b.ReportMetric(anon, "MiB-rss-anon")
	b.ReportMetric(file, "MiB-rss-file")
}

// footprintRelease creates a rendered Release of service footprint with n ConfigMaps of about
// 300 bytes of data each and returns its bundle digest.
func footprintRelease(b *testing.B, ctx context.Context, admin *client.Client, name string, n, iter int, cluster string) string {
	b.Helper()
	objs := make([]map[string]any, n)
	for i := range objs {
		objs[i] = map[string]any{"apiVersion": "v1", "kind": "ConfigMap",
			"metadata": map[string]any{"name": fmt.Sprintf("cm-%04d", i), "namespace": "footprint", "labels": map[string]any{"app": "footprint"}},
			"data":     map[string]any{"iteration": strconv.Itoa(iter), "payload": strings.Repeat("x", 300)}}
	}
	bd, err := bundle.New(objs)
	if err != nil {
		b.Fatal(err)
	}
	manifests := make([]json.RawMessage, n)
	for i, o := range bd.Objects() {
		manifests[i], _ = json.Marshal(o)
	}
	rel := &v1.Release{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindRelease}}
	rel.Metadata.Name = name
	rel.Spec.Service = "footprint"
	rel.Spec.Commit.SHA = strings.Repeat("ef", 20)
	rel.Spec.ServiceSpec.Source.Name = "shop"
	rel.Spec.ServiceSpec.Placement.ClusterSelector = &v1.LabelSelector{}
	created, err := admin.Create(ctx, rel)
	if err != nil {
		b.Fatalf("create release %s: %v", name, err)
	}
	rel = created.(*v1.Release)
	rel.Status.Phase = v1.ReleaseRendered
	rel.Status.Bundles = []v1.ReleaseBundle{{Digest: bd.Digest(), Clusters: []string{cluster}, Manifests: manifests}}
	if _, err := admin.UpdateStatus(ctx, rel); err != nil {
		b.Fatalf("render release %s: %v", name, err)
	}
	return bd.Digest()
}

var statusLine = regexp.MustCompile(`(?m)^(\w+):\s+(\d+) kB`)

// procStatus reads one "kB" field of /proc/PID/status in MiB.
func procStatus(pid int, key string) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, m := range statusLine.FindAllStringSubmatch(string(data), -1) {
		if m[1] == key {
			kb, _ := strconv.ParseFloat(m[2], 64)
			return kb / 1024
		}
	}
	return -1
}

func tail(s string, lines int) string {
	l := strings.Split(s, "\n")
	return strings.Join(l[max(0, len(l)-lines):], "\n")
}
