package rollout

import (
	"fmt"
	"slices"
	"strings"
	"text/template"
	"time"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/internal/traffic/capacity"
)

// Step applies one event at time now and returns the new state and the
// actions the runner must carry out, in order. It does no I/O and reads no
// clock. On error the state is returned unchanged and no action is due.
// Step may reuse the memory of s (its slices): callers keep only the
// returned state, or Clone s first.
func Step(s State, ev Event, now time.Time) (State, []Action, error) {
	ci, err := check(&s, ev)
	if err != nil {
		return s, nil, err
	}
	m := machine{s: &s, now: now, ci: ci}
	m.apply(ev)
	m.drive()
	m.settle()
	return s, m.acts, nil
}

// check rejects an event without touching the state; for a cluster
// status it returns the cluster's index.
func check(s *State, ev Event) (int, error) {
	ci := -1
	err := checkEvent(s, ev, &ci)
	return ci, err
}

func checkEvent(s *State, ev Event, ci *int) error {
	if _, status := ev.(ClusterStatus); s.Phase.Terminal() && !(status && s.Restoring()) {
		return fmt.Errorf("%s: rollout of %s is %s: %w", ev, s.Release, s.Phase, ErrFinished)
	}
	pending := s.Phase == v1.RolloutPending
	illegal := func(why string) error { return fmt.Errorf("%s: %s: %w", ev, why, ErrIllegalEvent) }
	switch e := ev.(type) {
	case Start:
		if !pending {
			return illegal("already started")
		}
	case ClusterStatus:
		i, ok := s.index(e.Cluster)
		*ci = i
		if !ok {
			return fmt.Errorf("%s: cluster %q is not part of this rollout: %w", ev, e.Cluster, ErrUnknownCluster)
		}
		switch e.Health {
		case HealthHealthy, HealthProgressing, HealthDegraded, HealthFailed, HealthUnknown:
		default:
			return illegal(fmt.Sprintf("health %q is not Healthy, Progressing, Degraded, Failed or Unknown", e.Health))
		}
	case AnalysisResult:
		if !s.Active || s.AnalysisID == "" || e.ID != s.AnalysisID {
			return illegal(fmt.Sprintf("no analysis %q is running", e.ID))
		}
		switch e.Result {
		case AnalysisSuccessful, AnalysisFailed, AnalysisInconclusive:
		default:
			return illegal(fmt.Sprintf("result %q is not Successful, Failed or Inconclusive", e.Result))
		}
	case Approval:
		g, ok := s.openGate()
		if !ok || g.Kind != GateApproval {
			return illegal("no approval is pending")
		}
		if !slices.ContainsFunc(e.Roles, func(r string) bool { return slices.Contains(g.Roles, r) }) {
			return fmt.Errorf("%s: user %q holds none of the roles %s: %w", ev, e.User, strings.Join(g.Roles, ", "), ErrNotPermitted)
		}
	case Promote:
		switch {
		case pending:
			return illegal("not started")
		case s.Paused && s.Halt == "":
			return illegal("paused; resume first")
		case s.Paused, s.Active, s.Stage == StageWindow, s.Stage == StageHold, s.Capacity == CapacityWait:
		default:
			return illegal("no gate to promote")
		}
	case Pause:
		// A Pending rollout may be paused: Start then goes no further than
		// its first wave's start (the runner holds a start whose drain
		// failed that way).
		if s.Paused {
			return illegal("not progressing")
		}
	case Resume:
		if !s.Paused {
			return illegal("not paused")
		}
	case Retry:
		if !s.Paused || s.Halt == "" {
			return illegal("nothing failed")
		}
	case Rollback, Abort, Superseded, Tick:
	default:
		return illegal("unsupported event")
	}
	return nil
}

// machine carries one transition: the state being changed, the time and
// the actions collected.
type machine struct {
	s      *State
	now    time.Time
	ci     int // the cluster a ClusterStatus is about
	acts   []Action
	timers []time.Time
}

func (m *machine) emit(a Action) { m.acts = append(m.acts, a) }

func (m *machine) timer(t time.Time) {
	if slices.ContainsFunc(m.timers, t.Equal) {
		return
	}
	m.timers = append(m.timers, t)
	m.emit(SetTimer{At: t})
}

func (m *machine) wave() *PlannedWave { return &m.s.Plan.Waves[m.s.Wave] }

