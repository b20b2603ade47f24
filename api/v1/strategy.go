package v1

import (
	"fmt"
	"time"
)

// RolloutStrategy says in which order and at which pace a change reaches the
// clusters of a service, and what happens when it goes wrong.
type RolloutStrategy struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta            `json:"metadata"`
	Spec     RolloutStrategySpec   `json:"spec"`
	Status   RolloutStrategyStatus `json:"status,omitempty"`
}

// StrategyType selects how waves are run.
type StrategyType string

// Strategy types.
const (
	StrategyRolling   StrategyType = "rolling"
	StrategyCanary    StrategyType = "canary"
	StrategyBlueGreen StrategyType = "blueGreen"
)

// FailurePolicy says what happens when a gate fails or a deadline passes.
type FailurePolicy string

// Failure policies.
const (
	OnFailureRollback FailurePolicy = "rollback"
	OnFailurePause    FailurePolicy = "pause"
)

// RolloutStrategySpec is the whole plan. Rolling and canary strategies are
// ordered waves; blueGreen uses BlueGreen instead.
type RolloutStrategySpec struct {
	Type StrategyType `json:"type,omitempty"`
	// TrafficRouter names the TrafficRouter used for steps, drains and the
	// blue/green switch.
	TrafficRouter string        `json:"trafficRouter,omitempty"`
	OnFailure     FailurePolicy `json:"onFailure,omitempty"`
	// Windows restrict when waves may start: a wave starts only inside some
	// allow window (if any is given) and outside every deny window.
	Windows   []TimeWindow       `json:"windows,omitempty"`
	Waves     []Wave             `json:"waves,omitempty"`
	BlueGreen *BlueGreenStrategy `json:"blueGreen,omitempty"`
}

// TimeWindow is an allow or a deny schedule (exactly one is set), read in
// TimeZone (an IANA name, UTC by default). See Schedule for the syntax.
type TimeWindow struct {
	Allow    string `json:"allow,omitempty"`
	Deny     string `json:"deny,omitempty"`
	TimeZone string `json:"timeZone,omitempty"`
}

// Wave is a group of clusters updated together under one set of limits.
type Wave struct {
	Name     string         `json:"name"`
	Clusters *LabelSelector `json:"clusters"`
	// MaxParallel is how many of the wave's clusters update at once: a
	// count or a percentage of the wave; default 1.
	MaxParallel IntOrPercent `json:"maxParallel,omitempty"`
	// MaxFailures is how many clusters may fail before the rollout fails;
	// default 0.
	MaxFailures int `json:"maxFailures,omitempty"`
	// Drain sets a cluster's traffic weight to 0 before updating it and
	// restores it once healthy; needs a traffic router.
	Drain bool `json:"drain,omitempty"`
	// ProgressDeadline bounds how long one cluster may take to become
	// healthy; default 10m.
	ProgressDeadline Duration `json:"progressDeadline,omitempty"`
	// Steps are traffic steps; only the first wave of a canary has them.
	Steps  []CanaryStep `json:"steps,omitempty"`
	Before []Gate       `json:"before,omitempty"`
	After  []Gate       `json:"after,omitempty"`
}

// CanaryStep sends Weight percent of traffic to the canary clusters, then
// runs the analyses and waits Bake before the next step.
type CanaryStep struct {
	Weight   int           `json:"weight"`
	Analysis []AnalysisRef `json:"analysis,omitempty"`
	Bake     Duration      `json:"bake,omitempty"`
}

// AnalysisRef runs an AnalysisTemplate with arguments (Go templates over
// .Cluster, .Service and .Release).
type AnalysisRef struct {
	Template string            `json:"template"`
	Args     map[string]string `json:"args,omitempty"`
}

// Gate holds a wave or a step back until it passes; exactly one field is set.
type Gate struct {
	Approval *ApprovalGate `json:"approval,omitempty"`
	// Bake is a minimum time every cluster of the wave must stay healthy.
	Bake     Duration     `json:"bake,omitempty"`
	Analysis *AnalysisRef `json:"analysis,omitempty"`
}

// ApprovalGate waits for a person holding one of Roles to approve.
type ApprovalGate struct {
	Roles []string `json:"roles"`
}

// BlueGreenStrategy deploys to the idle group, verifies it, switches traffic
// from 0 to 100 and keeps the old group on the previous release for Hold.
type BlueGreenStrategy struct {
	Groups BlueGreenGroups `json:"groups"`
	Verify []Gate          `json:"verify,omitempty"`
	Hold   Duration        `json:"hold,omitempty"`
	// AfterHold says what happens to the old group once Hold ends: update
	// (default) brings it to the new release, keep leaves it as is.
	AfterHold string `json:"afterHold,omitempty"`
}

