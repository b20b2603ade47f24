package analysis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	v1 "flotilla.dev/flotilla/api/v1"
)

// healthValues maps a reported service health to the health provider's
// result. Unknown (and anything unrecognised) has no value: it is no data.
var healthValues = map[string]float64{
	v1.HealthHealthy:     1,
	v1.HealthProgressing: 0.5,
	v1.HealthDegraded:    0,
	v1.HealthFailed:      0,
}

// healthMeasurer reads one cluster's latest agent report.
type healthMeasurer struct {
	a                         *Analyzer
	cluster, service, release string
}

func (a *Analyzer) health(data TemplateData) (measurer, error) {
	if a.o.Store == nil {
		return nil, errors.New("health provider: no store configured")
	}
	if data.Service == "" {
		return nil, errors.New("health provider: the request names no service")
	}
	return &healthMeasurer{a: a, cluster: data.Cluster.Name, service: data.Service, release: data.Release}, nil
}

// measure returns the service's health on the cluster as a number: 1
// Healthy, 0.5 Progressing, 0 Degraded or Failed. It is no data (the
// measurement is Inconclusive) when the agent has not reported, its
// report is older than Options.HealthStaleAfter, the report does not
// name the service, the cluster runs another release than the request's,
// or the health is Unknown: an unreachable cluster never counts as healthy
// nor as failed.
func (m *healthMeasurer) measure(ctx context.Context, _ int) (any, error) {
	sts, err := m.a.o.Store.AgentStatuses(ctx, m.cluster)
	if err != nil {
		return nil, fmt.Errorf("agent status of %s: %w", m.cluster, err)
	}
	st, ok := sts[m.cluster]
	if !ok {
		return nil, noData("no agent report from cluster %s", m.cluster)
	}
	if age := m.a.o.Now().Sub(st.LastHeartbeat); age > m.a.o.HealthStaleAfter {
		return nil, noData("cluster %s last reported %s ago", m.cluster, age.Round(1e9))
	}
	var rep v1.AgentStatusReport
	if err := json.Unmarshal(st.Report, &rep); err != nil {
		return nil, fmt.Errorf("agent report of %s: %w", m.cluster, err)
	}
	for _, s := range rep.Services {
		if s.Service != m.service {
			continue
		}
		if m.release != "" && s.Release != m.release {
			return nil, noData("cluster %s runs release %q of %s, not %q", m.cluster, s.Release, m.service, m.release)
		}
		v, ok := healthValues[s.Health]
		if !ok {
			return nil, noData("service %s on cluster %s is %s", m.service, m.cluster, orDash(s.Health))
		}
		return noted{value: v, note: s.Health}, nil
	}
	return nil, noData("cluster %s does not report service %s", m.cluster, m.service)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
