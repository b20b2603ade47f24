package analysis

import (
	"testing"

	v1 "flotilla.dev/flotilla/api/v1"
)

func TestTallyLimits(t *testing.T) {
	S, F, I, E := v1.MeasurementSuccessful, v1.MeasurementFailed, v1.MeasurementInconclusive, v1.MeasurementError
	cases := []struct {
		name   string
		metric v1.Metric
		phases []string
		want   []v1.GatePhase // after each measurement
	}{
		{"all good", v1.Metric{Count: 3}, []string{S, S, S},
			[]v1.GatePhase{v1.GateRunning, v1.GateRunning, v1.GatePassed}},
		{"one failure over limit 0", v1.Metric{Count: 3}, []string{S, F},
			[]v1.GatePhase{v1.GateRunning, v1.GateFailed}},
		{"failures within limit pass", v1.Metric{Count: 3, FailureLimit: 1}, []string{F, S, S},
			[]v1.GatePhase{v1.GateRunning, v1.GateRunning, v1.GatePassed}},
		{"more than failureLimit fails", v1.Metric{Count: 5, FailureLimit: 1}, []string{F, S, F},
			[]v1.GatePhase{v1.GateRunning, v1.GateRunning, v1.GateFailed}},
		{"inconclusive over limit", v1.Metric{Count: 3}, []string{I},
			[]v1.GatePhase{v1.GateInconclusive}},
		{"errors count as inconclusive", v1.Metric{Count: 4, InconclusiveLimit: 1}, []string{E, S, I},
			[]v1.GatePhase{v1.GateRunning, v1.GateRunning, v1.GateInconclusive}},
		{"nothing succeeded within limits", v1.Metric{Count: 2, InconclusiveLimit: 2}, []string{I, E},
			[]v1.GatePhase{v1.GateRunning, v1.GateInconclusive}},
		{"count 0 means 1", v1.Metric{}, []string{S}, []v1.GatePhase{v1.GatePassed}},
		{"failure checked before inconclusive", v1.Metric{Count: 3}, []string{F},
			[]v1.GatePhase{v1.GateFailed}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var tl tally
			for i, p := range c.phases {
				tl.add(p)
				got, why := tl.assess(c.metric)
				if got != c.want[i] {
					t.Fatalf("after measurement %d (%s): %s (%s), want %s", i+1, p, got, why, c.want[i])
				}
				if (got == v1.GateFailed || got == v1.GateInconclusive) && why == "" {
					t.Errorf("after measurement %d: %s without a reason", i+1, got)
				}
			}
		})
	}
}
