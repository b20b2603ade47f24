package runner

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/internal/notify"
	"flotilla.dev/flotilla/internal/rollout"
	"flotilla.dev/flotilla/internal/store"
)

// LeadershipName is the store leadership the runner holds while it runs
// rollouts.
const LeadershipName = "rollout-runner"

// Options configure a Runner; only Store is required.
type Options struct {
	Store store.Store
	// Holder names this runner in the leadership; default host name plus a
	// random suffix.
	Holder string
	// Analyzer runs analyses; nil ends every analysis Inconclusive, which
	// pauses the rollout for a person.
	Analyzer Analyzer
	// Traffic applies weights; nil records them as skipped.
	Traffic Traffic
	// Logger receives the runner's log; nil discards.
	Logger *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
	// LeaseTTL is how long leadership lasts without renewal; it is renewed
	// every third of it. Default 15s.
	LeaseTTL time.Duration
	// PollInterval is how often agent heartbeats are read to notice agents
	// that went silent or came back unchanged. Default 2s.
	PollInterval time.Duration
	// DisconnectAfter is how long after its last report an agent counts as
	// unreachable (Unknown). Default 90s, as the server shows it.
	DisconnectAfter time.Duration
	// ProgressInterval bounds how often analysis progress is written to a
	// rollout's status. Default 2s.
	ProgressInterval time.Duration
	// TrafficTimeout bounds one SetWeights call. Default 10s.
	TrafficTimeout time.Duration
	// CommitParallelism is how many rollouts' transitions are written at
	// once. Default 8.
	CommitParallelism int
	// Notifier receives, after its transition is stored, every message the
	// engine has for people (Notify actions), approval requests and
	// restorations; nil sends none.
	Notifier Notifier
	// Registry receives the runner's metrics (flotilla_rollout*,
	// flotilla_analysis_runs_total); nil registers them nowhere.
	Registry prometheus.Registerer
}

// Notifier hands notifications on for delivery; Notify must not block
// (the leader's loop calls it) and returns false when it dropped n.
type Notifier interface {
	Notify(n notify.Notification) bool
}

func (o *Options) setDefaults() {
	if o.Holder == "" {
		host, _ := os.Hostname()
		var b [4]byte
		_, _ = rand.Read(b[:])
		o.Holder = host + "-" + hex.EncodeToString(b[:])
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = 15 * time.Second
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 2 * time.Second
	}
	if o.DisconnectAfter <= 0 {
		o.DisconnectAfter = 90 * time.Second
	}
	if o.ProgressInterval <= 0 {
		o.ProgressInterval = 2 * time.Second
	}
	if o.TrafficTimeout <= 0 {
		o.TrafficTimeout = 10 * time.Second
	}
	if o.CommitParallelism <= 0 {
		o.CommitParallelism = 8
	}
}

// Runner runs every rollout of a store while it holds the store's runner
// leadership. Create it with New and call Run.
type Runner struct {
	opts    Options
	c       *committer
	m       *metrics
	leading atomic.Bool
	// transitions counts committed transitions; stepNanos and commitNanos
	// add up the time spent stepping the engine and writing (measurements).
	transitions atomic.Int64
	stepNanos   atomic.Int64
	commitNanos atomic.Int64
}

// Stats are the runner's counters since it was created.
type Stats struct {
	// Transitions is how many transitions it committed.
	Transitions int64
	// StepTime is the time spent stepping the engine (and its
	// bookkeeping); CommitTime the time spent writing transitions.
	StepTime, CommitTime time.Duration
}

// Stats returns the runner's counters.
func (r *Runner) Stats() Stats {
	return Stats{Transitions: r.transitions.Load(), StepTime: time.Duration(r.stepNanos.Load()),
		CommitTime: time.Duration(r.commitNanos.Load())}
}

// New returns a runner over opts.Store.
func New(opts Options) (*Runner, error) {
	if opts.Store == nil {
		return nil, errors.New("rollout runner: no store given")
	}
	opts.setDefaults()
	m, err := newMetrics(opts.Registry)
	if err != nil {
		return nil, fmt.Errorf("rollout runner: metrics: %w", err)
	}
	return &Runner{opts: opts, c: newCommitter(opts.Store), m: m}, nil
}

// Leading reports whether this runner holds the leadership now.
func (r *Runner) Leading() bool { return r.leading.Load() }

// Holder returns the name this runner holds the leadership under.
func (r *Runner) Holder() string { return r.opts.Holder }