// BlueGreenGroups select the two cluster groups.
type BlueGreenGroups struct {
	Blue  *LabelSelector `json:"blue"`
	Green *LabelSelector `json:"green"`
}

// AfterHold values.
const (
	AfterHoldUpdate = "update"
	AfterHoldKeep   = "keep"
)

// RolloutStrategyStatus is empty for now; it keeps the object's shape.
type RolloutStrategyStatus struct {
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
}

// GetTypeMeta implements Object.
func (s *RolloutStrategy) GetTypeMeta() *TypeMeta { return &s.TypeMeta }

// GetMetadata implements Object.
func (s *RolloutStrategy) GetMetadata() *ObjectMeta { return &s.Metadata }

// Defaults of a strategy.
const (
	DefaultMaxParallel      IntOrPercent = "1"
	DefaultProgressDeadline Duration     = "10m"
)

// Default implements Object.
func (s *RolloutStrategy) Default() {
	s.TypeMeta.setDefaults(KindRolloutStrategy)
	s.Spec.Default()
}

// Default fills the strategy's defaults in place; it is exported because a
// Rollout may carry a strategy inline.
func (s *RolloutStrategySpec) Default() {
	if s.Type == "" {
		if s.BlueGreen != nil {
			s.Type = StrategyBlueGreen
		} else {
			s.Type = StrategyRolling
		}
	}
	if s.OnFailure == "" {
		s.OnFailure = OnFailureRollback
	}
	for i := range s.Windows {
		if s.Windows[i].TimeZone == "" {
			s.Windows[i].TimeZone = "UTC"
		}
	}
	for i := range s.Waves {
		w := &s.Waves[i]
		if w.MaxParallel == "" {
			w.MaxParallel = DefaultMaxParallel
		}
		if w.ProgressDeadline == "" {
			w.ProgressDeadline = DefaultProgressDeadline
		}
	}
	if bg := s.BlueGreen; bg != nil && bg.AfterHold == "" {
		bg.AfterHold = AfterHoldUpdate
	}
}

// Validate implements Object.
func (s *RolloutStrategy) Validate() error {
	v := newValidator(KindRolloutStrategy, &s.Metadata)
	s.TypeMeta.validate(v, KindRolloutStrategy)
	s.Metadata.validate(v)
	s.Spec.validate(v, "spec")
	return v.err()
}

