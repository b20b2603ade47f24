package agenttest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/client"
	"flotilla.dev/flotilla/internal/agent"
	"flotilla.dev/flotilla/internal/agent/apply"
	"flotilla.dev/flotilla/internal/analysis"
	"flotilla.dev/flotilla/internal/server"
	"flotilla.dev/flotilla/internal/store"
	"flotilla.dev/flotilla/internal/store/sqlite"
	"flotilla.dev/flotilla/internal/testfleet"
)

// agentFor runs a real server on st in-process and a real agent for
// cluster c of the local fleet, reporting every 300ms.
func agentFor(t *testing.T, st store.Store, c *testfleet.Cluster) {
	t.Helper()
	ctx := context.Background()
	srv, err := server.New(server.Options{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	admTok, _, err := server.BootstrapAdminToken(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := client.New(client.Options{Server: ts.URL, Token: admTok})
	if err != nil {
		t.Fatal(err)
	}
	cl := &v1.Cluster{Metadata: v1.ObjectMeta{Name: c.Name, Labels: map[string]string{"ring": "canary"}}}
	cl.Default()
	if _, err := admin.Create(ctx, cl); err != nil {
		t.Fatalf("create cluster: %v", err)
	}
	bt, err := admin.CreateBootstrapToken(ctx, c.Name, 0)
	if err != nil {
		t.Fatal(err)
	}
	anon, _ := client.New(client.Options{Server: ts.URL})
	reg, err := anon.Register(ctx, v1.RegisterRequest{Token: bt.Token})
	if err != nil {
		t.Fatalf("register: %v", err)
	}
	ac, err := client.New(client.Options{Server: ts.URL, Token: reg.Credential})
	if err != nil {
		t.Fatal(err)
	}
	eng, err := apply.New(c.Config, apply.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ag, err := agent.New(agent.Options{Client: ac, Applier: eng, Holder: "analysis-test", ObserveInterval: 300 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	actx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { _ = ag.Run(actx) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		srv.StopStreams()
		ts.Close()
	})
}

func jobTemplate(t *testing.T, ns string, fail bool) json.RawMessage {
	t.Helper()
	pod := map[string]any{
		"containers": []any{map[string]any{"name": "smoke", "image": "example.invalid/smoke:1",
			"env": []any{map[string]any{"name": "CLUSTER", "value": "{{ .Cluster.Name }}"}}}},
	}
	spec := map[string]any{"backoffLimit": 0, "template": map[string]any{"spec": pod}}
	if fail {
		// No node matches, so the pod never runs and the Job controller
		// fails the Job at its deadline: a real Kubernetes failure.
		pod["nodeSelector"] = map[string]any{"flotilla.dev/no-such-node": "true"}
		spec["activeDeadlineSeconds"] = 2
	}
	b, err := json.Marshal(map[string]any{"metadata": map[string]any{"name": "smoke", "namespace": ns,
		"labels": map[string]any{"flotilla.dev/test-cluster": "{{ .Cluster.Labels.ring }}"}}, "spec": spec})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestJobProviderOnTheLocalFleet(t *testing.T) {
	f := testfleet.Get(t)
	ns := f.Namespace(t)
	c := f.Clusters[0]
	st := openStore(t)
	agentFor(t, st, c)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	a := analysis.New(analysis.Options{Store: st, JobPoll: 200 * time.Millisecond, JobTimeout: 90 * time.Second})
	req := func(id string, fail bool) analysis.Request {
		return analysis.Request{ID: id, Template: "smoke", Service: "web", Release: "web-2", Rollout: "web-2",
			Spec: v1.AnalysisTemplateSpec{Metrics: []v1.Metric{{Name: "smoke", Count: 1,
				Provider: v1.MetricProvider{Job: &v1.JobMetric{Template: jobTemplate(t, ns, fail)}}}}},
			Args: map[string]map[string]string{c.Name: {}}}
	}
	noAnalysisLeft := func(ctx context.Context) error {
		d, err := st.Desired(ctx, c.Name)
		if err != nil {
			return err
		}
		for _, as := range d.Assignments {
			if strings.HasPrefix(as.Service, analysis.JobServicePrefix) {
				return fmt.Errorf("assignment %s still there", as.Service)
			}
		}
		jobs, err := c.Client.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		if len(jobs.Items) > 0 {
			return fmt.Errorf("job %s still in the cluster", jobs.Items[0].Name)
		}
		return nil
	}

	t.Run("a succeeding Job passes", func(t *testing.T) {
		run := a.Run(ctx, req("ok#0", false), nil)
		if run.Phase != v1.GatePassed {
			t.Fatalf("phase %s (%s), metrics %+v; want Passed", run.Phase, run.Message, run.Metrics)
		}
		if m := run.Metrics[0].Measurements[0]; m.Value == nil || *m.Value != 1 || !strings.Contains(m.Message, "Job Completed") {
			t.Errorf("measurement %+v, want value 1", m)
		}
		eventually(t, 60*time.Second, "the Job and its assignment are removed", noAnalysisLeft)
	})

	t.Run("a failing Job fails", func(t *testing.T) {
		// Watch the Job while it exists: it carries the rendered template.
		var label string
		wctx, wcancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Go(func() {
			for wctx.Err() == nil {
				if jobs, err := c.Client.BatchV1().Jobs(ns).List(wctx, metav1.ListOptions{}); err == nil && len(jobs.Items) > 0 {
					label = jobs.Items[0].Labels["flotilla.dev/test-cluster"]
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
		})
		run := a.Run(ctx, req("fail#0", true), nil)
		wcancel()
		wg.Wait()
		if run.Phase != v1.GateFailed {
			t.Fatalf("phase %s (%s), metrics %+v; want Failed", run.Phase, run.Message, run.Metrics)
		}
		if m := run.Metrics[0].Measurements[0]; m.Value == nil || *m.Value != 0 || m.Phase != v1.MeasurementFailed {
			t.Errorf("measurement %+v, want Failed with value 0", m)
		}
		if label != "canary" {
			t.Errorf("the Job in the cluster had label %q, want canary (rendered from .Cluster.Labels.ring)", label)
		}
		eventually(t, 60*time.Second, "the Job and its assignment are removed", noAnalysisLeft)
	})

	t.Run("a cancelled run removes its assignment", func(t *testing.T) {
		rctx, rcancel := context.WithCancel(ctx)
		r := req("cancel#0", true)
		r.Spec.Metrics[0].Provider.Job.Template = json.RawMessage(strings.Replace(string(r.Spec.Metrics[0].Provider.Job.Template),
			`"activeDeadlineSeconds":2`, `"activeDeadlineSeconds":600`, 1))
		done := make(chan v1.AnalysisRun)
		go func() { done <- a.Run(rctx, r, nil) }()
		eventually(t, 60*time.Second, "the Job is assigned", func(ctx context.Context) error {
			d, err := st.Desired(ctx, c.Name)
			if err != nil {
				return err
			}
			for _, as := range d.Assignments {
				if strings.HasPrefix(as.Service, analysis.JobServicePrefix) {
					return nil
				}
			}
			return errors.New("not yet")
		})
		// The Job has started and its pod cannot be scheduled: the agent
		// reports it Progressing, not Healthy (kstatus' Current).
		eventually(t, 60*time.Second, "the agent reports the running Job Progressing", func(ctx context.Context) error {
			o, err := reportedJob(ctx, st, c.Name)
			if err != nil {
				return err
			}
			if o.Health != v1.HealthProgressing || !strings.Contains(o.Message, "Job in progress") {
				return fmt.Errorf("reported %s %q, want Progressing \"Job in progress\"", o.Health, o.Message)
			}
			return nil
		})
		rcancel()
		select {
		case run := <-done:
			if run.Phase != v1.GateRunning {
				t.Errorf("phase %s, want Running after cancel", run.Phase)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("Run did not return within 15s of cancel")
		}
		eventually(t, 60*time.Second, "the Job and its assignment are removed", noAnalysisLeft)
	})
}

// reportedJob is the analysis Job in the cluster's latest agent report.
func reportedJob(ctx context.Context, st store.Store, cluster string) (v1.ObjectReport, error) {
	sts, err := st.AgentStatuses(ctx, cluster)
	if err != nil {
		return v1.ObjectReport{}, err
	}
	var rep v1.AgentStatusReport
	if err := json.Unmarshal(sts[cluster].Report, &rep); err != nil {
		return v1.ObjectReport{}, fmt.Errorf("no agent report yet: %w", err)
	}
	for _, s := range rep.Services {
		if !strings.HasPrefix(s.Service, analysis.JobServicePrefix) {
			continue
		}
		for _, o := range s.Objects {
			if o.Kind == "Job" {
				return o, nil
			}
		}
	}
	return v1.ObjectReport{}, errors.New("no analysis Job in the agent report yet")
}

// eventually polls cond until it returns nil or the time is up.
func eventually(t *testing.T, limit time.Duration, what string, cond func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	var err error
	for {
		if err = cond(ctx); err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: not within %s: %v", what, limit, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func openStore(t *testing.T) store.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "flotilla.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}