// Run campaigns for the leadership and, while it holds it, runs every
// rollout; it returns nil when ctx ends, after giving the leadership up so
// that another replica takes over at once.
func (r *Runner) Run(ctx context.Context) error {
	o := r.opts
	for ctx.Err() == nil {
		l, err := o.Store.AcquireLeadership(ctx, LeadershipName, o.Holder, o.LeaseTTL, o.Now())
		if err == nil {
			o.Logger.Info("rollout runner leads", "holder", o.Holder, "epoch", l.Epoch, "ttl", o.LeaseTTL)
			err = r.lead(ctx, l)
			if err != nil && ctx.Err() == nil {
				o.Logger.Warn("rollout runner stopped leading", "err", err)
			}
			continue
		}
		wait := o.LeaseTTL / 3
		var held *store.LeadershipHeldError
		if errors.As(err, &held) {
			if d := held.Leadership.ExpiresAt.Sub(o.Now()); d > 0 && d < wait {
				wait = d + 10*time.Millisecond
			}
		} else if ctx.Err() == nil {
			o.Logger.Warn("rollout runner: acquire leadership", "err", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
	return nil
}

// lead runs rollouts until the leadership is lost or ctx ends.
func (r *Runner) lead(ctx context.Context, l *store.Leadership) error {
	o := r.opts
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r.leading.Store(true)
	defer r.leading.Store(false)
	// A replica that does not lead tracks nothing: its gauge says so.
	defer r.m.active.Reset()
	var lost atomic.Value // error
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		if err := store.KeepLeadership(lctx, o.Store, l, o.Holder, o.LeaseTTL, o.Now, func(err error) {
			o.Logger.Warn("rollout runner: renew leadership", "err", err)
		}); err != nil {
			lost.Store(err)
			cancel()
		}
	}()
	ld := &leader{r: r, o: o, fence: store.Fence{Name: LeadershipName, Holder: o.Holder, Epoch: l.Epoch},
		entries: map[string]*entry{}, agents: map[string]*agentObs{},
		results: make(chan analysisDone, 64), progress: make(chan analysisDone, 256)}
	err := ld.run(lctx)
	cancel()
	ld.stopAnalyses()
	<-renewed
	if ctx.Err() != nil {
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		_ = o.Store.ReleaseLeadership(rctx, LeadershipName, o.Holder)
		rcancel()
		return nil
	}
	if e, ok := lost.Load().(error); ok {
		return e
	}
	return err
}

// obs is what an agent says about one service on its cluster.
type obs struct{ release, health string }

// agentObs is the latest report summary of one cluster's agent.
type agentObs struct {
	seq       int64
	heartbeat time.Time
	services  map[string]obs
}

// summary is the part of an agent report the server keeps as the
// store.AgentStatus summary (and the spec of KindAgentStatus events).
type summary struct {
	Services []struct {
		Service string `json:"service"`
		Release string `json:"release"`
		Health  string `json:"health"`
	} `json:"services"`
}

func parseSummary(data []byte) map[string]obs {
	var s summary
	_ = json.Unmarshal(data, &s)
	out := make(map[string]obs, len(s.Services))
	for _, sv := range s.Services {
		out[sv.Service] = obs{release: sv.Release, health: sv.Health}
	}
	return out
}

// running is an analysis this runner runs.
type running struct {
	id     string
	cancel context.CancelFunc
}

// analysisDone carries an analysis's progress or final run to the loop.
type analysisDone struct {
	rollout string
	id      string
	run     v1.AnalysisRun
	// errored says the analysis could not run (no template, no analyzer).
	errored bool
}

// entry is one rollout the leader tracks.
type entry struct {
	name string
	obj  *store.Object
	spec v1.RolloutSpec
	rec  *Record // nil until started

	fed      map[string]obs
	pending  []rollout.Event
	timers   []time.Time
	lastTick time.Time
	// runs are analysis runs to merge into the record with the next commit.
	runs          map[string]v1.AnalysisRun
	progressDirty bool
	lastProgress  time.Time
	analysis      *running
	// applied are the traffic weights known to be in effect; nil unknown.
	applied      map[string]int
	trafficRetry time.Time
	// deferredFed is set once the record's Deferred actions are pending.
	deferredFed bool
	pauseReason string
	retryAt     time.Time
	failures    int
}

// leader is the state of one term of leadership; only its loop touches it.
type leader struct {
	r        *Runner
	o        Options
	fence    store.Fence
	seq      int64
	entries  map[string]*entry
	agents   map[string]*agentObs
	lastPoll time.Time
	results  chan analysisDone
	progress chan analysisDone
	wg       sync.WaitGroup
	reload   map[string]bool
	// hot are rollouts with an analysis result to step first.
	hot []string
}

func (l *leader) run(ctx context.Context) error {
	st := l.o.Store
	seq, err := st.LatestSeq(ctx)
	if err != nil {
		return err
	}
	recs, err := st.RolloutRecords(ctx)
	if err != nil {
		return err
	}
	l.seq = seq
	for _, rr := range recs {
		if err := l.track(rr); err != nil {
			l.o.Logger.Warn("rollout runner: skip rollout", "rollout", rr.Object.Name, "err", err)
		}
	}
	if err := l.poll(ctx); err != nil {
		return err
	}
	for ctx.Err() == nil {
		l.cycle(ctx)
		l.wait(ctx)
	}
	return nil
}

// track starts following a rollout from its stored form, replacing what
// the leader knew of it.
func (l *leader) track(rr store.RolloutRecord) error {
	rec, err := decodeRecord(rr.Object.Name, rr.Record)
	if err != nil {
		return err
	}
	var spec v1.RolloutSpec
	if err := decodeInto(rr.Object, &spec, nil); err != nil {
		return err
	}
	e := l.entries[rr.Object.Name]
	if e == nil {
		e = &entry{name: rr.Object.Name}
		l.entries[e.name] = e
	}
	// A person's action (pause, resume, approve, abort) is a transition
	// written by whichever replica served it; the leader hears of it here,
	// stored, and tells people what it changed.
	if old := e.rec; old != nil && rec != nil && old.Engine.Phase != rec.Engine.Phase {
		msg := "rollout is now " + string(rec.Engine.Phase)
		if rec.Engine.Message != "" {
			msg += ": " + rec.Engine.Message
		}
		l.r.m.ended(old, rec)
		l.notifyRecord(rr.Object.Name, rec, msg, l.o.Now())
	}
	e.obj, e.spec, e.rec = rr.Object, spec, rec
	e.fed, e.deferredFed = map[string]obs{}, false
	if rec != nil && rec.Done() {
		l.drop(e)
	}
	return nil
}

func (l *leader) drop(e *entry) {
	if e.analysis != nil {
		e.analysis.cancel()
	}
	delete(l.entries, e.name)
}

func (l *leader) stopAnalyses() {
	for _, e := range l.entries {
		if e.analysis != nil {
			e.analysis.cancel()
		}
	}
	l.wg.Wait()
}

// wait sleeps until something may need doing.
func (l *leader) wait(ctx context.Context) {
	now := l.o.Now()
	next := l.lastPoll.Add(l.o.PollInterval)
	for _, e := range l.entries {
		if t, ok := e.nextTimer(); ok && t.Before(next) {
			next = t
		}
		if e.progressDirty {
			if t := e.lastProgress.Add(l.o.ProgressInterval); t.Before(next) {
				next = t
			}
		}
		if e.rec != nil && len(e.pending) > 0 && e.retryAt.Before(next) {
			next = e.retryAt
		}
	}
	d := next.Sub(now)
	if d <= 0 {
		return
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	woke := make(chan struct{})
	seq := l.seq // the loop moves l.seq on once wait returns
	go func() {
		if l.o.Store.WaitForEvent(wctx, seq) == nil {
			close(woke)
		}
	}()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
	case <-woke:
	case <-timer.C:
	case d := <-l.results:
		l.received(d, true)
	case d := <-l.progress:
		l.received(d, false)
	}
}

// received files an analysis's progress or result with its rollout.
func (l *leader) received(d analysisDone, final bool) {
	if final {
		l.r.m.analysisEnded(d.run.Phase, d.errored)
	}
	e := l.entries[d.rollout]
	if e == nil {
		return
	}
	if e.runs == nil {
		e.runs = map[string]v1.AnalysisRun{}
	}
	if !final {
		if prev, ok := e.runs[d.id]; ok && prev.Phase != v1.GateRunning {
			return // the final run came first
		}
		if e.analysis == nil || e.analysis.id != d.id {
			return // late progress of an analysis nobody waits for
		}
		if d.run.Phase == "" || d.run.Phase == v1.GateRunning {
			d.run.Phase = v1.GateRunning
			e.runs[d.id] = d.run
			e.progressDirty = true
		}
		return
	}
	if e.analysis != nil && e.analysis.id == d.id {
		e.analysis = nil
	}
	result := rollout.AnalysisInconclusive
	switch d.run.Phase {
	case v1.GatePassed:
		result = rollout.AnalysisSuccessful
	case v1.GateFailed:
		result = rollout.AnalysisFailed
	case v1.GateInconclusive:
	default:
		return // cancelled: nobody waits for it
	}
	e.runs[d.id] = d.run
	e.pending = append(e.pending, rollout.AnalysisResult{ID: d.id, Result: result})
	l.hot = append(l.hot, d.rollout)
}

// cycle does everything that is due.
func (l *leader) cycle(ctx context.Context) {
	l.urgent(ctx)
	if err := l.readEvents(ctx); err != nil {
		l.o.Logger.Warn("rollout runner: read events", "err", err)
	}
	if l.startPending(ctx) {
		l.lastPoll = time.Time{} // read the new rollouts' agents now
	}
	now := l.o.Now()
	if now.Sub(l.lastPoll) >= l.o.PollInterval {
		if err := l.poll(ctx); err != nil {
			l.o.Logger.Warn("rollout runner: read agent status", "err", err)
		}
	}
	names := make([]string, 0, len(l.entries))
	for n := range l.entries {
		names = append(names, n)
	}
	slices.Sort(names)
	// Transitions are written a batch at a time; analysis results that
	// arrive meanwhile are stepped between batches.
	var batch []*entry
	flush := func() {
		l.commitAll(ctx, batch, now)
		for _, e := range batch {
			if l.entries[e.name] == e && e.rec != nil {
				l.effects(ctx, e)
			}
		}
		batch = batch[:0]
		l.urgent(ctx)
	}
	for _, n := range names {
		e := l.entries[n]
		if e == nil || e.rec == nil || ctx.Err() != nil {
			continue
		}
		l.feed(e, now)
		if (len(e.pending) > 0 || (e.progressDirty && now.Sub(e.lastProgress) >= l.o.ProgressInterval)) && !now.Before(e.retryAt) {
			batch = append(batch, e)
			if len(batch) >= commitBatch {
				flush()
			}
			continue
		}
		l.effects(ctx, e)
	}
	flush()
	l.r.m.setActive(l.entries)
}

// commitBatch bounds the transitions written between two looks at the
// analysis results.
const commitBatch = 32

// drain files the analysis progress and results that arrived.
func (l *leader) drain() {
	for {
		select {
		case d := <-l.results:
			l.received(d, true)
		case d := <-l.progress:
			l.received(d, false)
		default:
			return
		}
	}
}

// urgent steps, ahead of everything else, the rollouts that received an
// analysis result: a failed analysis must send its clusters back at once,
// not after a pass over every rollout in flight.
func (l *leader) urgent(ctx context.Context) {
	l.drain()
	for len(l.hot) > 0 && ctx.Err() == nil {
		var es []*entry
		seen := map[string]bool{}
		now := l.o.Now()
		for _, n := range l.hot {
			e := l.entries[n]
			if e == nil || e.rec == nil || len(e.pending) == 0 || seen[n] {
				continue
			}
			seen[n] = true
			l.feed(e, now)
			es = append(es, e)
		}
		l.hot = l.hot[:0]
		l.commitAll(ctx, es, now)
		for _, e := range es {
			if l.entries[e.name] == e && e.rec != nil {
				l.effects(ctx, e)
			}
		}
		l.drain()
	}
}

// readEvents follows the event log: changed rollouts are read again and
// agent status changes update the agent cache.
func (l *leader) readEvents(ctx context.Context) error {
	st := l.o.Store
	l.reload = map[string]bool{}
	for {
		latest, err := st.LatestSeq(ctx)
		if err != nil {
			return err
		}
		evs, err := st.Events(ctx, l.seq, 1000, store.EventFilter{Kinds: []string{v1.KindRollout, store.KindAgentStatus}})
		if err != nil {
			return err
		}
		for _, ev := range evs {
			switch ev.Kind {
			case v1.KindRollout:
				e := l.entries[ev.Name]
				switch {
				case ev.Type == store.Deleted:
					if e != nil {
						l.drop(e)
					}
				case e != nil && ev.Object != nil && ev.Actor == Actor && ev.Object.ResourceVersion <= e.obj.ResourceVersion:
					// One of this leader's own writes.
				case e == nil || ev.Object == nil || ev.Object.ResourceVersion != e.obj.ResourceVersion:
					l.reload[ev.Name] = true
				}
			case store.KindAgentStatus:
				if ev.Object != nil {
					a := l.agents[ev.Name]
					if a == nil {
						a = &agentObs{}
						l.agents[ev.Name] = a
					}
					a.services = parseSummary(ev.Object.Spec)
					if ev.Time.After(a.heartbeat) {
						a.heartbeat = ev.Time
					}
				}
			}
			l.seq = ev.Seq
		}
		if len(evs) < 1000 {
			l.seq = max(l.seq, latest)
			break
		}
	}
	if len(l.reload) == 0 {
		return nil
	}
	names := make([]string, 0, len(l.reload))
	for n := range l.reload {
		names = append(names, n)
	}
	recs, err := st.RolloutRecords(ctx, names...)
	if err != nil {
		return err
	}
	for _, rr := range recs {
		if rr.Done {
			if e := l.entries[rr.Object.Name]; e != nil {
				l.drop(e)
			}
			continue
		}
		keep := l.entries[rr.Object.Name]
		var results []rollout.Event
		if keep != nil {
			for _, ev := range keep.pending {
				if _, ok := ev.(rollout.AnalysisResult); ok {
					results = append(results, ev)
				}
			}
		}
		if err := l.track(rr); err != nil {
			l.o.Logger.Warn("rollout runner: skip rollout", "rollout", rr.Object.Name, "err", err)
			continue
		}
		if e := l.entries[rr.Object.Name]; e != nil {
			e.pending = results
		}
	}
	return nil
}

// poll reads the heartbeats and summaries of the agents of every tracked
// rollout's clusters.
func (l *leader) poll(ctx context.Context) error {
	l.lastPoll = l.o.Now()
	set := map[string]bool{}
	for _, e := range l.entries {
		if e.rec == nil {
			continue
		}
		for _, c := range e.rec.Engine.Clusters {
			set[c.Name] = true
		}
	}
	if len(set) == 0 {
		return nil
	}
	var names []string
	if len(set) <= 500 {
		for n := range set {
			names = append(names, n)
		}
	}
	sts, err := l.o.Store.AgentSummaries(ctx, names...)
	if err != nil {
		return err
	}
	for n, s := range sts {
		a := l.agents[n]
		if a == nil {
			a = &agentObs{}
			l.agents[n] = a
		}
		if s.Seq != a.seq || a.services == nil {
			a.services = parseSummary(s.Summary)
			a.seq = s.Seq
		}
		a.heartbeat = s.LastHeartbeat
	}
	return nil
}

// observe returns what the agent of cluster says about service now.
func (l *leader) observe(cluster, service string, now time.Time) obs {
	a := l.agents[cluster]
	if a == nil || now.Sub(a.heartbeat) > l.o.DisconnectAfter {
		return obs{health: rollout.HealthUnknown}
	}
	o, ok := a.services[service]
	if !ok {
		return obs{health: rollout.HealthProgressing}
	}
	switch o.health {
	case rollout.HealthHealthy, rollout.HealthProgressing, rollout.HealthDegraded, rollout.HealthFailed, rollout.HealthUnknown:
	default:
		o.health = rollout.HealthUnknown
	}
	return o
}

// feed queues what changed for a running rollout: cluster statuses and
// due timers.
func (l *leader) feed(e *entry, now time.Time) {
	s := &e.rec.Engine
	// A rollback still Restoring takes statuses: they give clusters back
	// on their release their weight.
	if (s.Finished() && !s.Restoring()) || s.Phase == v1.RolloutPending {
		return
	}
	if len(e.rec.Deferred) > 0 && !e.deferredFed {
		for _, d := range e.rec.Deferred {
			if ev := d.event(); ev != nil {
				e.pending = append(e.pending, ev)
			}
		}
		e.deferredFed = true
	}
	for _, c := range s.Clusters {
		o := l.observe(c.Name, s.Service, now)
		if prev, ok := e.fed[c.Name]; ok && prev == o {
			continue
		}
		e.fed[c.Name] = o
		e.pending = append(e.pending, rollout.ClusterStatus{Cluster: c.Name, Release: o.release, Health: o.health})
	}
	if t, ok := e.nextTimer(); ok && !t.After(now) {
		e.pending = append(e.pending, rollout.Tick{})
		e.lastTick = now
		e.timers = slices.DeleteFunc(e.timers, func(t time.Time) bool { return !t.After(now) })
	}
}

// nextTimer is the earliest moment after the last tick at which the
// rollout's engine wants to be ticked: a requested timer or a deadline,
// bake, hold or window the state holds.
func (e *entry) nextTimer() (time.Time, bool) {
	if e.rec == nil || e.rec.Engine.Finished() || e.rec.Engine.Paused {
		return time.Time{}, false
	}
	var best time.Time
	consider := func(t time.Time) {
		if t.IsZero() || !t.After(e.lastTick) {
			return
		}
		if best.IsZero() || t.Before(best) {
			best = t
		}
	}
	for _, t := range e.timers {
		consider(t)
	}
	s := &e.rec.Engine
	for _, c := range s.Clusters {
		if c.Phase == v1.ClusterRolloutUpdating {
			consider(c.Deadline)
		}
	}
	consider(s.BakeUntil)
	consider(s.HoldUntil)
	consider(s.WaitUntil)
	return best, !best.IsZero()
}

// job is one rollout's transition on its way to the store.
type job struct {
	e     *entry
	now   time.Time
	evs   []rollout.Event
	next  *Record
	acts  []rollout.Action
	audit *Audit
	res   *store.TransitionResult
	err   error
	took  time.Duration
}

// commitAll commits the transitions of es, writing up to
// CommitParallelism of them at once (PostgreSQL commits concurrent writes
// in one transaction; SQLite queues them), then applies the results in
// order.
func (l *leader) commitAll(ctx context.Context, es []*entry, now time.Time) {
	var jobs []*job
	for _, e := range es {
		if j := l.prepare(ctx, e, now); j != nil {
			jobs = append(jobs, j)
		}
	}
	sem := make(chan struct{}, max(1, l.o.CommitParallelism))
	var wg sync.WaitGroup
	for _, j := range jobs {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			l.writeJob(ctx, j)
		}()
	}
	wg.Wait()
	for _, j := range jobs {
		l.finish(ctx, j)
	}
}

// prepare steps e's pending events; it returns nil, clearing them, when
// the step changed nothing worth writing.
func (l *leader) prepare(ctx context.Context, e *entry, now time.Time) *job {
	evs := e.pending
	t0 := time.Now()
	defer func() { l.r.stepNanos.Add(int64(time.Since(t0))) }()
	next, acts, errs, _ := step(e.rec, evs, now, false)
	next.Stuck = ""
	if err := l.leadTraffic(ctx, e, next, acts); err != nil {
		evs, next, acts, errs = l.stepHeld(e, err, now)
	}
	if e.deferredFed {
		next.Deferred = nil // stepped now, with the rest
	}
	for id, run := range e.runs {
		next.mergeRun(id, run)
	}
	if e.pauseReason != "" && next.Engine.Paused {
		next.Engine.Message = e.pauseReason
	}
	if len(acts) == 0 && sameRecord(e.rec, next) {
		e.pending, e.runs, e.progressDirty, e.pauseReason = nil, nil, false, ""
		e.lastProgress = now
		return nil
	}
	var audit *Audit
	for _, ev := range evs {
		switch ev.(type) {
		case rollout.ClusterStatus, rollout.Tick:
		default:
			audit = auditOf(Actor, evs, acts, errs)
		}
	}
	for _, a := range acts {
		if _, ok := a.(rollout.SetTimer); !ok && audit == nil {
			audit = auditOf(Actor, evs, acts, errs)
		}
	}
	return &job{e: e, now: now, evs: evs, next: next, acts: acts, audit: audit}
}

// writeJob writes a prepared transition; it touches nothing of the
// leader's, so several may run at once.
func (l *leader) writeJob(ctx context.Context, j *job) {
	fence := l.fence
	fence.Now = j.now
	t1 := time.Now()
	j.res, j.err = l.r.c.commit(ctx, j.e.obj, j.next, j.acts, j.audit, Actor, &fence)
	j.took = time.Since(t1)
	l.r.commitNanos.Add(int64(j.took))
}

// finish applies a written transition to the leader's view of its
// rollout.
func (l *leader) finish(ctx context.Context, j *job) {
	e, now := j.e, j.now
	switch {
	case errors.Is(j.err, store.ErrConflict):
		// Someone else wrote the rollout (a person's action) or the
		// leadership is gone: read it again and feed the statuses afresh.
		l.reloadOne(ctx, e)
		return
	case j.err != nil:
		e.failures++
		e.retryAt = now.Add(min(time.Duration(1<<min(e.failures, 5))*time.Second, 30*time.Second))
		l.o.Logger.Warn("rollout runner: commit", "rollout", e.name, "err", j.err, "retry", e.retryAt.Sub(now))
		if e.failures == 3 && e.rec.Stuck == "" {
			// Show people why the rollout does not move; the step is retried.
			next := e.rec.clone()
			next.Stuck = j.err.Error()
			l.write(ctx, e, next, &Audit{By: Actor.Kind + ":" + Actor.Name, Errors: []string{j.err.Error()}})
		}
		return
	}
	l.r.transitions.Add(1)
	l.r.m.committed(j.took)
	l.r.m.ended(e.rec, j.next)
	e.failures, e.retryAt = 0, time.Time{}
	e.obj, e.rec = j.res.Rollout, j.next
	// Events that arrived while the transition was written stay pending.
	e.pending = e.pending[len(j.evs):]
	if len(e.pending) == 0 {
		e.pending = nil
	}
	e.runs, e.progressDirty, e.pauseReason = nil, false, ""
	e.deferredFed = false
	e.lastProgress = now
	for _, a := range j.acts {
		if t, ok := a.(rollout.SetTimer); ok {
			e.timers = append(e.timers, t.At)
		}
		// Only now, with the transition stored, do people hear of it.
		switch a := a.(type) {
		case rollout.Notify:
			l.o.Logger.Info("rollout", "rollout", e.name, "message", a.Message)
			l.notify(e, a.Message, now)
		case rollout.RequestApproval:
			l.notify(e, fmt.Sprintf("waiting for approval of %s by %s", a.Gate, strings.Join(a.Roles, ", ")), now)
		}
	}
	if j.next.Done() {
		l.drop(e)
	}
}

func (l *leader) reloadOne(ctx context.Context, e *entry) {
	var results []rollout.Event
	for _, ev := range e.pending {
		if _, ok := ev.(rollout.AnalysisResult); ok {
			results = append(results, ev)
		}
	}
	recs, err := l.o.Store.RolloutRecords(ctx, e.name)
	if err != nil || len(recs) == 0 {
		if err == nil {
			l.drop(e)
		}
		return
	}
	if err := l.track(recs[0]); err != nil {
		l.o.Logger.Warn("rollout runner: skip rollout", "rollout", e.name, "err", err)
		return
	}
	if ne := l.entries[e.name]; ne != nil {
		ne.pending = results
	}
}

// mergeRun puts an analysis run's latest form into the record, keeping
// what the runner recorded when it started.
func (r *Record) mergeRun(id string, run v1.AnalysisRun) {
	for i := range r.Analyses {
		old := &r.Analyses[i]
		if old.ID != id {
			continue
		}
		if old.Phase != v1.GateRunning && run.Phase == v1.GateRunning {
			return // already finished: late progress
		}
		run.ID, run.Template = old.ID, old.Template
		run.Wave, run.Step = old.Wave, old.Step
		if run.StartedAt == nil {
			run.StartedAt = old.StartedAt
		}
		if run.Clusters == nil {
			run.Clusters = old.Clusters
		}
		if old.Phase != v1.GateRunning {
			run.Phase, run.FinishedAt = old.Phase, old.FinishedAt
		}
		*old = run
	}
}

func sameRecord(a, b *Record) bool {
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(x, y)
}

// effects makes the world match the record: the analysis it waits for
// runs here, traffic has its weights, the service and release show how it
// ended, and a rolled back rollout learns when its clusters are restored.
func (l *leader) effects(ctx context.Context, e *entry) {
	rec := e.rec
	s := &rec.Engine
	// Analyses.
	var want *rollout.StartAnalysis
	if !s.Finished() && s.Active && rec.Analysis != nil && rec.Analysis.ID == s.AnalysisID {
		want = rec.Analysis
	}
	if e.analysis != nil && (want == nil || e.analysis.id != want.ID) {
		e.analysis.cancel()
		e.analysis = nil
	}
	if want != nil && e.analysis == nil && !e.hasPendingResult(want.ID) {
		l.startAnalysis(ctx, e, *want)
	}
	l.traffic(ctx, e)
	if e.rec == nil {
		return
	}
	now := l.o.Now()
	if s := &e.rec.Engine; s.Finished() && !e.rec.Finalized {
		if err := finalize(ctx, l.o.Store, e.name, e.rec, now); err != nil {
			l.o.Logger.Warn("rollout runner: finalize", "rollout", e.name, "err", err)
			return
		}
		if s.Phase == v1.RolloutRolledBack || s.Phase == v1.RolloutFailed || s.Phase == v1.RolloutAborted {
			l.r.c.forget(s.Release)
		}
		next := e.rec.clone()
		next.Finalized = true
		l.write(ctx, e, next, nil)
	}
	if e.rec != nil && e.rec.needsRestore() {
		l.checkRestored(ctx, e, now)
	}
}

func (e *entry) hasPendingResult(id string) bool {
	for _, ev := range e.pending {
		if r, ok := ev.(rollout.AnalysisResult); ok && r.ID == id {
			return true
		}
	}
	return false
}

// write commits a record change that feeds the engine nothing; it
// reports whether it was stored.
func (l *leader) write(ctx context.Context, e *entry, next *Record, audit *Audit) bool {
	fence := l.fence
	fence.Now = l.o.Now()
	t1 := time.Now()
	res, err := l.r.c.commit(ctx, e.obj, next, nil, audit, Actor, &fence)
	took := time.Since(t1)
	l.r.commitNanos.Add(int64(took))
	if errors.Is(err, store.ErrConflict) {
		l.reloadOne(ctx, e)
		return false
	}
	if err != nil {
		l.o.Logger.Warn("rollout runner: write", "rollout", e.name, "err", err)
		return false
	}
	l.r.transitions.Add(1)
	l.r.m.committed(took)
	prev := e.rec
	e.obj, e.rec = res.Rollout, next
	if prev != next {
		l.r.m.ended(prev, next)
	}
	if next.RestoredAt != nil && (prev == nil || prev.RestoredAt == nil) {
		msg := "restored: every touched cluster is healthy on its previous release"
		if d := restoreDelay(next); d != "" {
			msg += ", " + d + " after the failure"
		}
		l.notify(e, msg, l.o.Now())
	}
	if next.Done() {
		l.drop(e)
	}
	return true
}

// notify hands a message about e, whose transition is stored, to the
// notifier.
func (l *leader) notify(e *entry, msg string, now time.Time) {
	l.notifyRecord(e.name, e.rec, msg, now)
}

// notifyRecord hands a message about the rollout name, stored as rec, to
// the notifier; a full queue drops it, which is logged here (and counted
// by the notifier) because the notifier does not log.
func (l *leader) notifyRecord(name string, rec *Record, msg string, now time.Time) {
	if l.o.Notifier == nil || rec == nil {
		return
	}
	s := &rec.Engine
	n := notify.Notification{Rollout: name, Service: s.Service, Release: s.Release, Phase: string(s.Phase),
		Message: msg, Time: now.UTC(), DashboardPath: notify.DashboardPath(name)}
	if !l.o.Notifier.Notify(n) {
		l.o.Logger.Warn("rollout runner: notification dropped: queue full", "rollout", name, "message", msg)
	}
}

// checkRestored records RestoredAt once every touched cluster runs the
// release it was sent back to, healthy.
func (l *leader) checkRestored(ctx context.Context, e *entry, now time.Time) {
	next := e.rec.clone()
	all := true
	for i := range next.Engine.Clusters {
		c := &next.Engine.Clusters[i]
		if !c.Touched {
			continue
		}
		o := l.observe(c.Name, next.Engine.Service, now)
		ok := o.release == c.Release && o.health == rollout.HealthHealthy
		if c.Release == "" {
			ok = o.release == "" && o.health != rollout.HealthUnknown
		}
		if o.release == c.Release {
			c.Health = o.health
		}
		all = all && ok
	}
	// Restored means back on the release and back in rotation: the engine
	// gives each cluster its weight on the status that shows it healthy,
	// and the router must have it.
	if all && !next.Engine.Restoring() && e.trafficInForce() {
		next.RestoredAt = timePtr(now)
	}
	if !sameRecord(e.rec, next) {
		var audit *Audit
		if all {
			audit = &Audit{By: Actor.Kind + ":" + Actor.Name, Events: []string{"restored"},
				Actions: []string{fmt.Sprintf("every touched cluster is healthy on its previous release %s after the failure",
					restoreDelay(next))}}
		}
		l.write(ctx, e, next, audit)
	}
}

func restoreDelay(r *Record) string {
	if r.FailedAt == nil || r.RestoredAt == nil {
		return ""
	}
	return r.RestoredAt.Sub(*r.FailedAt).Round(time.Millisecond).String()
}

// trafficInForce reports whether the router has every weight the record
// holds (always, without a router).
func (e *entry) trafficInForce() bool {
	s := &e.rec.Engine
	if s.Plan.Router == "" {
		return true
	}
	for _, c := range s.Clusters {
		if w, ok := e.applied[c.Name]; !ok || w != c.Weight {
			return false
		}
	}
	return true
}

// startAnalysis runs the analysis a in a goroutine whose result comes
// back through the leader's results channel.
func (l *leader) startAnalysis(ctx context.Context, e *entry, a rollout.StartAnalysis) {
	actx, cancel := context.WithCancel(ctx)
	e.analysis = &running{id: a.ID, cancel: cancel}
	req := AnalysisRequest{ID: a.ID, Template: a.Template, Args: a.Args, Service: e.rec.Engine.Service,
		Release: e.rec.Engine.Release, Rollout: e.name}
	var fail string
	if o, err := l.o.Store.Get(ctx, v1.KindAnalysisTemplate, a.Template); err != nil {
		fail = fmt.Sprintf("analysis template %s: %v", a.Template, err)
	} else if err := decodeInto(o, &req.Spec, nil); err != nil {
		fail = err.Error()
	}
	if fail == "" && l.o.Analyzer == nil {
		fail = "no analyzer is configured"
	}
	name := e.name
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		var run v1.AnalysisRun
		if fail != "" {
			run = v1.AnalysisRun{ID: a.ID, Template: a.Template, Phase: v1.GateInconclusive, Message: fail}
		} else {
			run = l.o.Analyzer.Run(actx, req, func(p v1.AnalysisRun) {
				select {
				case l.progress <- analysisDone{rollout: name, id: a.ID, run: p}:
				default: // progress is best effort; the final run always arrives
				}
			})
		}
		if run.FinishedAt == nil && run.Phase != v1.GateRunning {
			run.FinishedAt = timePtr(l.o.Now())
		}
		select {
		case l.results <- analysisDone{rollout: name, id: a.ID, run: run, errored: fail != ""}:
		case <-actx.Done():
		}
	}()
}

