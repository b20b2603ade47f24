package kpi

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	v1 "flotilla.dev/flotilla/api/v1"
)

// Change is one rollout as the measures see it.
type Change struct {
	Rollout string
	Service string
	Phase   v1.RolloutPhase
	// CommitTime is when the release's commit was made; nil when unknown.
	CommitTime *time.Time
	FinishedAt *time.Time
	FailedAt   *time.Time
	RestoredAt *time.Time
}

// FromRollout reduces a rollout to a Change; commitTime is its release's commit time (nil when
// the release or its time is unknown).
func FromRollout(ro *v1.Rollout, commitTime *time.Time) Change {
	return Change{Rollout: ro.Metadata.Name, Service: ro.Spec.Service, Phase: ro.Status.Phase, CommitTime: commitTime,
		FinishedAt: ro.Status.FinishedAt, FailedAt: ro.Status.FailedAt, RestoredAt: ro.Status.RestoredAt}
}

// Periods are the periods the dashboard offers, shortest first.
var Periods = []string{"1d", "7d", "30d", "90d"}

// MaxPeriod is the longest period ParsePeriod accepts.
const MaxPeriod = 366 * 24 * time.Hour

// ParsePeriod reads a period as a number of days ("7d") or a Go duration ("12h"), from one hour
// to MaxPeriod. "" is the default of 7 days.
func ParsePeriod(s string) (time.Duration, error) {
	if s == "" {
		return 7 * 24 * time.Hour, nil
	}
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil {
			return 0, fmt.Errorf("period %q: want a number of days such as 7d, or a duration such as 12h", s)
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("period %q: want a number of days such as 7d, or a duration such as 12h", s)
		}
	}
	if d < time.Hour || d > MaxPeriod {
		return 0, fmt.Errorf("period %q: want from 1h to 366d", s)
	}
	return d, nil
}

// Compute measures changes over the period of length d ending at now. The period's name (as
// asked) is copied into the report. With service set, only that service's changes count and the
// report has no per-service list.
func Compute(changes []Change, period string, d time.Duration, now time.Time, service string) v1.KPIReport {
	from := now.Add(-d)
	rep := v1.KPIReport{Period: period, From: from.UTC(), To: now.UTC(), Service: service}
	byService := map[string][]Change{}
	var all []Change
	for _, c := range changes {
		if service != "" && c.Service != service {
			continue
		}
		all = append(all, c)
		byService[c.Service] = append(byService[c.Service], c)
	}
	rep.Fleet = measure(all, from, now, d)
	if service == "" {
		names := make([]string, 0, len(byService))
		for name := range byService {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			rep.Services = append(rep.Services, v1.ServiceKPI{Service: name, KPIs: measure(byService[name], from, now, d)})
		}
	}
	return rep
}

// bucketSize splits a period into hours up to two days, else into days.
func bucketSize(d time.Duration) time.Duration {
	if d <= 48*time.Hour {
		return time.Hour
	}
	return 24 * time.Hour
}

func in(t *time.Time, from, to time.Time) bool {
	return t != nil && !t.Before(from) && t.Before(to)
}

// measure computes the KPIs of changes within [from, to).
func measure(changes []Change, from, to time.Time, d time.Duration) v1.KPIs {
	var k v1.KPIs
	size := bucketSize(d)
	n := int((d + size - 1) / size)
	k.Buckets = make([]v1.KPIBucket, n)
	leadByBucket := make([][]float64, n)
	for i := range k.Buckets {
		k.Buckets[i].Start = from.Add(time.Duration(i) * size).UTC()
	}
	var leads, restores []float64
	for _, c := range changes {
		if in(c.FinishedAt, from, to) {
			b := int(c.FinishedAt.Sub(from) / size)
			switch c.Phase {
			case v1.RolloutSucceeded:
				k.Deployments++
				k.Finished++
				k.Buckets[b].Deployments++
				if c.CommitTime != nil && !c.FinishedAt.Before(*c.CommitTime) {
					lt := c.FinishedAt.Sub(*c.CommitTime).Seconds()
					leads = append(leads, lt)
					leadByBucket[b] = append(leadByBucket[b], lt)
				}
			case v1.RolloutFailed, v1.RolloutRolledBack:
				k.Finished++
				k.Failures++
				k.Buckets[b].Failures++
			case v1.RolloutAborted:
				k.Finished++
			}
		}
		if in(c.RestoredAt, from, to) && c.FailedAt != nil && !c.RestoredAt.Before(*c.FailedAt) {
			k.Restores++
			restores = append(restores, c.RestoredAt.Sub(*c.FailedAt).Seconds())
		}
	}
	k.DeploymentsPerDay = float64(k.Deployments) / (d.Hours() / 24)
	k.LeadTimeSeconds = median(leads)
	if k.Finished > 0 {
		r := float64(k.Failures) / float64(k.Finished)
		k.ChangeFailureRate = &r
	}
	k.TimeToRestoreSeconds = median(restores)
	for i := range k.Buckets {
		k.Buckets[i].LeadTimeSeconds = median(leadByBucket[i])
	}
	return k
}

// median returns the median of xs, nil when there are none.
func median(xs []float64) *float64 {
	if len(xs) == 0 {
		return nil
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return &m
}
