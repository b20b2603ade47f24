package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/internal/auth"
	"flotilla.dev/flotilla/internal/kpi"
	"flotilla.dev/flotilla/internal/store"
)

// kpiRoutes returns the delivery KPI route.
func (s *Server) kpiRoutes() []Route {
	return []Route{{Method: "GET", Path: "/api/v1/kpis", Rule: auth.Require(auth.VerbList, resourceRollouts), OperationID: "kpis",
		Summary:  "Delivery KPIs (deployment frequency, lead time, change failure rate, time to restore) from the rollout history",
		Response: "KPIReport", handle: s.serveKPIs, Query: []Param{
			{"period", "how far back from now: a number of days (7d) or a duration (12h); default 7d", "string"},
			{"service", "only this service (default: the fleet, with a list per service)", "string"}}}}
}

// kpiSchemas names the KPI bodies for the OpenAPI document.
func kpiSchemas() map[string]any { return map[string]any{"KPIReport": v1.KPIReport{}} }

func (s *Server) serveKPIs(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	q := r.URL.Query()
	rep, err := s.kpiReport(r.Context(), q.Get("period"), q.Get("service"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rep)
	return nil
}

// kpiReport computes the KPIs over period (default 7d) for service ("" for the fleet).
func (s *Server) kpiReport(ctx context.Context, period, service string) (*v1.KPIReport, error) {
	d, err := kpi.ParsePeriod(period)
	if err != nil {
		return nil, badRequest("query parameter %v", err)
	}
	if period == "" {
		period = "7d"
	}
	changes, err := s.changeHistory(ctx)
	if err != nil {
		return nil, err
	}
	rep := kpi.Compute(changes, period, d, s.opts.Now(), service)
	return &rep, nil
}

// listAll reads every object of kind, page by page.
func (s *Server) listAll(ctx context.Context, kind string) ([]*store.Object, error) {
	var out []*store.Object
	opts := store.ListOptions{Limit: 1000}
	for {
		l, err := s.store.List(ctx, kind, opts)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", kind, err)
		}
		out = append(out, l.Items...)
		if l.Continue == "" {
			return out, nil
		}
		opts.Continue = l.Continue
	}
}

// changeHistory reads every rollout with its release's commit time.
func (s *Server) changeHistory(ctx context.Context) ([]kpi.Change, error) {
	ros, err := s.listAll(ctx, v1.KindRollout)
	if err != nil {
		return nil, err
	}
	rels, err := s.listAll(ctx, v1.KindRelease)
	if err != nil {
		return nil, err
	}
	commits := make(map[string]*time.Time, len(rels))
	for _, o := range rels {
		var spec v1.ReleaseSpec
		if json.Unmarshal(o.Spec, &spec) == nil {
			commits[o.Name] = spec.Commit.Time
		}
	}
	out := make([]kpi.Change, 0, len(ros))
	for _, o := range ros {
		var ro v1.Rollout
		if err := json.Unmarshal(o.Spec, &ro.Spec); err != nil {
			return nil, fmt.Errorf("rollout %s: spec: %w", o.Name, err)
		}
		if len(o.Status) > 0 {
			if err := json.Unmarshal(o.Status, &ro.Status); err != nil {
				return nil, fmt.Errorf("rollout %s: status: %w", o.Name, err)
			}
		}
		ro.Metadata.Name = o.Name
		out = append(out, kpi.FromRollout(&ro, commits[ro.Spec.Release]))
	}
	return out, nil
}

// kpiMetricPeriods are the periods /metrics exports KPIs over.
var kpiMetricPeriods = []string{"1d", "7d", "30d"}

// kpiCacheFor bounds how often a scrape recomputes the KPIs from the store.
const kpiCacheFor = 30 * time.Second

// kpiCollector exports the KPIs as gauges, per period and service (service "" is the fleet).
type kpiCollector struct {
	s                                   *Server
	deployments, perDay, lead, cfr, ttr *prometheus.Desc

	mu      sync.Mutex
	at      time.Time
	reports []*v1.KPIReport
}

func newKPICollector(s *Server) *kpiCollector {
	l := []string{"period", "service"}
	return &kpiCollector{s: s,
		deployments: prometheus.NewDesc("flotilla_kpi_deployments", "Rollouts that succeeded in the period (service \"\" is the whole fleet).", l, nil),
		perDay:      prometheus.NewDesc("flotilla_kpi_deployment_frequency_per_day", "Successful rollouts per day over the period.", l, nil),
		lead:        prometheus.NewDesc("flotilla_kpi_lead_time_seconds", "Median time from a release's commit to its rollout succeeding.", l, nil),
		cfr:         prometheus.NewDesc("flotilla_kpi_change_failure_rate", "Rollouts failed or rolled back over all finished in the period (0-1).", l, nil),
		ttr:         prometheus.NewDesc("flotilla_kpi_time_to_restore_seconds", "Median time from a rollout failure being detected to every touched cluster healthy again.", l, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *kpiCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.deployments, c.perDay, c.lead, c.cfr, c.ttr} {
		ch <- d
	}
}

// Collect implements prometheus.Collector; a store error leaves the KPIs out of this scrape.
func (c *kpiCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.reports == nil || time.Since(c.at) > kpiCacheFor {
		ctx, cancel := context.WithTimeout(c.s.streams, 10*time.Second)
		defer cancel()
		changes, err := c.s.changeHistory(ctx)
		if err != nil {
			c.s.opts.Logger.Warn("kpi metrics: read the rollout history", "err", err)
			return
		}
		c.reports = c.reports[:0]
		now := c.s.opts.Now()
		for _, p := range kpiMetricPeriods {
			d, _ := kpi.ParsePeriod(p)
			rep := kpi.Compute(changes, p, d, now, "")
			c.reports = append(c.reports, &rep)
		}
		c.at = time.Now()
	}
	for _, rep := range c.reports {
		c.emit(ch, rep.Period, "", rep.Fleet)
		for _, sv := range rep.Services {
			c.emit(ch, rep.Period, sv.Service, sv.KPIs)
		}
	}
}

func (c *kpiCollector) emit(ch chan<- prometheus.Metric, period, service string, k v1.KPIs) {
	ch <- prometheus.MustNewConstMetric(c.deployments, prometheus.GaugeValue, float64(k.Deployments), period, service)
	ch <- prometheus.MustNewConstMetric(c.perDay, prometheus.GaugeValue, k.DeploymentsPerDay, period, service)
	for _, m := range []struct {
		d *prometheus.Desc
		v *float64
	}{{c.lead, k.LeadTimeSeconds}, {c.cfr, k.ChangeFailureRate}, {c.ttr, k.TimeToRestoreSeconds}} {
		if m.v != nil {
			ch <- prometheus.MustNewConstMetric(m.d, prometheus.GaugeValue, *m.v, period, service)
		}
	}
}