// traffic applies the weights the engine set, or records them as
// skipped when no traffic manager is configured.
func (l *leader) traffic(ctx context.Context, e *entry) {
	s := &e.rec.Engine
	router := s.Plan.Router
	if router == "" {
		return
	}
	now := l.o.Now()
	if now.Before(e.trafficRetry) {
		return
	}
	var diff []v1.TrafficWeight
	for _, c := range s.Clusters {
		if w, ok := e.applied[c.Name]; ok && w == c.Weight && e.applied != nil {
			continue
		}
		diff = append(diff, v1.TrafficWeight{Router: router, Cluster: c.Name, Weight: c.Weight})
	}
	if len(diff) == 0 {
		return
	}
	desc := make([]string, len(diff))
	for i, w := range diff {
		desc[i] = fmt.Sprintf("%s=%d", w.Cluster, w.Weight)
	}
	if e.applied == nil {
		e.applied = map[string]int{}
	}
	next := e.rec.clone()
	if l.o.Traffic == nil {
		for _, w := range diff {
			e.applied[w.Cluster] = w.Weight
		}
		next.TrafficMessage = "skipped: no traffic manager is configured; router " + router + " weights recorded only"
		l.write(ctx, e, next, &Audit{By: Actor.Kind + ":" + Actor.Name,
			Actions: []string{"traffic " + router + " " + strings.Join(desc, " ") + " skipped: no traffic manager is configured"}})
		return
	}
	tctx, cancel := context.WithTimeout(ctx, l.o.TrafficTimeout)
	applied, err := l.o.Traffic.SetWeights(tctx, router, diff)
	cancel()
	if err != nil {
		e.trafficRetry = now.Add(5 * time.Second)
		next.TrafficMessage = fmt.Sprintf("router %s: %v", router, err)
		if !s.Finished() && !s.Paused {
			e.pauseReason = "paused: traffic router " + router + " failed: " + err.Error()
			e.pending = append(e.pending, rollout.Pause{})
		}
		l.write(ctx, e, next, &Audit{By: Actor.Kind + ":" + Actor.Name,
			Actions: []string{"traffic " + router + " " + strings.Join(desc, " ")}, Errors: []string{err.Error()}})
		return
	}
	for _, w := range applied {
		e.applied[w.Cluster] = w.Weight
	}
	for _, w := range diff {
		if _, ok := e.applied[w.Cluster]; !ok {
			e.applied[w.Cluster] = w.Weight
		}
	}
	next.TrafficMessage = "applied " + strings.Join(desc, " ")
	l.write(ctx, e, next, &Audit{By: Actor.Kind + ":" + Actor.Name, Actions: []string{"traffic " + router + " " + strings.Join(desc, " ")}})
}