func (m *machine) apply(ev Event) {
	s := m.s
	switch e := ev.(type) {
	case Start:
		s.Phase, s.StartedAt = v1.RolloutProgressing, m.now
		m.emit(Notify{Message: fmt.Sprintf("rollout of %s to %d clusters started", s.Release, len(s.Clusters))})
		m.enterWave(0)
	case ClusterStatus:
		m.status(e)
	case AnalysisResult:
		switch e.Result {
		case AnalysisSuccessful:
			m.passGate("analysis "+e.ID+" successful", "")
		case AnalysisFailed:
			m.failGate("analysis " + e.ID + " failed")
		default:
			m.closeGate(v1.GateInconclusive, "analysis "+e.ID+" inconclusive")
			s.AnalysisID = ""
			m.halt(HaltInconclusive, "analysis "+e.ID+" inconclusive: resume to run it again, promote to skip it, abort to roll back")
		}
	case Approval:
		m.passGate("approved by "+e.User, e.User)
	case Promote:
		m.promote()
	case Pause:
		s.Paused, s.PausedAt, s.Message = true, m.now, "paused by a person"
		m.emit(Notify{Message: "rollout paused"})
	case Resume, Retry:
		m.resume()
	case Tick:
		if !s.Paused {
			m.deadlines()
		}
	case Abort:
		m.rollback(v1.RolloutAborted, "aborted by a person", "", false)
	case Rollback:
		m.rollback(v1.RolloutRolledBack, "rolled back by a person", e.To, true)
	case Superseded:
		m.stopAnalysis()
		if s.Active {
			m.closeGate(v1.GateFailed, "stopped: superseded by release "+e.By)
		}
		m.restoreTraffic(false)
		s.SupersededBy = e.By
		m.finish(v1.RolloutSuperseded, "superseded by release "+e.By)
	}
}

// status records a cluster's health and moves its phase.
func (m *machine) status(e ClusterStatus) {
	s := m.s
	i := m.ci
	c := &s.Clusters[i]
	if e.Health != HealthUnknown && e.Release != c.Release {
		c.Message = "reports release " + orDash(e.Release)
		return // about a release it no longer should run
	}
	c.Health, c.Message = e.Health, ""
	if s.Phase.Terminal() {
		// Restoring after a rollback: the cluster's weight comes back once
		// it is Healthy on the release it went back to (or, sent back to
		// nothing, once its agent says it runs nothing).
		if c.Drained && (e.Health == HealthHealthy || (c.Release == "" && e.Health != HealthUnknown)) {
			c.Drained = false
			m.traffic([]int{i}, []int{c.BaseWeight})
			m.emit(Notify{Message: fmt.Sprintf("%s is back on %s: weight %d restored", c.Name, orDash(c.Release), c.BaseWeight)})
		}
		return
	}
	if !c.Touched || c.Wave != s.Wave || s.Phase == v1.RolloutPending {
		return // progress is judged only in the current wave
	}
	w := m.wave()
	p := &s.Progress
	switch {
	case e.Health == HealthHealthy && c.Phase == v1.ClusterRolloutUpdating:
		c.Phase, c.Deadline = v1.ClusterRolloutHealthy, time.Time{}
		p.Updating--
		p.Healthy++
		if c.Drained {
			c.Drained = false
			m.traffic([]int{i}, []int{c.BaseWeight})
		}
	case e.Health == HealthFailed && (c.Phase == v1.ClusterRolloutUpdating || c.Phase == v1.ClusterRolloutHealthy):
		if c.Phase == v1.ClusterRolloutHealthy {
			p.Healthy--
		} else {
			p.Updating--
		}
		c.Phase, c.Deadline, c.Message = v1.ClusterRolloutFailed, time.Time{}, "reported Failed"
		p.Failed++
		m.budget(w)
	case e.Health != HealthHealthy && e.Health != HealthFailed && c.Phase == v1.ClusterRolloutHealthy:
		// A regression (or a lost agent): the cluster must become healthy
		// again within the progress deadline. Bake restarts on a regression,
		// not on Unknown.
		c.Phase, c.Deadline = v1.ClusterRolloutUpdating, m.now.Add(w.ProgressDeadline)
		p.Healthy--
		p.Updating++
		m.timer(c.Deadline)
		if e.Health != HealthUnknown && s.Active && !s.BakeUntil.IsZero() {
			if g, ok := s.openGate(); ok && g.Kind == GateBake {
				s.BakeUntil = time.Time{}
				s.Gates[len(s.Gates)-1].Message = fmt.Sprintf("reset: %s %s", c.Name, e.Health)
			}
		}
	}
}

