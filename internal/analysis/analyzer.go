package analysis

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/internal/store"
)

// Request asks for one analysis run: a template's metrics measured on
// every cluster that has an entry in Args.
type Request struct {
	// ID and Template are rollout.StartAnalysis.ID and .Template.
	ID, Template string
	Spec         v1.AnalysisTemplateSpec
	// Args are the arguments per cluster, as the rollout engine renders
	// them from the strategy's analysis reference (rollout.StartAnalysis.Args).
	Args                      map[string]map[string]string
	Service, Release, Rollout string
}

// Options configure an Analyzer; zero fields take the defaults shown.
type Options struct {
	// Store holds the clusters (labels and variables for templates), the
	// agents' reports (health provider) and the assignments and bundles
	// the Job provider uses. Nil disables the health and Job providers.
	Store store.Store
	// HTTPClient makes Prometheus and webhook requests; default a client
	// without its own timeout (Timeout applies per request).
	HTTPClient *http.Client
	// Now is the clock for measurement times; default time.Now.
	Now func() time.Time
	// Timeout bounds one Prometheus query or webhook request; default 10s.
	Timeout time.Duration
	// HealthStaleAfter: an agent report older than this is Unknown to the
	// health provider; default 90s, as the rollout runner counts a silent
	// agent.
	HealthStaleAfter time.Duration
	// JobTimeout bounds one Job measurement, from assignment to a finished
	// Job; default 10m.
	JobTimeout time.Duration
	// JobPoll is how often the Job provider reads the agent's report;
	// default 1s.
	JobPoll time.Duration
	// Actor is who the Job provider's assignments are recorded as; default
	// system:analysis.
	Actor store.Actor
}

// Analyzer runs analyses. It is safe for concurrent use; each Run is
// independent.
type Analyzer struct {
	o Options

	mu   sync.Mutex
	prom map[string]promv1.API // by address
}

// New returns an Analyzer with opts' defaults filled in.
func New(opts Options) *Analyzer {
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.HealthStaleAfter <= 0 {
		opts.HealthStaleAfter = 90 * time.Second
	}
	if opts.JobTimeout <= 0 {
		opts.JobTimeout = 10 * time.Minute
	}
	if opts.JobPoll <= 0 {
		opts.JobPoll = time.Second
	}
	if opts.Actor == (store.Actor{}) {
		opts.Actor = store.Actor{Kind: store.ActorSystem, Name: "analysis"}
	}
	return &Analyzer{o: opts, prom: map[string]promv1.API{}}
}

// measurer takes one measurement of one metric on one cluster; n counts
// the measurements from 0.
type measurer interface {
	measure(ctx context.Context, n int) (any, error)
}

// task is one metric on one cluster.
type task struct {
	metric v1.Metric
	cond   *conditions
	m      measurer
	idx    int // into run.Metrics
	tally  tally
}

// Run measures every metric for every cluster until done, calling progress
// after each measurement with the run so far (one call at a time; it must
// not block long). It returns the final run, Phase Passed, Failed or
// Inconclusive. A template that cannot be used (a condition that does not
// compile, a missing argument, a template error) gives Inconclusive with
// the reason, before any measurement: it says nothing about the release.
// A cancelled ctx returns promptly with Phase Running.
func (a *Analyzer) Run(ctx context.Context, req Request, progress func(v1.AnalysisRun)) v1.AnalysisRun {
	if progress == nil {
		progress = func(v1.AnalysisRun) {}
	}
	started := a.o.Now()
	run := v1.AnalysisRun{ID: req.ID, Template: req.Template, Phase: v1.GateRunning,
		Clusters: sortedKeys(req.Args), StartedAt: &started}
	finish := func(phase v1.GatePhase, msg string) v1.AnalysisRun {
		run.Phase, run.Message = phase, msg
		if phase != v1.GateRunning {
			t := a.o.Now()
			run.FinishedAt = &t
		}
		out := cloneRun(run)
		progress(out)
		return out
	}

	tasks, metrics, err := a.prepare(ctx, req)
	if err != nil {
		if ctx.Err() != nil {
			return cloneRun(run)
		}
		return finish(v1.GateInconclusive, fmt.Sprintf("template %s: %v", req.Template, err))
	}
	run.Metrics = metrics
	progress(cloneRun(run))

	mctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu       sync.Mutex
		decision string // the first metric that decided the run
		wg       sync.WaitGroup
	)
	record := func(t *task, m v1.Measurement) bool {
		mu.Lock()
		defer mu.Unlock()
		mr := &run.Metrics[t.idx]
		mr.Measurements = append(mr.Measurements, m)
		t.tally.add(m.Phase)
		phase, why := t.tally.assess(t.metric)
		mr.Phase = phase
		if (phase == v1.GateFailed || phase == v1.GateInconclusive) && decision == "" {
			decision = fmt.Sprintf("metric %s on cluster %s: %s", mr.Name, mr.Cluster, why)
			if m.Message != "" {
				decision += "; last: " + m.Message
			}
			cancel() // Argo's rule: the first failed or inconclusive metric ends the run
		}
		progress(cloneRun(run))
		return phase == v1.GateRunning
	}
	for i := range tasks {
		wg.Go(func() { a.loop(mctx, &tasks[i], record) })
	}
	wg.Wait()
	if ctx.Err() != nil {
		return cloneRun(run)
	}
	// The worst metric decides; the first decided one explains.
	phase := v1.GatePassed
	for _, mr := range run.Metrics {
		switch {
		case mr.Phase == v1.GateFailed:
			phase = v1.GateFailed
		case mr.Phase == v1.GateInconclusive && phase != v1.GateFailed:
			phase = v1.GateInconclusive
		}
	}
	msg := decision
	if phase == v1.GatePassed {
		msg = fmt.Sprintf("%d metric results passed", len(run.Metrics))
	}
	return finish(phase, msg)
}