// startPending plans and starts rollouts the runner has not started,
// after ending every older rollout of the same service as superseded.
func (l *leader) startPending(ctx context.Context) (started bool) {
	byService := map[string][]*entry{}
	for _, e := range l.entries {
		if e.rec != nil && e.rec.Engine.Finished() {
			continue
		}
		byService[e.spec.Service] = append(byService[e.spec.Service], e)
	}
	for service, es := range byService {
		slices.SortFunc(es, func(a, b *entry) int {
			if c := a.obj.CreatedAt.Compare(b.obj.CreatedAt); c != 0 {
				return c
			}
			return strings.Compare(a.name, b.name)
		})
		newest := es[len(es)-1]
		for _, e := range es[:len(es)-1] {
			l.supersede(ctx, e, newest.spec.Release)
		}
		if newest.rec == nil {
			l.start(ctx, newest, service)
			started = true
		}
	}
	return started
}

// supersede ends e because release by replaces it.
func (l *leader) supersede(ctx context.Context, e *entry, by string) {
	if e.rec == nil {
		e.rec = &Record{Engine: rollout.NewState(rollout.Plan{}, e.spec.Service, e.spec.Release), Finalized: false}
	}
	if !e.rec.Engine.Finished() && !e.hasPending(rollout.Superseded{By: by}) {
		e.pending = append(e.pending, rollout.Superseded{By: by})
	}
}