// deadlines fails the current wave's Updating clusters whose progress
// deadline passed.
func (m *machine) deadlines() {
	s := m.s
	if s.Wave < 0 || s.Wave >= len(s.Plan.Waves) {
		return
	}
	w := m.wave()
	if s.Progress.Updating == 0 {
		return
	}
	var late []string
	for _, i := range w.Members[:s.Progress.Next] {
		c := &s.Clusters[i]
		if c.Phase != v1.ClusterRolloutUpdating || c.Deadline.IsZero() || m.now.Before(c.Deadline) {
			continue
		}
		c.Phase, c.Deadline = v1.ClusterRolloutFailed, time.Time{}
		c.Message = fmt.Sprintf("not healthy within %s (health %s)", w.ProgressDeadline, orDash(c.Health))
		s.Progress.Updating--
		s.Progress.Failed++
		late = append(late, c.Name)
	}
	if len(late) > 0 {
		t := m.now
		s.Gates = append(s.Gates, v1.GateResult{Wave: w.Name, Position: string(StageUpdate), Type: GateDeadline,
			Phase: v1.GateFailed, Message: "progress deadline passed: " + strings.Join(late, ","), StartedAt: &t, FinishedAt: &t})
		m.budget(w)
	}
}

func (m *machine) budget(w *PlannedWave) {
	p := m.s.Progress
	if p.Failed-p.Accepted > w.MaxFailures {
		m.fail(HaltBudget, fmt.Sprintf("wave %s: %d failed, budget %d", w.Name, p.Failed-p.Accepted, w.MaxFailures))
	}
}

// drive advances the rollout as far as it can go without new input.
func (m *machine) drive() {
	s := m.s
	for !s.Phase.Terminal() && !s.Paused && s.Wave >= 0 {
		w := m.wave()
		switch s.Stage {
		case StageWindow:
			if !m.windowOpen() {
				return
			}
			s.Stage, s.Gate = StageBefore, 0
		case StageBefore, StageAfter, StageStep:
			gates := m.gates()
			switch {
			case s.Active:
				if !m.bakeDone() {
					return
				}
				m.passGate("baked", "")
			case s.Gate >= len(gates):
				if !m.waveSettled() {
					return
				}
				m.endStage()
			default:
				m.enterGate(gates[s.Gate])
			}
		case StageUpdate:
			m.assignMore(w)
			if s.Progress.Healthy+s.Progress.Failed < len(w.Clusters) {
				return
			}
			m.endStage()
		case StageHold:
			if m.now.Before(s.HoldUntil) || !m.waveSettled() {
				return
			}
			m.record(GateBake, v1.GatePassed, "hold ended")
			m.enterWave(1)
		default:
			return
		}
	}
}

// waveSettled reports whether the current wave may end: a wave whose
// clusters regressed after its update waits for them (or their deadline)
// after its last gate, so the next wave never starts next to an unhealthy
// one.
func (m *machine) waveSettled() bool {
	if m.s.Progress.Updating == 0 || (m.s.Stage != StageAfter && m.s.Stage != StageHold) {
		return true
	}
	m.s.Message = fmt.Sprintf("wave %s waits for %d clusters to become healthy", m.wave().Name, m.s.Progress.Updating)
	return false
}

func (m *machine) enterWave(i int) {
	s := m.s
	if i >= len(s.Plan.Waves) || (s.Plan.Type == v1.StrategyBlueGreen && i == 1 && s.Plan.AfterHold == v1.AfterHoldKeep) {
		m.finish(v1.RolloutSucceeded, fmt.Sprintf("release %s reached every wave", s.Release))
		return
	}
	s.Wave, s.Stage, s.Step, s.Gate, s.Progress = i, StageWindow, -1, 0, WaveProgress{}
	s.Active, s.WaitUntil, s.Message = false, time.Time{}, ""
	if len(s.Plan.Windows) == 0 {
		s.Stage = StageBefore
	}
}

