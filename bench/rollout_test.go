package bench

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/internal/rollout/runner"
	"flotilla.dev/flotilla/internal/store"
	"flotilla.dev/flotilla/internal/store/open"
	"flotilla.dev/flotilla/internal/store/postgres/pgtest"
)

// BenchmarkRolloutRunner runs N rollouts at once (N services, one rollout each) over C simulated
// clusters with the real rollout runner on a real store, no fleet: each rollout targets K
// clusters in two waves (1 cluster, then the rest 3 at a time) and simulated agents report every
// assignment Healthy as soon as it is written (they follow the event log and record an agent
// status, as the server does for a real report).
//
// "succeed" runs every rollout to the end and reports the time per transition (wall time of the
// whole run divided by the transitions the runner committed, and the runner's own step and commit
// time per transition) and the store writes per transition (events by kind).
//
// "rollback" gives each rollout an analysis after its first wave that fails as soon as it starts,
// and reports the time from the analysis returning Failed to the rollback's assignment being
// committed (p50, p99, max over the N rollouts, all failing at about the same time).
//
// N is 1,000 (FLOTILLA_BENCH_ROLLOUTS), C 1,000 (FLOTILLA_BENCH_CLUSTERS), K 10. The store is
// SQLite, or PostgreSQL with FLOTILLA_BENCH_POSTGRES=1 (a fresh database from pgtest).
//
//	go test ./bench -run '^$' -bench RolloutRunner -benchtime 1x -timeout 30m
func BenchmarkRolloutRunner(b *testing.B) {
	n, c := envInt(b, "FLOTILLA_BENCH_ROLLOUTS", 1000), envInt(b, "FLOTILLA_BENCH_CLUSTERS", 1000)
	for _, tc := range []struct {
		name      string
		failEvery int // every failEvery-th rollout's analysis fails; 0: no analysis
	}{{"succeed", 0}, {"rollback-1-in-100", 100}, {"rollback-all", 1}} {
		b.Run(fmt.Sprintf("%s/rollouts=%d/clusters=%d", tc.name, n, c), func(b *testing.B) {
			for range b.N {
				benchRollouts(b, n, c, 10, tc.failEvery)
			}
		})
	}
}

func envInt(b *testing.B, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 1 {
		b.Fatalf("%s=%q: want a positive number", name, s)
	}
	return v
}

var benchActor = store.Actor{Kind: store.ActorSystem, Name: "bench"}

// benchLimit bounds one run.
const benchLimit = 10 * time.Minute

func benchDigest(s string) string {
	h := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(h[:])
}

func benchStore(b *testing.B) store.Store {
	b.Helper()
	dsn := filepath.Join(b.TempDir(), "flotilla.db")
	if os.Getenv("FLOTILLA_BENCH_POSTGRES") == "1" {
		dsn = pgtest.NewDatabase(b)
	}
	st, err := open.Open(context.Background(), dsn)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	return st
}

// simAgents follows the event log and answers every assignment change with an agent status
// reporting each assigned release Healthy.
func simAgents(ctx context.Context, st store.Store, from int64) {
	seq := map[string]int64{}
	after := from
	for ctx.Err() == nil {
		latest, err := st.LatestSeq(ctx)
		if err != nil {
			return
		}
		evs, err := st.Events(ctx, after, 1000, store.EventFilter{Kinds: []string{store.KindAssignments}})
		if err != nil {
			return
		}
		for _, ev := range evs {
			after = ev.Seq
			var ch store.AssignmentsChange
			if json.Unmarshal(ev.Object.Spec, &ch) != nil {
				continue
			}
			for _, ds := range ch.Changed {
				type svc struct {
					Service string `json:"service"`
					Release string `json:"release"`
					Health  string `json:"health"`
				}
				sum := struct {
					Health   string `json:"health"`
					Services []svc  `json:"services"`
				}{Health: v1.HealthHealthy}
				for _, a := range ds.Assignments {
					sum.Services = append(sum.Services, svc{a.Service, a.Release, v1.HealthHealthy})
				}
				data, _ := json.Marshal(sum)
				seq[ds.Cluster]++
				_, _ = st.RecordAgentStatus(ctx, store.AgentStatus{Cluster: ds.Cluster, Seq: seq[ds.Cluster], Epoch: 1,
					Health: v1.HealthHealthy, Summary: data, Report: data})
			}
		}
		if len(evs) < 1000 {
			// Seen everything up to latest: wait for a newer event of any kind.
			after = max(after, latest)
			if st.WaitForEvent(ctx, after) != nil {
				return
			}
		}
	}
}

