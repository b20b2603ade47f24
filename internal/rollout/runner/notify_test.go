package runner_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/internal/notify"
	"flotilla.dev/flotilla/internal/rollout"
	"flotilla.dev/flotilla/internal/rollout/runner"
)

// received is a notification as the test's hook saw it, with the
// rollout's phase in the store at that moment.
type received struct {
	n      notify.Notification
	stored v1.RolloutPhase
}

// notified runs a real notifier that posts to a test hook, which reads
// the rollout from the store as each notification arrives.
func notified(t *testing.T, f *fleet) (*notify.Notifier, func() []received) {
	t.Helper()
	var mu sync.Mutex
	var got []received
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var n notify.Notification
		if err := json.Unmarshal(body, &n); err != nil {
			t.Errorf("notification body %s: %v", body, err)
		}
		o, err := f.st.Get(r.Context(), v1.KindRollout, n.Rollout)
		var st v1.RolloutStatus
		if err == nil {
			_ = json.Unmarshal(o.Status, &st)
		}
		mu.Lock()
		got = append(got, received{n: n, stored: st.Phase})
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	n, err := notify.New(notify.Options{URLs: []string{srv.URL}, Backoff: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); n.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return n, func() []received {
		mu.Lock()
		defer mu.Unlock()
		return append([]received(nil), got...)
	}
}

// counter reads one counter (or gauge) of reg by name and label value.
// prometheus/testutil would add a module to go.mod; Gather reads the same.
func counter(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label != "" && (len(m.GetLabel()) == 0 || m.GetLabel()[0].GetValue() != label) {
				continue
			}
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return -1
}

// waitNotified waits until a notification of rollout says it ended
// (its phase is final) and, with want a message fragment, one containing it.
func waitNotified(t *testing.T, got func() []received, rollout, want string) []received {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		var mine []received
		for _, r := range got() {
			if r.n.Rollout == rollout {
				mine = append(mine, r)
			}
		}
		for _, r := range mine {
			if strings.Contains(r.n.Message, want) {
				return mine
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no notification of %s saying %q; got %+v", rollout, want, got())
	return nil
}

var finalPhase = map[string]bool{string(v1.RolloutSucceeded): true, string(v1.RolloutRolledBack): true,
	string(v1.RolloutFailed): true, string(v1.RolloutAborted): true}

// checkStoredFirst checks that each notification arrived with its
// transition in the store: a notification of an ended rollout finds the
// rollout ended so, and no notification finds it not started.
func checkStoredFirst(t *testing.T, rs []received) {
	t.Helper()
	for _, r := range rs {
		if r.stored == "" || r.stored == v1.RolloutPending {
			t.Errorf("notification %q arrived with the rollout %q in the store; want its transition stored first", r.n.Message, r.stored)
		}
		if finalPhase[r.n.Phase] && string(r.stored) != r.n.Phase {
			t.Errorf("notification %q (phase %s) arrived with the rollout %s in the store", r.n.Message, r.n.Phase, r.stored)
		}
		if r.n.DashboardPath != "/ui/rollouts/"+r.n.Rollout || r.n.Service != "web" || r.n.Time.IsZero() {
			t.Errorf("notification %+v; want service web, its time and dashboard path", r.n)
		}
	}
}

func messages(rs []received) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.n.Phase + ": " + r.n.Message
	}
	return out
}

func TestNotificationsAndMetricsFollowTransitions(t *testing.T) {
	f := newFleet(t, threeClusters)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f.agents(ctx, 20*time.Millisecond)
	f.strategy("waves", waves())
	f.create(v1.KindAnalysisTemplate, "error-rate", nil, `{"metrics":[{"name":"errors","provider":{"health":{}}}]}`)
	spec := waves()
	spec.Type, spec.TrafficRouter = v1.StrategyCanary, "edge"
	spec.Waves[0].Steps = []v1.CanaryStep{{Weight: 10, Analysis: []v1.AnalysisRef{{Template: "error-rate"}}}}
	f.strategy("canary", spec)
	n, got := notified(t, f)
	reg := prometheus.NewRegistry()
	reg.MustRegister(n)
	_, stop := f.run("a", func(o *runner.Options) {
		o.Notifier, o.Registry = n, reg
		o.Analyzer = runner.AnalyzerFunc(func(ctx context.Context, req runner.AnalysisRequest, progress func(v1.AnalysisRun)) v1.AnalysisRun {
			return v1.AnalysisRun{ID: req.ID, Phase: v1.GateFailed, Message: "error rate 50%"}
		})
	})
	defer stop()

	// A rolling rollout succeeds.
	f.rollout("r2", "r2", "waves")
	ok := waitNotified(t, got, "r2", "ended Succeeded")
	checkStoredFirst(t, ok)
	if m := messages(ok); !strings.Contains(m[0], "started") || !strings.HasPrefix(m[len(m)-1], "Succeeded: rollout of r2 ended Succeeded") {
		t.Errorf("notifications of r2: %q; want started first and ended Succeeded last", m)
	}

	// A canary fails its analysis, rolls back and is restored.
	f.rollout("r3", "r3", "canary")
	bad := waitNotified(t, got, "r3", "restored")
	checkStoredFirst(t, bad)
	m := messages(bad)
	var ended, restored int = -1, -1
	for i, s := range m {
		if strings.HasPrefix(s, "RolledBack: rollout of r3 ended RolledBack") {
			ended = i
		}
		if strings.Contains(s, "restored: every touched cluster") {
			restored = i
		}
	}
	if !strings.Contains(m[0], "started") || ended < 0 || restored < ended {
		t.Errorf("notifications of r3: %q; want started first, then ended RolledBack, then restored", m)
	}

	for _, c := range []struct {
		name, label string
		want        float64
	}{
		{"flotilla_rollout_outcomes_total", "succeeded", 1},
		{"flotilla_rollout_outcomes_total", "rolled_back", 1},
		{"flotilla_rollout_outcomes_total", "failed", 0},
		{"flotilla_analysis_runs_total", "failed", 1},
		{"flotilla_notifications_total", "dropped", 0},
	} {
		if v := counter(t, reg, c.name, c.label); v != c.want {
			t.Errorf("%s{%s} = %v; want %v", c.name, c.label, v, c.want)
		}
	}
	if v := counter(t, reg, "flotilla_rollout_transitions_total", ""); v < 4 {
		t.Errorf("flotilla_rollout_transitions_total = %v; want the transitions counted", v)
	}
	if v := counter(t, reg, "flotilla_notifications_total", "sent"); v < float64(len(ok)+len(bad)) {
		t.Errorf("flotilla_notifications_total{sent} = %v; want at least the %d received", v, len(ok)+len(bad))
	}
	t.Logf("r2: %q", messages(ok))
	t.Logf("r3: %q", m)
}

// TestPeoplesActionsAreNotified pauses, resumes and aborts a rollout that waits for approval
// through Act, as a replica that does not lead would, and checks that the leader tells people
// each change once it reads it back, and counts the abort.
func TestPeoplesActionsAreNotified(t *testing.T) {
	f := newFleet(t, threeClusters)
	ctx := f.gated(t)
	n, got := notified(t, f)
	reg := prometheus.NewRegistry()
	_, stop := f.run("a", func(o *runner.Options) { o.Notifier, o.Registry = n, reg })
	defer stop()
	f.rollout("r2", "r2", "gated")
	waitNotified(t, got, "r2", "waiting for approval")
	if v := counter(t, reg, "flotilla_rollouts_active", string(v1.RolloutWaitingApproval)); v != 1 {
		t.Errorf("flotilla_rollouts_active{WaitingApproval} = %v; want 1", v)
	}
	if _, err := runner.Act(ctx, f.st, "r2", rollout.Pause{}, admin, time.Now); err != nil {
		t.Fatal(err)
	}
	waitNotified(t, got, "r2", "rollout is now Paused")
	if _, err := runner.Act(ctx, f.st, "r2", rollout.Abort{}, admin, time.Now); err != nil {
		t.Fatal(err)
	}
	rs := waitNotified(t, got, "r2", "rollout is now Aborted")
	checkStoredFirst(t, rs)
	if v := counter(t, reg, "flotilla_rollout_outcomes_total", "aborted"); v != 1 {
		t.Errorf("flotilla_rollout_outcomes_total{aborted} = %v; want 1", v)
	}
	t.Logf("r2: %q", messages(rs))
}