func (s *RolloutStrategySpec) validate(v *validator, p string) {
	v.oneOf(p+".type", string(s.Type), string(StrategyRolling), string(StrategyCanary), string(StrategyBlueGreen))
	v.optionalDNSLabel(p+".trafficRouter", s.TrafficRouter)
	v.oneOf(p+".onFailure", string(s.OnFailure), string(OnFailureRollback), string(OnFailurePause))
	for i, w := range s.Windows {
		w.validate(v, index(p+".windows", i))
	}
	needsRouter := ""
	switch s.Type {
	case StrategyBlueGreen:
		if s.BlueGreen == nil {
			v.add(p+".blueGreen", "required when type is blueGreen")
		}
		if len(s.Waves) > 0 {
			v.add(p+".waves", "must be empty when type is blueGreen")
		}
		needsRouter = p + ".blueGreen"
	case StrategyRolling, StrategyCanary:
		if s.BlueGreen != nil {
			v.add(p+".blueGreen", "only allowed when type is blueGreen")
		}
		if len(s.Waves) == 0 {
			v.add(p+".waves", "must have at least one wave")
		}
	}
	names := map[string]int{}
	for i := range s.Waves {
		w := &s.Waves[i]
		wp := index(p+".waves", i)
		v.dnsLabel(wp+".name", w.Name)
		if j, dup := names[w.Name]; dup && w.Name != "" {
			v.add(wp+".name", "duplicate wave name %q (also waves[%d])", w.Name, j)
		} else {
			names[w.Name] = i
		}
		v.selector(wp+".clusters", w.Clusters, true)
		if w.MaxParallel != "" {
			if _, _, err := w.MaxParallel.parse(); err != nil {
				v.add(wp+".maxParallel", "%s", err)
			}
		}
		v.nonNegative(wp+".maxFailures", w.MaxFailures)
		v.duration(wp+".progressDeadline", w.ProgressDeadline, false)
		if w.Drain && needsRouter == "" {
			needsRouter = wp + ".drain"
		}
		if len(w.Steps) > 0 {
			switch {
			case s.Type != StrategyCanary:
				v.add(wp+".steps", "only allowed when type is canary")
			case i != 0:
				v.add(wp+".steps", "only the first (canary) wave may have traffic steps")
			}
			if needsRouter == "" {
				needsRouter = wp + ".steps"
			}
		}
		last := 0
		for j, st := range w.Steps {
			sp := index(wp+".steps", j)
			switch {
			case st.Weight < 1 || st.Weight > 100:
				v.add(sp+".weight", "must be from 1 to 100, got %d", st.Weight)
			case st.Weight <= last:
				v.add(sp+".weight", "must be greater than the previous step's weight %d, got %d", last, st.Weight)
			}
			last = max(last, st.Weight)
			for k, a := range st.Analysis {
				a.validate(v, index(sp+".analysis", k))
			}
			v.duration(sp+".bake", st.Bake, false)
		}
		validateGates(v, wp+".before", w.Before)
		validateGates(v, wp+".after", w.After)
	}
	if s.Type == StrategyCanary && len(s.Waves) > 0 && len(s.Waves[0].Steps) == 0 {
		v.add(index(p+".waves", 0)+".steps", "the canary wave needs at least one traffic step")
	}
	if bg := s.BlueGreen; bg != nil {
		bp := p + ".blueGreen"
		v.selector(bp+".groups.blue", bg.Groups.Blue, true)
		v.selector(bp+".groups.green", bg.Groups.Green, true)
		validateGates(v, bp+".verify", bg.Verify)
		v.duration(bp+".hold", bg.Hold, false)
		v.optionalOneOf(bp+".afterHold", bg.AfterHold, AfterHoldUpdate, AfterHoldKeep)
	}
	if needsRouter != "" && s.TrafficRouter == "" && s.Type != "" {
		v.add(p+".trafficRouter", "required by %s", needsRouter)
	}
}

func (w TimeWindow) validate(v *validator, p string) {
	switch {
	case w.Allow != "" && w.Deny != "":
		v.add(p, "must set exactly one of allow or deny, has both")
	case w.Allow == "" && w.Deny == "":
		v.add(p, "must set exactly one of allow or deny")
	case w.Allow != "":
		if _, err := ParseSchedule(w.Allow); err != nil {
			v.add(p+".allow", "%s", err)
		}
	default:
		if _, err := ParseSchedule(w.Deny); err != nil {
			v.add(p+".deny", "%s", err)
		}
	}
	if w.TimeZone != "" {
		if _, err := time.LoadLocation(w.TimeZone); err != nil {
			v.add(p+".timeZone", "unknown time zone %q", w.TimeZone)
		}
	}
}

// Contains reports whether t is inside the window's schedule (for an allow
// window: may run; for a deny window: may not).
func (w TimeWindow) Contains(t time.Time) (bool, error) {
	expr := w.Allow
	if expr == "" {
		expr = w.Deny
	}
	sc, err := ParseSchedule(expr)
	if err != nil {
		return false, err
	}
	loc := time.UTC
	if w.TimeZone != "" {
		if loc, err = time.LoadLocation(w.TimeZone); err != nil {
			return false, fmt.Errorf("time zone %q: %w", w.TimeZone, err)
		}
	}
	return sc.Contains(t, loc), nil
}

func validateGates(v *validator, p string, gates []Gate) {
	for i, g := range gates {
		gp := index(p, i)
		set := 0
		if g.Approval != nil {
			set++
			if len(g.Approval.Roles) == 0 {
				v.add(gp+".approval.roles", "must name at least one role")
			}
			for j, r := range g.Approval.Roles {
				v.dnsLabel(index(gp+".approval.roles", j), r)
			}
		}
		if g.Bake != "" {
			set++
			v.duration(gp+".bake", g.Bake, false)
		}
		if g.Analysis != nil {
			set++
			g.Analysis.validate(v, gp+".analysis")
		}
		if set != 1 {
			v.add(gp, "must set exactly one of approval, bake or analysis, has %d", set)
		}
	}
}

func (a AnalysisRef) validate(v *validator, p string) {
	v.dnsLabel(p+".template", a.Template)
	for _, k := range sortedKeys(a.Args) {
		if !identifierRE.MatchString(k) {
			v.add(p+".args["+k+"]", "argument name must be an identifier")
		}
	}
}