// windowOpen reports whether the wave may start now; if not it records
// the wait and asks to be woken at the next opening.
func (m *machine) windowOpen() bool {
	s := m.s
	ws := compileWindows(s.Plan.Windows)
	block := windowBlock(ws, m.now)
	if block == "" {
		if !s.WaitUntil.IsZero() {
			m.closeGate(v1.GatePassed, "window open")
			s.WaitUntil = time.Time{}
		}
		s.Message = ""
		return true
	}
	if s.WaitUntil.IsZero() || !m.now.Before(s.WaitUntil) {
		if s.WaitUntil.IsZero() {
			m.record(GateWindow, v1.GateRunning, block)
		} else {
			s.Gates[len(s.Gates)-1].Message = block
		}
		s.WaitUntil = nextOpening(ws, m.now)
		m.timer(s.WaitUntil)
	}
	s.Message = fmt.Sprintf("wave %s waits: %s; next opening %s", m.wave().Name, block, s.WaitUntil.UTC().Format(time.RFC3339))
	return false
}

func (m *machine) gates() []PlannedGate {
	w := m.wave()
	switch m.s.Stage {
	case StageBefore:
		return w.Before
	case StageAfter:
		return w.After
	case StageStep:
		return w.Steps[m.s.Step].Gates
	}
	return nil
}

func (m *machine) position() string {
	if m.s.Stage == StageAfter && m.s.Plan.Type == v1.StrategyBlueGreen && m.s.Wave == 0 {
		return "verify"
	}
	return string(m.s.Stage)
}

// gateName names the current gate for people: wave/position[step]/index.
func (m *machine) gateName() string {
	s := m.s
	if s.Stage == StageStep {
		return fmt.Sprintf("%s/step%d/%d", m.wave().Name, s.Step, s.Gate)
	}
	return fmt.Sprintf("%s/%s/%d", m.wave().Name, m.position(), s.Gate)
}

// openGate returns the planned gate that is open now.
func (s *State) openGate() (PlannedGate, bool) {
	if !s.Active || s.Wave < 0 {
		return PlannedGate{}, false
	}
	m := machine{s: s}
	gates := m.gates()
	if s.Gate >= len(gates) {
		return PlannedGate{}, false
	}
	return gates[s.Gate], true
}

func (m *machine) record(kind string, phase v1.GatePhase, msg string) {
	s := m.s
	t := m.now
	r := v1.GateResult{Wave: m.wave().Name, Position: m.position(), Index: s.Gate, Type: kind, Phase: phase,
		Message: msg, StartedAt: &t}
	if s.Stage == StageStep {
		st := s.Step
		r.Step = &st
	}
	if kind == GateWindow {
		r.Position, r.Index = string(StageWindow), 0
	}
	if phase != v1.GateRunning && phase != v1.GatePending {
		r.FinishedAt = &t
	}
	s.Gates = append(s.Gates, r)
}

func (m *machine) enterGate(g PlannedGate) {
	s := m.s
	s.Active = true
	switch g.Kind {
	case GateApproval:
		m.record(GateApproval, v1.GatePending, "waiting for approval by "+strings.Join(g.Roles, " or "))
		m.emit(RequestApproval{Gate: m.gateName(), Roles: slices.Clone(g.Roles)})
	case GateAnalysis:
		s.Attempts++
		s.AnalysisID = fmt.Sprintf("%s#%d", m.gateName(), s.Attempts)
		m.record(GateAnalysis, v1.GateRunning, s.AnalysisID)
		m.emit(StartAnalysis{ID: s.AnalysisID, Template: g.Analysis.Template, Args: m.args(g.Analysis)})
	case GateBake:
		s.BakeUntil = time.Time{}
		m.record(GateBake, v1.GateRunning, "")
	}
}

// bakeDone reports whether the open gate is a bake that is over. A bake
// runs only while every cluster of the wave that has not failed is
// Healthy; it starts (again) when they all are.
func (m *machine) bakeDone() bool {
	s := m.s
	g, ok := s.openGate()
	if !ok || g.Kind != GateBake {
		return false
	}
	if s.Progress.Updating > 0 {
		return false
	}
	if s.BakeUntil.IsZero() {
		s.BakeUntil = m.now.Add(g.Bake)
		m.timer(s.BakeUntil)
		return false
	}
	return !m.now.Before(s.BakeUntil)
}

