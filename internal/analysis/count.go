package analysis

import (
	"fmt"

	v1 "flotilla.dev/flotilla/api/v1"
)

// tally counts one metric's measurements on one cluster by phase.
type tally struct {
	measured, successful, failed, inconclusive, errors int
}

// add counts one measurement phase.
func (t *tally) add(phase string) {
	t.measured++
	switch phase {
	case v1.MeasurementSuccessful:
		t.successful++
	case v1.MeasurementFailed:
		t.failed++
	case v1.MeasurementInconclusive:
		t.inconclusive++
	default:
		t.errors++
	}
}

// assess says where the metric stands after the measurements counted so
// far, and why when it is decided:
//
//   - more Failed measurements than FailureLimit: Failed, at once;
//   - more Inconclusive plus Error measurements than InconclusiveLimit:
//     Inconclusive, at once (an Error is a provider failure, which says
//     nothing about the release, so it counts as inconclusive);
//   - after Count measurements within both limits: Passed when at least
//     one measurement was Successful, else Inconclusive (nothing ever
//     vouched for the release);
//   - otherwise Running.
func (t tally) assess(m v1.Metric) (v1.GatePhase, string) {
	count := max(m.Count, 1)
	switch {
	case t.failed > m.FailureLimit:
		return v1.GateFailed, fmt.Sprintf("%d of %d measurements failed (failureLimit %d)", t.failed, t.measured, m.FailureLimit)
	case t.inconclusive+t.errors > m.InconclusiveLimit:
		return v1.GateInconclusive, fmt.Sprintf("%d of %d measurements inconclusive and %d errors (inconclusiveLimit %d)",
			t.inconclusive, t.measured, t.errors, m.InconclusiveLimit)
	case t.measured >= count && t.successful == 0:
		return v1.GateInconclusive, fmt.Sprintf("none of %d measurements succeeded", t.measured)
	case t.measured >= count:
		return v1.GatePassed, ""
	}
	return v1.GateRunning, ""
}