func benchRollouts(b *testing.B, n, nc, k, failEvery int) {
	fail := failEvery > 0
	b.StopTimer()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := benchStore(b)
	clusters := make([]string, nc)
	var objs []*store.Object
	for i := range clusters {
		clusters[i] = fmt.Sprintf("c%04d", i)
		var labels map[string]string
		if i%k == 0 {
			// The first cluster of each rollout's targets is its first wave.
			labels = map[string]string{"first": "true"}
		}
		objs = append(objs, &store.Object{Kind: v1.KindCluster, Name: clusters[i], Labels: labels, Spec: json.RawMessage(`{}`)})
	}
	strategy := v1.RolloutStrategySpec{Type: v1.StrategyRolling, Waves: []v1.Wave{
		{Name: "first", Clusters: &v1.LabelSelector{MatchLabels: map[string]string{"first": "true"}}},
		{Name: "rest", Clusters: &v1.LabelSelector{}, MaxParallel: "3"}}}
	if fail {
		strategy.Waves[0].After = []v1.Gate{{Analysis: &v1.AnalysisRef{Template: "errors"}}}
	}
	spec, _ := json.Marshal(strategy)
	objs = append(objs, &store.Object{Kind: v1.KindRolloutStrategy, Name: "waves", Spec: spec},
		&store.Object{Kind: v1.KindAnalysisTemplate, Name: "errors", Spec: json.RawMessage(`{"metrics":[{"name":"errors","provider":{"health":{}}}]}`)})
	var as []store.Assignment
	targets := make([][]string, n)
	for i := range n {
		svc := fmt.Sprintf("svc%04d", i)
		objs = append(objs, &store.Object{Kind: v1.KindService, Name: svc,
			Spec: json.RawMessage(`{"source":{"name":"s"},"placement":{"clusterSelector":{}},"strategy":"waves"}`)})
		for j := range k {
			targets[i] = append(targets[i], clusters[(i*k+j)%nc])
		}
		for _, r := range []string{"r1", "r2"} {
			rel := svc + "-" + r
			status, _ := json.Marshal(v1.ReleaseStatus{Phase: v1.ReleaseRendered,
				Bundles: []v1.ReleaseBundle{{Digest: benchDigest(rel), Clusters: targets[i]}}})
			objs = append(objs, &store.Object{Kind: v1.KindRelease, Name: rel, Status: status, // Apply ignores it; see below
				Spec: json.RawMessage(`{"service":"` + svc + `","commit":{"sha":"0123456789abcdef0123456789abcdef01234567"},"serviceSpec":{"source":{"name":"s"},"placement":{"clusterSelector":{}}}}`)})
			if _, err := st.PutBundle(ctx, benchDigest(rel), []byte(rel), benchActor); err != nil {
				b.Fatal(err)
			}
		}
		for _, c := range targets[i] {
			as = append(as, store.Assignment{Cluster: c, Service: svc, Release: svc + "-r1", Bundle: benchDigest(svc + "-r1")})
		}
	}
	for start := 0; start < len(objs); start += 500 {
		if _, err := st.Apply(ctx, objs[start:min(start+500, len(objs))], benchActor); err != nil {
			b.Fatal(err)
		}
	}
	// Apply keeps status: write the releases' bundles and the first-wave label.
	for i := range n {
		for _, r := range []string{"r1", "r2"} {
			rel := fmt.Sprintf("svc%04d-%s", i, r)
			o, err := st.Get(ctx, v1.KindRelease, rel)
			if err != nil {
				b.Fatal(err)
			}
			o.Status, _ = json.Marshal(v1.ReleaseStatus{Phase: v1.ReleaseRendered,
				Bundles: []v1.ReleaseBundle{{Digest: benchDigest(rel), Clusters: targets[i]}}})
			if _, err := st.UpdateStatus(ctx, o, benchActor); err != nil {
				b.Fatal(err)
			}
		}
	}
	for start := 0; start < len(as); start += 2000 {
		if _, err := st.SetAssignments(ctx, as[start:min(start+2000, len(as))], benchActor); err != nil {
			b.Fatal(err)
		}
	}
	from, _ := st.LatestSeq(ctx)
	go simAgents(ctx, st, from)

	var (
		mu       sync.Mutex
		failedAt = map[string]time.Time{} // service -> when its analysis returned Failed
	)
	// The simulated agents report only when their assignments change, never as a heartbeat, so
	// they must not count as disconnected during a long run.
	r, err := runner.New(runner.Options{Store: st, Holder: "bench", PollInterval: time.Second, LeaseTTL: 30 * time.Second,
		DisconnectAfter: time.Hour,
		Analyzer: runner.AnalyzerFunc(func(ctx context.Context, req runner.AnalysisRequest, _ func(v1.AnalysisRun)) v1.AnalysisRun {
			var i int
			fmt.Sscanf(req.Service, "svc%d", &i)
			if i%failEvery != 0 {
				return v1.AnalysisRun{ID: req.ID, Phase: v1.GatePassed}
			}
			mu.Lock()
			failedAt[req.Service] = time.Now()
			mu.Unlock()
			return v1.AnalysisRun{ID: req.ID, Phase: v1.GateFailed}
		})})
	if err != nil {
		b.Fatal(err)
	}
	var ros []*store.Object
	for i := range n {
		svc := fmt.Sprintf("svc%04d", i)
		spec, _ := json.Marshal(v1.RolloutSpec{Service: svc, Release: svc + "-r2"})
		ros = append(ros, &store.Object{Kind: v1.KindRollout, Name: svc + "-r2", Spec: spec})
	}
	runCtx, stopRunner := context.WithCancel(ctx)
	done := make(chan struct{})
	begin, _ := st.LatestSeq(ctx)
	b.StartTimer()
	start := time.Now()
	for s := 0; s < len(ros); s += 500 {
		if _, err := st.Apply(ctx, ros[s:min(s+500, len(ros))], benchActor); err != nil {
			b.Fatal(err)
		}
	}
	go func() {
		defer close(done)
		_ = r.Run(runCtx)
	}()
	want := func(name string) v1.RolloutPhase {
		var i int
		fmt.Sscanf(name, "svc%d", &i)
		if fail && i%failEvery == 0 {
			return v1.RolloutRolledBack
		}
		return v1.RolloutSucceeded
	}
	for {
		recs, err := st.RolloutRecords(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if len(recs) == 0 {
			break
		}
		if time.Since(start) > benchLimit {
			for _, rr := range recs[:min(5, len(recs))] {
				b.Logf("still running: %s: %s", rr.Object.Name, rr.Object.Status)
			}
			b.Fatalf("%d rollouts still running after %s", len(recs), benchLimit)
		}
		time.Sleep(time.Second)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	stopRunner()
	<-done
	stats := r.Stats()

	// Check the outcome and count the writes.
	l, err := st.List(ctx, v1.KindRollout, store.ListOptions{})
	if err != nil {
		b.Fatal(err)
	}
	for _, o := range l.Items {
		var rs v1.RolloutStatus
		_ = json.Unmarshal(o.Status, &rs)
		if rs.Phase != want(o.Name) {
			b.Fatalf("rollout %s ended %s (%s), want %s", o.Name, rs.Phase, rs.Message, want(o.Name))
		}
	}
	counts := map[string]int{}
	reassigned := map[string]time.Time{}
	for after := begin; ; {
		evs, err := st.Events(ctx, after, 5000, store.EventFilter{})
		if err != nil {
			b.Fatal(err)
		}
		for _, ev := range evs {
			after = ev.Seq
			key := ev.Kind + " " + string(ev.Type)
			counts[key]++
			if fail && ev.Kind == store.KindAssignments && ev.Actor == runner.Actor {
				var ch store.AssignmentsChange
				_ = json.Unmarshal(ev.Object.Spec, &ch)
				for _, ds := range ch.Changed {
					for _, a := range ds.Assignments {
						if strings.HasSuffix(a.Release, "-r1") && slices.Contains(strings.Split(ev.Name, ","), a.Service) {
							if _, seen := reassigned[a.Service]; !seen {
								reassigned[a.Service] = ev.Time
							}
						}
					}
				}
			}
		}
		if len(evs) < 5000 {
			break
		}
	}
	runnerWrites := 0
	var kinds []string
	for k, v := range counts {
		if !strings.HasPrefix(k, store.KindAgentStatus) && !strings.HasPrefix(k, "Rollout Created") {
			runnerWrites += v
		}
		kinds = append(kinds, fmt.Sprintf("%s=%d", k, v))
	}
	slices.Sort(kinds)
	t := float64(stats.Transitions)
	b.ReportMetric(float64(elapsed.Microseconds())/t, "µs/transition(wall)")
	b.ReportMetric(float64(stats.StepTime.Microseconds())/t, "µs/step")
	b.ReportMetric(float64(stats.CommitTime.Microseconds())/t, "µs/commit")
	b.ReportMetric(float64(runnerWrites)/t, "events/transition")
	b.ReportMetric(t, "transitions")
	b.Logf("%d rollouts over %d clusters (%d each) in %s: %d transitions; events %s",
		n, nc, k, elapsed.Round(time.Millisecond), stats.Transitions, strings.Join(kinds, " "))
	if fail {
		var lat []time.Duration
		mu.Lock()
		for svc, at := range failedAt {
			if re, ok := reassigned[svc]; ok {
				lat = append(lat, re.Sub(at))
			}
		}
		mu.Unlock()
		if len(lat) != len(failedAt) || len(lat) == 0 {
			b.Fatalf("measured %d failure-to-reassignment latencies, want %d", len(lat), len(failedAt))
		}
		slices.Sort(lat)
		p := func(q float64) time.Duration { return lat[min(len(lat)-1, int(q*float64(len(lat))))] }
		b.ReportMetric(float64(p(0.5).Milliseconds()), "ms-p50-fail-to-reassigned")
		b.ReportMetric(float64(p(0.99).Milliseconds()), "ms-p99-fail-to-reassigned")
		b.ReportMetric(float64(lat[len(lat)-1].Milliseconds()), "ms-max-fail-to-reassigned")
	}
}