// closeGate finishes the open gate's record with phase and message.
func (m *machine) closeGate(phase v1.GatePhase, msg string) {
	s := m.s
	if n := len(s.Gates); n > 0 {
		r := &s.Gates[n-1]
		t := m.now
		r.Phase, r.FinishedAt = phase, &t
		if msg != "" {
			if r.Message != "" && r.Type == GateBake {
				msg = r.Message + "; " + msg
			}
			r.Message = msg
		}
	}
	s.Active, s.BakeUntil = false, time.Time{}
}

func (m *machine) passGate(msg, by string) {
	s := m.s
	m.closeGate(v1.GatePassed, msg)
	if by != "" {
		s.Gates[len(s.Gates)-1].ApprovedBy = by
	}
	s.AnalysisID = ""
	s.Gate++
}

func (m *machine) failGate(msg string) {
	m.closeGate(v1.GateFailed, msg)
	m.s.AnalysisID = ""
	m.fail(HaltGate, "gate "+m.gateName()+" failed: "+msg)
}

func (m *machine) endStage() {
	s := m.s
	w := m.wave()
	switch s.Stage {
	case StageBefore:
		s.Stage, s.Gate = StageUpdate, 0
	case StageUpdate:
		if len(w.Steps) > 0 {
			m.enterStep(0)
		} else {
			s.Stage, s.Gate = StageAfter, 0
		}
	case StageStep:
		if s.Step+1 < len(w.Steps) {
			m.enterStep(s.Step + 1)
		} else {
			s.Stage, s.Step, s.Gate = StageAfter, -1, 0
		}
	case StageAfter:
		switch {
		case len(w.Steps) > 0:
			m.restoreTraffic(true)
			m.enterWave(s.Wave + 1)
		case s.Plan.Type == v1.StrategyBlueGreen && s.Wave == 0:
			m.switchTraffic()
			s.Stage, s.Gate, s.HoldUntil = StageHold, 0, m.now.Add(s.Plan.Hold)
			if s.Plan.Hold > 0 {
				m.timer(s.HoldUntil)
			}
		default:
			m.enterWave(s.Wave + 1)
		}
	}
}

// enterStep sends the step's weight to the canary wave, split evenly over
// its clusters, and the rest to every other cluster.
func (m *machine) enterStep(j int) {
	s := m.s
	w := m.wave()
	s.Stage, s.Step, s.Gate = StageStep, j, 0
	m.split(w.Members, w.Steps[j].Weight)
}

// switchTraffic sends all traffic to the blue/green idle group.
func (m *machine) switchTraffic() {
	m.split(m.s.Plan.Waves[0].Members, 100)
	m.emit(Notify{Message: "traffic switched to " + m.s.Plan.Waves[0].Name})
}

// split gives group share percent of the traffic and the other clusters
// the rest, evenly, remainders to the first clusters by name. Failed
// clusters of the group get nothing.
func (m *machine) split(group []int, share int) {
	s := m.s
	in := make([]bool, len(s.Clusters))
	for _, i := range group {
		in[i] = true
	}
	var gi, oi, fi []int
	for i := range s.Clusters {
		switch {
		case in[i] && s.Clusters[i].Phase == v1.ClusterRolloutFailed:
			fi = append(fi, i)
		case in[i]:
			gi = append(gi, i)
		default:
			oi = append(oi, i)
		}
	}
	idx := append(append(slices.Clone(gi), oi...), fi...)
	weights := append(append(spread(share, len(gi)), spread(100-share, len(oi))...), make([]int, len(fi))...)
	m.traffic(idx, weights)
}

func spread(total, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = total / n
		if i < total%n {
			out[i]++
		}
	}
	return out
}

// traffic emits one SetTraffic for the clusters whose weight changes,
// sorted by name. Without a router nothing is emitted.
func (m *machine) traffic(idx, weights []int) {
	s := m.s
	if s.Plan.Router == "" {
		return
	}
	var tw []v1.TrafficWeight
	order := make([]int, len(idx))
	for k := range order {
		order[k] = k
	}
	slices.SortFunc(order, func(a, b int) int { return idx[a] - idx[b] })
	for _, k := range order {
		c := &s.Clusters[idx[k]]
		if c.Weight == weights[k] {
			continue
		}
		c.Weight = weights[k]
		tw = append(tw, v1.TrafficWeight{Router: s.Plan.Router, Cluster: c.Name, Weight: c.Weight})
	}
	if len(tw) > 0 {
		m.emit(SetTraffic{Router: s.Plan.Router, Weights: tw})
	}
}

