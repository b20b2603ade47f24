package kpi_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/internal/kpi"
)

var now = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

func at(ago time.Duration) *time.Time { t := now.Add(-ago); return &t }

func f(x float64) *float64 { return &x }

const h, day = time.Hour, 24 * time.Hour

// history is a fixed rollout history of two services over ten days.
var history = []kpi.Change{
	// web: three deployments in the last week, lead times 1h, 3h and 2h; one rollback restored
	// after 10 minutes; one aborted; one superseded (counts nowhere).
	{Rollout: "web-1", Service: "web", Phase: v1.RolloutSucceeded, CommitTime: at(6*day + 1*h), FinishedAt: at(6 * day)},
	{Rollout: "web-2", Service: "web", Phase: v1.RolloutSucceeded, CommitTime: at(4*day + 3*h), FinishedAt: at(4 * day)},
	{Rollout: "web-3", Service: "web", Phase: v1.RolloutRolledBack, CommitTime: at(3*day + 1*h), FinishedAt: at(3 * day),
		FailedAt: at(3*day + 10*time.Minute), RestoredAt: at(3 * day)},
	{Rollout: "web-4", Service: "web", Phase: v1.RolloutAborted, FinishedAt: at(2 * day)},
	{Rollout: "web-5", Service: "web", Phase: v1.RolloutSuperseded, FinishedAt: at(2 * day)},
	{Rollout: "web-6", Service: "web", Phase: v1.RolloutSucceeded, CommitTime: at(1*day + 2*h), FinishedAt: at(1 * day)},
	// still running: no effect on any measure.
	{Rollout: "web-7", Service: "web", Phase: v1.RolloutProgressing, CommitTime: at(h)},
	// api: one success nine days ago (outside 7d), one failure 2 hours ago restored after 30
	// minutes, one success without a known commit time (a deployment without lead time).
	{Rollout: "api-1", Service: "api", Phase: v1.RolloutSucceeded, CommitTime: at(9*day + h), FinishedAt: at(9 * day)},
	{Rollout: "api-2", Service: "api", Phase: v1.RolloutFailed, CommitTime: at(3 * h), FinishedAt: at(2 * h),
		FailedAt: at(2*h + 30*time.Minute), RestoredAt: at(2 * h)},
	{Rollout: "api-3", Service: "api", Phase: v1.RolloutSucceeded, FinishedAt: at(5 * h)},
}

func TestComputeOnAFixedHistory(t *testing.T) {
	rep := kpi.Compute(history, "7d", 7*day, now, "")
	if rep.From != now.Add(-7*day) || rep.To != now || rep.Period != "7d" {
		t.Errorf("bounds: %v to %v (%s)", rep.From, rep.To, rep.Period)
	}
	type summary struct {
		Deployments, Finished, Failures, Restores int
		PerDay                                    float64
		Lead, CFR, TTR                            *float64
	}
	sum := func(k v1.KPIs) summary {
		return summary{k.Deployments, k.Finished, k.Failures, k.Restores, k.DeploymentsPerDay, k.LeadTimeSeconds, k.ChangeFailureRate, k.TimeToRestoreSeconds}
	}
	// Fleet: deployments web-1, web-2, web-6, api-3 = 4; finished adds web-3, web-4, api-2 = 7;
	// failures web-3, api-2; lead times 1h, 3h, 2h (api-3 has none) -> median 2h; restores 10m
	// and 30m -> median 20m.
	want := summary{4, 7, 2, 2, 4.0 / 7, f(7200), f(2.0 / 7), f(1200)}
	if diff := cmp.Diff(want, sum(rep.Fleet)); diff != "" {
		t.Errorf("fleet (-want +got):\n%s", diff)
	}
	if len(rep.Services) != 2 || rep.Services[0].Service != "api" || rep.Services[1].Service != "web" {
		t.Fatalf("services: %+v", rep.Services)
	}
	wantAPI := summary{1, 2, 1, 1, 1.0 / 7, nil, f(0.5), f(1800)}
	if diff := cmp.Diff(wantAPI, sum(rep.Services[0].KPIs)); diff != "" {
		t.Errorf("api (-want +got):\n%s", diff)
	}
	wantWeb := summary{3, 5, 1, 1, 3.0 / 7, f(7200), f(0.2), f(600)}
	if diff := cmp.Diff(wantWeb, sum(rep.Services[1].KPIs)); diff != "" {
		t.Errorf("web (-want +got):\n%s", diff)
	}
	// Daily buckets: 7 of them; web-1 finished 6 days ago lands in the first.
	b := rep.Fleet.Buckets
	if len(b) != 7 {
		t.Fatalf("%d buckets, want 7", len(b))
	}
	if b[0].Deployments != 0 || b[1].Deployments != 1 || b[1].LeadTimeSeconds == nil || *b[1].LeadTimeSeconds != 3600 {
		t.Errorf("bucket 1 (web-1): %+v; bucket 0: %+v", b[1], b[0])
	}
	total, failures := 0, 0
	for _, x := range b {
		total += x.Deployments
		failures += x.Failures
	}
	if total != 4 || failures != 2 {
		t.Errorf("buckets add up to %d deployments and %d failures, want 4 and 2", total, failures)
	}
}

func TestComputeOneServiceAndShortPeriods(t *testing.T) {
	rep := kpi.Compute(history, "1d", day, now, "api")
	if rep.Services != nil {
		t.Errorf("a report narrowed to a service has no per-service list: %+v", rep.Services)
	}
	k := rep.Fleet
	if k.Deployments != 1 || k.Failures != 1 || k.Finished != 2 || k.LeadTimeSeconds != nil {
		t.Errorf("api over 1d: %+v", k)
	}
	if len(k.Buckets) != 24 {
		t.Errorf("a day has %d buckets, want 24 hourly ones", len(k.Buckets))
	}
	// The failure 2 hours ago is in the bucket that starts 22 hours after the period does.
	if k.Buckets[22].Failures != 1 {
		t.Errorf("hourly buckets: %+v", k.Buckets[20:])
	}
}

func TestComputeWithNothingToMeasure(t *testing.T) {
	k := kpi.Compute(nil, "7d", 7*day, now, "").Fleet
	if k.Deployments != 0 || k.LeadTimeSeconds != nil || k.ChangeFailureRate != nil || k.TimeToRestoreSeconds != nil {
		t.Errorf("empty history: %+v; measures without data must be absent, not zero", k)
	}
	// A restore before the failure (clock skew) is ignored rather than counted as negative.
	bad := []kpi.Change{{Service: "x", Phase: v1.RolloutRolledBack, FinishedAt: at(h), FailedAt: at(h), RestoredAt: at(2 * h)}}
	if k := kpi.Compute(bad, "7d", 7*day, now, "").Fleet; k.Restores != 0 || k.TimeToRestoreSeconds != nil {
		t.Errorf("restore before failure: %+v", k)
	}
}

func TestParsePeriod(t *testing.T) {
	for in, want := range map[string]time.Duration{"": 7 * day, "7d": 7 * day, "1d": day, "90d": 90 * day, "12h": 12 * h} {
		got, err := kpi.ParsePeriod(in)
		if err != nil || got != want {
			t.Errorf("ParsePeriod(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"0d", "-1d", "x", "1000d", "30m", "7days"} {
		if _, err := kpi.ParsePeriod(in); err == nil {
			t.Errorf("ParsePeriod(%q) accepted", in)
		}
	}
}