// loop takes a task's measurements, the first after InitialDelay, then
// Interval apart (measured from the start of the previous one), until record says the metric is decided or ctx
// ends. A measurement cut short by ctx is not recorded.
func (a *Analyzer) loop(ctx context.Context, t *task, record func(*task, v1.Measurement) bool) {
	interval, _ := t.metric.Interval.Parse()
	delay, _ := t.metric.InitialDelay.Parse()
	timer := time.NewTimer(max(delay, 0))
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return
	case <-timer.C:
	}
	for n := 0; ; n++ {
		begin := time.Now()
		m := a.measure(ctx, t, n)
		if ctx.Err() != nil || !record(t, m) {
			return
		}
		timer.Reset(max(interval-time.Since(begin), 0))
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
	}
}

// measure takes one measurement and judges it.
func (a *Analyzer) measure(ctx context.Context, t *task, n int) v1.Measurement {
	m := v1.Measurement{Time: a.o.Now()}
	res, err := t.m.measure(ctx, n)
	if err != nil {
		if reason, ok := isNoData(err); ok {
			m.Phase, m.Message = v1.MeasurementInconclusive, reason
		} else {
			m.Phase, m.Message = v1.MeasurementError, err.Error()
		}
		return m
	}
	note := ""
	if n, ok := res.(noted); ok {
		res, note = n.value, n.note
	}
	m.Value, m.Raw = describe(res)
	v, err := t.cond.evaluate(ctx, res)
	if err != nil {
		m.Phase, m.Message = v1.MeasurementError, joinNote(err.Error(), note)
		return m
	}
	m.Phase, m.Message = v.phase, v.message
	if m.Message != "" {
		m.Message = "result " + m.Raw + ": " + m.Message
	}
	m.Message = joinNote(m.Message, note)
	return m
}

// prepare compiles every metric's conditions once and renders its provider
// for each cluster, so that a broken template is found before anything is
// measured. Errors name the metric and the cluster.
func (a *Analyzer) prepare(ctx context.Context, req Request) ([]task, []v1.MetricResult, error) {
	if len(req.Spec.Metrics) == 0 {
		return nil, nil, errors.New("has no metrics")
	}
	clusters := sortedKeys(req.Args)
	if len(clusters) == 0 {
		return nil, nil, errors.New("no clusters to analyse")
	}
	datas := make([]TemplateData, len(clusters))
	var errs []error
	for i, c := range clusters {
		cd, err := clusterData(ctx, a.o.Store, c)
		if err != nil {
			return nil, nil, err
		}
		base := TemplateData{Cluster: cd, Service: req.Service, Release: req.Release, Rollout: req.Rollout}
		args, err := resolveArgs(req.Spec.Args, req.Args[c], base)
		if err != nil {
			errs = append(errs, fmt.Errorf("cluster %s: %w", c, err))
		}
		base.Args = args
		datas[i] = base
	}
	if err := errors.Join(errs...); err != nil {
		return nil, nil, err
	}
	var tasks []task
	var results []v1.MetricResult
	for _, m := range req.Spec.Metrics {
		cond, err := compileConditions(m)
		if err != nil {
			errs = append(errs, fmt.Errorf("metric %s: %w", m.Name, err))
			continue
		}
		th := threshold(cond.successText)
		if th == nil && cond.successText == "" {
			th = threshold(cond.failureText)
		}
		for i, c := range clusters {
			ms, err := a.measurerFor(req, m, datas[i])
			if err != nil {
				errs = append(errs, fmt.Errorf("metric %s, cluster %s: %w", m.Name, c, err))
				continue
			}
			tasks = append(tasks, task{metric: m, cond: cond, m: ms, idx: len(results)})
			results = append(results, v1.MetricResult{Name: m.Name, Cluster: c, Condition: cond.display(),
				Threshold: th, Phase: v1.GateRunning})
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, nil, err
	}
	return tasks, results, nil
}

// measurerFor renders a metric's provider for one cluster.
func (a *Analyzer) measurerFor(req Request, m v1.Metric, data TemplateData) (measurer, error) {
	p := m.Provider
	switch {
	case p.Prometheus != nil:
		return a.prometheus(p.Prometheus, data)
	case p.Webhook != nil:
		return a.webhook(p.Webhook, data)
	case p.Health != nil:
		return a.health(data)
	case p.Job != nil:
		return a.job(req, m, data)
	}
	return nil, errors.New("provider: must set exactly one of prometheus, webhook, health or job")
}

// cloneRun copies a run deeply enough that the caller may keep it while
// measurements go on (measurements themselves are never changed).
func cloneRun(r v1.AnalysisRun) v1.AnalysisRun {
	r.Clusters = slices.Clone(r.Clusters)
	r.Metrics = slices.Clone(r.Metrics)
	for i := range r.Metrics {
		r.Metrics[i].Measurements = slices.Clone(r.Metrics[i].Measurements)
	}
	return r
}

func joinNote(msg, note string) string {
	switch {
	case note == "":
		return msg
	case msg == "":
		return note
	}
	return msg + " (" + note + ")"
}