// restoreTraffic gives every cluster its planned weight back; with
// keepFailed, failed clusters stay without traffic.
func (m *machine) restoreTraffic(keepFailed bool) {
	s := m.s
	var idx, weights []int
	for i := range s.Clusters {
		if keepFailed && s.Clusters[i].Phase == v1.ClusterRolloutFailed {
			continue
		}
		if s.Clusters[i].Weight != s.Clusters[i].BaseWeight {
			idx = append(idx, i)
			weights = append(weights, s.Clusters[i].BaseWeight)
		}
		s.Clusters[i].Drained = false
	}
	m.traffic(idx, weights)
}

// rollbackTraffic gives untouched clusters their planned weight back and
// touched ones (they ran the failed release) weight 0 until they report
// Healthy on the release they go back to (status restores it). When no
// untouched cluster has traffic to carry, every cluster gets its planned
// weight at once: a failed release serving beats nothing serving.
func (m *machine) rollbackTraffic() {
	s := m.s
	if s.Plan.Router == "" {
		m.restoreTraffic(false)
		return
	}
	if !slices.ContainsFunc(s.Clusters, func(c ClusterState) bool { return !c.Touched && c.BaseWeight > 0 }) {
		m.restoreTraffic(false)
		if slices.ContainsFunc(s.Clusters, func(c ClusterState) bool { return c.Touched && c.BaseWeight > 0 }) {
			m.emit(Notify{Message: "no untouched cluster carries traffic: the clusters rolled back keep theirs while they go back"})
		}
		return
	}
	var idx, weights []int
	for i := range s.Clusters {
		c := &s.Clusters[i]
		w := c.BaseWeight
		c.Drained = false
		if c.Touched {
			w, c.Drained = 0, c.BaseWeight > 0
		}
		if c.Weight != w {
			idx = append(idx, i)
			weights = append(weights, w)
		}
	}
	m.traffic(idx, weights)
}

// assignMore assigns the wave's next clusters while fewer than
// maxParallel are updating. Drained and canary clusters lose their traffic
// first.
func (m *machine) assignMore(w *PlannedWave) {
	s := m.s
	p := &s.Progress
	free := w.MaxParallel - p.Updating
	if free <= 0 || p.Next >= len(w.Clusters) {
		return
	}
	end := min(p.Next+free, len(w.Clusters))
	batch, members := w.Clusters[p.Next:end], w.Members[p.Next:end]
	drains := s.Plan.Router != "" && (w.Drain || len(w.Steps) > 0)
	if drains && s.Capacity != CapacityWaived {
		fit, why := m.drainable(members)
		if fit < len(members) {
			if s.Capacity != CapacityWait {
				m.emit(Notify{Message: "wave " + w.Name + " waits: " + why})
			}
			s.Capacity = CapacityWait
			s.Message = fmt.Sprintf("wave %s waits: %s; it goes on when clusters updating now get their weight back, or promote to drain anyway", w.Name, why)
			if fit == 0 {
				return
			}
			batch, members = batch[:fit], members[:fit]
		} else if s.Capacity != "" {
			s.Capacity, s.Message = "", ""
		}
	} else if s.Capacity != "" {
		s.Capacity, s.Message = "", ""
	}
	p.Next += len(batch)
	p.Updating += len(batch)
	deadline := m.now.Add(w.ProgressDeadline)
	if drains {
		for _, i := range members {
			s.Clusters[i].Drained = w.Drain
		}
		m.traffic(members, make([]int, len(batch)))
	}
	for _, i := range members {
		c := &s.Clusters[i]
		c.Phase, c.Release, c.Touched, c.Deadline, c.Message = v1.ClusterRolloutUpdating, s.Release, true, deadline, ""
		if c.Health == HealthUnknown {
			continue
		}
		c.Health = ""
	}
	m.emit(Assign{Release: s.Release, Clusters: slices.Clone(batch)})
	m.timer(deadline)
}

