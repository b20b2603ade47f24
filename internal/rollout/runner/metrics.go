package runner

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	v1 "flotilla.dev/flotilla/api/v1"
)

// leaderOnly ends every help text: a replica that does not lead moves none
// of these, so dashboards sum over replicas or read the leader's.
const leaderOnly = " Only the leading rollout runner's values move."

// metrics are the runner's Prometheus metrics.
type metrics struct {
	active      *prometheus.GaugeVec
	transitions prometheus.Counter
	commit      prometheus.Histogram
	outcomes    *prometheus.CounterVec
	analyses    *prometheus.CounterVec
}

// newMetrics registers the runner's metrics with reg; a nil reg keeps them
// unregistered (counted, not served).
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		active: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "flotilla_rollouts_active",
			Help: "Rollouts the runner tracks that have not ended, by phase." + leaderOnly}, []string{"phase"}),
		transitions: prometheus.NewCounter(prometheus.CounterOpts{Name: "flotilla_rollout_transitions_total",
			Help: "Rollout transitions committed to the store." + leaderOnly}),
		commit: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "flotilla_rollout_transition_seconds",
			Help:    "Time to commit one rollout transition to the store (one database transaction)." + leaderOnly,
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}),
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "flotilla_rollout_outcomes_total",
			Help: "Rollouts that ended, by outcome: succeeded, rolled_back, failed or aborted." + leaderOnly}, []string{"outcome"}),
		analyses: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "flotilla_analysis_runs_total",
			Help: "Analysis runs that ended, by result: passed, failed, inconclusive or error." + leaderOnly}, []string{"result"}),
	}
	for _, o := range []string{"succeeded", "rolled_back", "failed", "aborted"} {
		m.outcomes.WithLabelValues(o)
	}
	for _, r := range []string{"passed", "failed", "inconclusive", "error"} {
		m.analyses.WithLabelValues(r)
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.active, m.transitions, m.commit, m.outcomes, m.analyses} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// committed counts one transition that took d to commit.
func (m *metrics) committed(d time.Duration) {
	m.transitions.Inc()
	m.commit.Observe(d.Seconds())
}

// ended counts the outcome of a rollout whose engine went from prev to
// next, if that transition ended it; a superseded rollout has no outcome.
func (m *metrics) ended(prev, next *Record) {
	if next == nil || !next.Engine.Finished() || (prev != nil && prev.Engine.Finished()) {
		return
	}
	switch next.Engine.Phase {
	case v1.RolloutSucceeded:
		m.outcomes.WithLabelValues("succeeded").Inc()
	case v1.RolloutRolledBack:
		m.outcomes.WithLabelValues("rolled_back").Inc()
	case v1.RolloutFailed:
		m.outcomes.WithLabelValues("failed").Inc()
	case v1.RolloutAborted:
		m.outcomes.WithLabelValues("aborted").Inc()
	}
}

// analysisEnded counts a finished analysis run.
func (m *metrics) analysisEnded(phase v1.GatePhase, errored bool) {
	r := "error"
	switch {
	case errored:
	case phase == v1.GatePassed:
		r = "passed"
	case phase == v1.GateFailed:
		r = "failed"
	case phase == v1.GateInconclusive:
		r = "inconclusive"
	}
	m.analyses.WithLabelValues(r).Inc()
}

// setActive sets the active gauge from the rollouts the leader tracks.
func (m *metrics) setActive(entries map[string]*entry) {
	count := map[v1.RolloutPhase]float64{}
	for _, p := range []v1.RolloutPhase{v1.RolloutPending, v1.RolloutProgressing, v1.RolloutPaused, v1.RolloutWaitingApproval} {
		count[p] = 0
	}
	for _, e := range entries {
		switch {
		case e.rec == nil:
			count[v1.RolloutPending]++
		case !e.rec.Engine.Finished():
			count[e.rec.Engine.Phase]++
		}
	}
	for p, n := range count {
		m.active.WithLabelValues(string(p)).Set(n)
	}
}