func (e *entry) hasPending(ev rollout.Event) bool {
	return slices.ContainsFunc(e.pending, func(x rollout.Event) bool { return x == ev })
}

// start plans a Pending rollout and feeds it Start.
func (l *leader) start(ctx context.Context, e *entry, service string) {
	req := PlanRequest{Service: service, Release: e.spec.Release, Strategy: e.spec.Strategy, StrategySpec: e.spec.StrategySpec}
	if wr, ok := l.o.Traffic.(WeightReader); ok {
		req.Router = wr
	}
	planned, err := PlanFor(ctx, l.o.Store, req)
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		s := rollout.NewState(rollout.Plan{}, service, e.spec.Release)
		s.Phase, s.Message, s.FinishedAt = v1.RolloutFailed, err.Error(), l.o.Now()
		e.rec = &Record{Engine: s, Finalized: true}
		l.o.Logger.Warn("rollout runner: plan", "rollout", e.name, "err", err)
		if l.write(ctx, e, e.rec, &Audit{By: Actor.Kind + ":" + Actor.Name, Events: []string{"start"}, Errors: []string{err.Error()}}) {
			l.r.m.ended(nil, e.rec)
			l.notifyRecord(e.name, e.rec, "rollout failed to start: "+err.Error(), l.o.Now())
		}
		return
	}
	if err := setActive(ctx, l.o.Store, service, e.name); err != nil {
		l.o.Logger.Warn("rollout runner: service status", "rollout", e.name, "err", err)
	}
	e.rec = &Record{Engine: rollout.NewState(planned.Plan, service, e.spec.Release)}
	e.rec.PlanWeights = planned.Weights
	e.fed = map[string]obs{}
	e.pending = append(e.pending, rollout.Start{})
}