// drainable says how many of members, taken in order, can lose their
// traffic now: the clusters left in rotation must be able to carry it
// within their declared capacities. With none it says why.
func (m *machine) drainable(members []int) (int, string) {
	s := m.s
	cl := make([]capacity.Cluster, len(s.Clusters))
	for i, c := range s.Clusters {
		cl[i] = capacity.Cluster{Name: c.Name, Weight: c.Weight, Capacity: s.Plan.Clusters[i].Capacity}
		if cl[i].Capacity == 0 {
			cl[i].Capacity = 100
		}
	}
	var why string
	for n := len(members); n > 0; n-- {
		drain := make([]string, n)
		for k, i := range members[:n] {
			drain[k] = s.Clusters[i].Name
		}
		r := capacity.Check(cl, drain)
		if r.OK {
			return n, why
		}
		why = r.Reason
	}
	return 0, why
}

// fail handles a failed gate or a spent budget as the strategy says.
func (m *machine) fail(kind, reason string) {
	if m.s.Plan.OnFailure == v1.OnFailurePause {
		m.halt(kind, reason+": resume or retry to try again, promote to skip, abort to roll back")
		return
	}
	m.rollback(v1.RolloutRolledBack, reason, "", false)
}

func (m *machine) halt(kind, reason string) {
	s := m.s
	s.Paused, s.PausedAt, s.Halt, s.Message = true, m.now, kind, reason
	m.emit(Notify{Message: "rollout paused: " + reason})
}

func (m *machine) resume() {
	s := m.s
	shift, halt := m.now.Sub(s.PausedAt), s.Halt
	s.Paused, s.Halt, s.PausedAt, s.Message = false, "", time.Time{}, ""
	if shift > 0 && s.Wave >= 0 {
		// Time paused does not count against deadlines, bakes or holds.
		var earliest time.Time
		for _, i := range m.wave().Members[:s.Progress.Next] {
			c := &s.Clusters[i]
			if c.Phase == v1.ClusterRolloutUpdating && !c.Deadline.IsZero() {
				c.Deadline = c.Deadline.Add(shift)
				if earliest.IsZero() || c.Deadline.Before(earliest) {
					earliest = c.Deadline
				}
			}
		}
		if !earliest.IsZero() {
			m.timer(earliest)
		}
		if !s.BakeUntil.IsZero() {
			s.BakeUntil = s.BakeUntil.Add(shift)
			m.timer(s.BakeUntil)
		}
		if s.Stage == StageHold {
			s.HoldUntil = s.HoldUntil.Add(shift)
			m.timer(s.HoldUntil)
		}
	}
	if halt == HaltBudget {
		m.retryFailed()
	}
	m.emit(Notify{Message: "rollout resumed"})
}

// retryFailed reassigns the current wave's failed clusters.
func (m *machine) retryFailed() {
	s := m.s
	w := m.wave()
	var again []string
	deadline := m.now.Add(w.ProgressDeadline)
	for _, i := range w.Members[:s.Progress.Next] {
		c := &s.Clusters[i]
		if c.Phase != v1.ClusterRolloutFailed {
			continue
		}
		c.Phase, c.Deadline, c.Message, c.Health = v1.ClusterRolloutUpdating, deadline, "retried", ""
		again = append(again, c.Name)
	}
	s.Progress.Failed -= len(again)
	s.Progress.Updating += len(again)
	s.Progress.Accepted = min(s.Progress.Accepted, s.Progress.Failed)
	if len(again) > 0 {
		m.emit(Assign{Release: s.Release, Clusters: again})
		m.timer(deadline)
	}
}

func (m *machine) promote() {
	s := m.s
	switch {
	case s.Paused && s.Halt == HaltBudget:
		s.Progress.Accepted = s.Progress.Failed
		s.Paused, s.Halt, s.Message = false, "", ""
		m.emit(Notify{Message: "failures accepted by promotion"})
	case s.Capacity == CapacityWait && !s.Paused:
		s.Capacity, s.Message = CapacityWaived, ""
		m.emit(Notify{Message: "capacity check waived by promotion: the next clusters are drained anyway"})
	case s.Paused:
		m.record(m.gates()[s.Gate].Kind, v1.GatePassed, "skipped by promotion after failure")
		s.Gate++
		s.Paused, s.Halt, s.Message = false, "", ""
		m.emit(Notify{Message: "failed gate skipped by promotion"})
	case s.Active:
		m.stopAnalysis()
		m.passGate("skipped by promotion", "")
		m.emit(Notify{Message: "gate skipped by promotion"})
	case s.Stage == StageWindow:
		if !s.WaitUntil.IsZero() {
			m.closeGate(v1.GatePassed, "skipped by promotion")
		}
		s.WaitUntil, s.Stage, s.Gate, s.Message = time.Time{}, StageBefore, 0, ""
		m.emit(Notify{Message: "time window skipped by promotion"})
	case s.Stage == StageHold:
		s.HoldUntil = m.now
		m.emit(Notify{Message: "hold ended by promotion"})
	}
}

func (m *machine) stopAnalysis() {
	if m.s.AnalysisID != "" {
		m.emit(StopAnalysis{ID: m.s.AnalysisID})
		m.s.AnalysisID = ""
	}
}

// rollback sets the traffic first (see rollbackTraffic), then reassigns
// every touched cluster its previous release (or to, when given), and
// ends the rollout.
func (m *machine) rollback(phase v1.RolloutPhase, reason, to string, manual bool) {
	s := m.s
	m.stopAnalysis()
	if s.Active {
		m.closeGate(v1.GateFailed, "stopped: "+reason)
	}
	m.rollbackTraffic()
	byRelease := map[string][]string{}
	for i := range s.Clusters {
		c := &s.Clusters[i]
		if !c.Touched {
			continue
		}
		target := c.Previous
		if manual && to != "" {
			target = to
		}
		byRelease[target] = append(byRelease[target], c.Name)
		c.Phase, c.Release, c.Deadline = v1.ClusterRolloutRolledBack, target, time.Time{}
	}
	for _, r := range sortedKeys(byRelease) {
		m.emit(Assign{Release: r, Clusters: byRelease[r]})
	}
	if len(byRelease) == 0 && phase == v1.RolloutRolledBack && !manual {
		phase = v1.RolloutFailed // nothing was touched: nothing to roll back
	}
	m.finish(phase, reason)
}

func (m *machine) finish(phase v1.RolloutPhase, reason string) {
	s := m.s
	s.Phase, s.Message, s.FinishedAt = phase, reason, m.now
	s.Paused, s.Halt, s.Active, s.AnalysisID, s.Capacity = false, "", false, "", ""
	s.BakeUntil, s.HoldUntil, s.WaitUntil = time.Time{}, time.Time{}, time.Time{}
	for i := range s.Clusters {
		c := &s.Clusters[i]
		c.Deadline = time.Time{}
		if c.Phase == v1.ClusterRolloutPending {
			c.Phase = v1.ClusterRolloutSkipped
		}
	}
	m.emit(Notify{Message: fmt.Sprintf("rollout of %s ended %s: %s", s.Release, phase, reason)})
}

// settle derives the rollout phase from the position.
func (m *machine) settle() {
	s := m.s
	switch {
	case s.Phase.Terminal() || s.Phase == v1.RolloutPending:
	case s.Paused:
		s.Phase = v1.RolloutPaused
	default:
		s.Phase = v1.RolloutProgressing
		if g, ok := s.openGate(); ok && g.Kind == GateApproval {
			s.Phase = v1.RolloutWaitingApproval
			s.Message = "waiting for approval by " + strings.Join(g.Roles, " or ")
		} else if s.Stage != StageWindow && s.Capacity != CapacityWait && !(s.Progress.Updating > 0 && (s.Stage == StageAfter || s.Stage == StageHold)) {
			s.Message = ""
		}
	}
}

// args renders an analysis's arguments for each non-failed cluster of the
// current wave.
func (m *machine) args(ref *v1.AnalysisRef) map[string]map[string]string {
	s := m.s
	out := map[string]map[string]string{}
	tmpls := map[string]*template.Template{}
	for _, k := range sortedKeys(ref.Args) {
		t, err := template.New(k).Option("missingkey=zero").Parse(ref.Args[k])
		if err == nil {
			tmpls[k] = t
		}
	}
	for _, i := range m.wave().Members {
		if s.Clusters[i].Phase == v1.ClusterRolloutFailed {
			continue
		}
		n := s.Clusters[i].Name
		data := map[string]any{
			"Cluster": map[string]any{"Name": n, "Labels": s.Plan.Clusters[i].Labels},
			"Service": s.Service, "Release": s.Release,
		}
		vals := make(map[string]string, len(tmpls))
		for k, t := range tmpls {
			var b strings.Builder
			if err := t.Execute(&b, data); err != nil {
				vals[k] = ""
				continue
			}
			vals[k] = b.String()
		}
		out[n] = vals
	}
	return out
}
