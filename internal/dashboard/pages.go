package dashboard

import (
	"context"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/labels"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/internal/auth"
	"flotilla.dev/flotilla/internal/kpi"
)

// kv is one label or annotation.
type kv struct{ Key, Value string }

func sortedKV(m map[string]string) []kv {
	out := make([]kv, 0, len(m))
	for k, v := range m {
		out = append(out, kv{k, v})
	}
	slices.SortFunc(out, func(a, b kv) int { return strings.Compare(a.Key, b.Key) })
	return out
}

type fleetRow struct {
	Name     string
	Labels   []kv
	Phase    string // agent connectivity
	Health   string
	LastSeen *time.Time
	Services map[string]ServiceState
}

type fleetPage struct {
	Selector string
	Error    string
	Total    int
	Rows     []fleetRow
	Services []string
	Phases   []count
	Healths  []count
}

type count struct {
	Name string
	N    int
}

func counts(m map[string]int, order []string) []count {
	var out []count
	for _, k := range order {
		if m[k] > 0 {
			out = append(out, count{k, m[k]})
		}
	}
	return out
}

func (d *Dashboard) fleet(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	ctx := r.Context()
	seq, err := d.opts.Backend.LatestSeq(ctx)
	if err != nil {
		return err
	}
	page := fleetPage{Selector: strings.TrimSpace(r.URL.Query().Get("selector"))}
	sel := labels.Everything()
	if page.Selector != "" {
		if sel, err = labels.Parse(page.Selector); err != nil {
			page.Error = fmt.Sprintf("label filter %q: %v", page.Selector, err)
			sel = labels.Nothing()
		}
	}
	cls, err := d.opts.Backend.Clusters(ctx)
	if err != nil {
		return err
	}
	page.Total = len(cls)
	states, err := d.opts.Backend.ServiceStates(ctx)
	if err != nil {
		return err
	}
	phases, healths, services := map[string]int{}, map[string]int{}, map[string]bool{}
	for _, c := range cls {
		if !sel.Matches(labels.Set(c.Metadata.Labels)) {
			continue
		}
		row := fleetRow{Name: c.Metadata.Name, Labels: sortedKV(c.Metadata.Labels), Phase: string(c.Status.Phase),
			Health: c.Status.Health, LastSeen: c.Status.LastSeen, Services: map[string]ServiceState{}}
		if row.Phase == "" {
			row.Phase = string(v1.ClusterPending)
		}
		if row.Health == "" {
			row.Health = v1.HealthUnknown
		}
		for _, sv := range states[c.Metadata.Name] {
			row.Services[sv.Service] = sv
			services[sv.Service] = true
		}
		phases[row.Phase]++
		healths[row.Health]++
		page.Rows = append(page.Rows, row)
	}
	for s := range services {
		page.Services = append(page.Services, s)
	}
	slices.Sort(page.Services)
	page.Phases = counts(phases, []string{string(v1.ClusterReady), string(v1.ClusterNotReady), string(v1.ClusterDisconnected), string(v1.ClusterPending)})
	page.Healths = counts(healths, []string{v1.HealthHealthy, v1.HealthProgressing, v1.HealthDegraded, v1.HealthFailed, v1.HealthUnknown})
	d.render(w, r, http.StatusOK, "fleet", p, page, live(seq, "Cluster:* AgentStatus:*", 2000))
	return nil
}

type clusterPage struct {
	Cluster     *v1.Cluster
	Labels      []kv
	Annotations []kv
	Report      *v1.AgentReport
}

func (d *Dashboard) cluster(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	ctx := r.Context()
	name := r.PathValue("name")
	seq, err := d.opts.Backend.LatestSeq(ctx)
	if err != nil {
		return err
	}
	c, err := d.opts.Backend.Cluster(ctx, name)
	if err != nil {
		return err
	}
	reps, err := d.opts.Backend.AgentReports(ctx, name)
	if err != nil {
		return err
	}
	page := clusterPage{Cluster: c, Labels: sortedKV(c.Metadata.Labels), Annotations: sortedKV(c.Metadata.Annotations), Report: reps[name]}
	d.render(w, r, http.StatusOK, "cluster", p, page, live(seq, "Cluster:"+name+" AgentStatus:"+name, 0))
	return nil
}

type servicesPage struct {
	Services []v1.Service
}

func (d *Dashboard) services(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	seq, err := d.opts.Backend.LatestSeq(r.Context())
	if err != nil {
		return err
	}
	svcs, err := d.opts.Backend.Services(r.Context())
	if err != nil {
		return err
	}
	d.render(w, r, http.StatusOK, "services", p, servicesPage{Services: svcs}, live(seq, "Service:*", 0))
	return nil
}

type releaseRow struct {
	Release  v1.Release
	Clusters []string // clusters whose agent reports running it
	Current  bool
}

type servicePage struct {
	Service  *v1.Service
	Labels   []kv
	Releases []releaseRow
	// Other are clusters running a release the page does not list (older than the list).
	Other    map[string][]string
	Rollouts []v1.Rollout
	// Form is the release form, for those who may create releases; nil hides it.
	Form *releaseForm
}

// releaseForm is the service page's "create release" control and what its last use came to.
type releaseForm struct {
	Ref    string
	Result *ReleaseResult
}

func (d *Dashboard) service(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	return d.servicePage(w, r, p, http.StatusOK, nil)
}

// createRelease releases the service at the form's ref and answers with the service page, its
// form showing the release made or why none was (the page's own URL, so the live refresh and a
// reload read it; resubmitting is harmless: the release of a commit is made once).
func (d *Dashboard) createRelease(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	if !d.opts.Releases {
		d.WriteError(w, r, http.StatusNotFound, "this server runs no source controller, so it makes no releases")
		return nil
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	ref := strings.TrimSpace(r.PostFormValue("ref"))
	res, err := d.opts.Backend.CreateRelease(r.Context(), p, r.PathValue("name"), ref)
	if err != nil {
		return err
	}
	code := http.StatusOK
	switch {
	case res.Error != "":
		code = http.StatusUnprocessableEntity
	case res.Created:
		code = http.StatusCreated
	}
	return d.servicePage(w, r, p, code, &releaseForm{Ref: ref, Result: &res})
}

// mayCreateReleases says whether p sees the release form.
func (d *Dashboard) mayCreateReleases(p *auth.Principal) bool {
	return d.opts.Releases && d.opts.Roles != nil && d.opts.Roles.Allowed(p, auth.Permission{Verb: auth.VerbCreate, Resource: "releases"})
}

// sourceRef is the ref of src in the form the release API reads: a branch by its name, others
// with their prefix.
func sourceRef(src *v1.Source) string {
	if src == nil || src.Spec.Git == nil {
		return ""
	}
	switch ref := src.Spec.Git.Ref; {
	case ref.Branch != "":
		return ref.Branch
	case ref.Tag != "":
		return "tag:" + ref.Tag
	case ref.Semver != "":
		return "semver:" + ref.Semver
	case ref.Commit != "":
		return "commit:" + ref.Commit
	}
	return ""
}

func (d *Dashboard) servicePage(w http.ResponseWriter, r *http.Request, p *auth.Principal, code int, form *releaseForm) error {
	ctx := r.Context()
	name := r.PathValue("name")
	seq, err := d.opts.Backend.LatestSeq(ctx)
	if err != nil {
		return err
	}
	svc, err := d.opts.Backend.Service(ctx, name)
	if err != nil {
		return err
	}
	rels, err := d.opts.Backend.Releases(ctx, name)
	if err != nil {
		return err
	}
	ros, err := d.opts.Backend.Rollouts(ctx, name)
	if err != nil {
		return err
	}
	states, err := d.opts.Backend.ServiceStates(ctx)
	if err != nil {
		return err
	}
	running := map[string][]string{}
	for cluster, svs := range states {
		for _, sv := range svs {
			if sv.Service == name && sv.Release != "" {
				running[sv.Release] = append(running[sv.Release], cluster)
			}
		}
	}
	slices.SortFunc(rels, func(a, b v1.Release) int { return -compareCreated(a.Metadata, b.Metadata) })
	page := servicePage{Service: svc, Labels: sortedKV(svc.Metadata.Labels), Other: map[string][]string{}, Form: form}
	if page.Form == nil && d.mayCreateReleases(p) {
		page.Form = &releaseForm{}
		// The form starts from the source's ref; a source that cannot be read leaves it empty,
		// which the server reads as that same ref.
		if src, err := d.opts.Backend.Source(ctx, svc.Spec.Source.Name); err == nil {
			page.Form.Ref = sourceRef(src)
		}
	}
	for _, rel := range rels {
		cl := running[rel.Metadata.Name]
		slices.Sort(cl)
		delete(running, rel.Metadata.Name)
		page.Releases = append(page.Releases, releaseRow{Release: rel, Clusters: cl, Current: rel.Metadata.Name == svc.Status.CurrentRelease})
	}
	for rel, cl := range running {
		slices.Sort(cl)
		page.Other[rel] = cl
	}
	slices.SortFunc(ros, func(a, b v1.Rollout) int { return -compareCreated(a.Metadata, b.Metadata) })
	page.Rollouts = ros
	d.render(w, r, code, "service", p, page, live(seq, "Service:"+name+" Release:* Rollout:* AgentStatus:*", 1000))
	return nil
}

func compareCreated(a, b v1.ObjectMeta) int {
	var ta, tb time.Time
	if a.CreationTimestamp != nil {
		ta = *a.CreationTimestamp
	}
	if b.CreationTimestamp != nil {
		tb = *b.CreationTimestamp
	}
	if c := ta.Compare(tb); c != 0 {
		return c
	}
	return strings.Compare(a.Name, b.Name)
}

type rolloutsPage struct {
	Active, Finished []v1.Rollout
}

func (d *Dashboard) rollouts(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	seq, err := d.opts.Backend.LatestSeq(r.Context())
	if err != nil {
		return err
	}
	ros, err := d.opts.Backend.Rollouts(r.Context(), "")
	if err != nil {
		return err
	}
	slices.SortFunc(ros, func(a, b v1.Rollout) int { return -compareCreated(a.Metadata, b.Metadata) })
	var page rolloutsPage
	for _, ro := range ros {
		if ro.Status.Phase.Terminal() {
			page.Finished = append(page.Finished, ro)
		} else {
			page.Active = append(page.Active, ro)
		}
	}
	d.render(w, r, http.StatusOK, "rollouts", p, page, live(seq, "Rollout:*", 0))
	return nil
}

type wave struct {
	Name     string
	Current  bool
	Clusters []v1.RolloutCluster
}

type chart struct {
	Title string
	Phase v1.GatePhase
	SVG   template.HTML
}

type analysisView struct {
	Run    v1.AnalysisRun
	Charts []chart
}

type rolloutPage struct {
	Rollout  *v1.Rollout
	Strategy strategyView
	Waves    []wave
	Analyses []analysisView
	Buttons  []string
}

// strategyView is the strategy a rollout runs by, as the rollout runner picks it: the inline
// one, else the one the rollout names, else the service's, else every cluster at once.
type strategyView struct {
	// Type is the strategy's type (rolling, canary, blueGreen); Name the RolloutStrategy's name,
	// "" for an inline strategy or none.
	Type, Name string
	// From is "inline", "rollout" (named by the rollout), "service" (the service's) or "" (none
	// named: every cluster at once).
	From string
	// Missing says the named strategy could not be read.
	Missing bool
}

// strategyOf finds the strategy ro runs by and its spec (nil when it cannot be read).
func (d *Dashboard) strategyOf(ctx context.Context, ro *v1.Rollout) (strategyView, *v1.RolloutStrategySpec) {
	if spec := ro.Spec.StrategySpec; spec != nil {
		return strategyView{Type: typeOf(spec), From: "inline"}, spec
	}
	v := strategyView{Name: ro.Spec.Strategy, From: "rollout"}
	if v.Name == "" {
		if svc, err := d.opts.Backend.Service(ctx, ro.Spec.Service); err == nil {
			v.Name, v.From = svc.Spec.Strategy, "service"
		}
	}
	if v.Name == "" {
		return strategyView{Type: string(v1.StrategyRolling)}, nil
	}
	spec, err := d.opts.Backend.Strategy(ctx, v.Name)
	if err != nil {
		v.Missing = true
		return v, nil
	}
	v.Type = typeOf(spec)
	return v, spec
}

func typeOf(spec *v1.RolloutStrategySpec) string {
	if spec.Type == "" {
		return string(v1.StrategyRolling)
	}
	return string(spec.Type)
}

func (d *Dashboard) rollout(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	ctx := r.Context()
	name := r.PathValue("name")
	seq, err := d.opts.Backend.LatestSeq(ctx)
	if err != nil {
		return err
	}
	ro, err := d.opts.Backend.Rollout(ctx, name)
	if err != nil {
		return err
	}
	buttons, err := d.buttons(ctx, p, ro)
	if err != nil {
		return err
	}
	page := rolloutPage{Rollout: ro, Buttons: buttons}
	var spec *v1.RolloutStrategySpec
	page.Strategy, spec = d.strategyOf(ctx, ro)
	index := map[string]int{}
	// Waves in the plan's order (status lists clusters by name): the status names them once
	// planned, the strategy before; clusters of other waves follow in order of appearance.
	order := ro.Status.Waves
	if len(order) == 0 && spec != nil {
		for _, w := range spec.Waves {
			order = append(order, w.Name)
		}
	}
	for _, w := range order {
		index[w] = len(page.Waves)
		page.Waves = append(page.Waves, wave{Name: w, Current: w == ro.Status.CurrentWaveName})
	}
	for _, c := range ro.Status.Clusters {
		i, ok := index[c.Wave]
		if !ok {
			i = len(page.Waves)
			index[c.Wave] = i
			page.Waves = append(page.Waves, wave{Name: c.Wave, Current: c.Wave != "" && c.Wave == ro.Status.CurrentWaveName})
		}
		page.Waves[i].Clusters = append(page.Waves[i].Clusters, c)
	}
	for i := len(ro.Status.Analyses) - 1; i >= 0; i-- { // newest first
		run := ro.Status.Analyses[i]
		av := analysisView{Run: run}
		for _, m := range run.Metrics {
			title := m.Name
			if m.Cluster != "" {
				title += " @ " + m.Cluster
			}
			av.Charts = append(av.Charts, chart{Title: title, Phase: m.Phase, SVG: metricChart(m)})
		}
		page.Analyses = append(page.Analyses, av)
	}
	d.render(w, r, http.StatusOK, "rollout", p, page, live(seq, "Rollout:"+name, 0))
	return nil
}

// buttons returns the actions p may take on ro in its current phase: the roles are checked as
// the server will check them, so nobody sees a button that would be refused for lack of a role.
// Retry is offered only where the rollout runner takes it: on a rollout that ended Failed,
// RolledBack or Aborted (a new rollout of its release) or one paused by a failure; the status
// and the runner's record must agree.
func (d *Dashboard) buttons(ctx context.Context, p *auth.Principal, ro *v1.Rollout) ([]string, error) {
	phase := ro.Status.Phase
	may := func(verb auth.Verb) bool {
		return d.opts.Roles != nil && d.opts.Roles.Allowed(p, auth.Permission{Verb: verb, Resource: "rollouts"})
	}
	retry := func() (bool, error) {
		switch phase {
		case v1.RolloutFailed, v1.RolloutRolledBack, v1.RolloutAborted, v1.RolloutPaused:
			return d.opts.Backend.RolloutRetryable(ctx, ro.Metadata.Name)
		}
		return false, nil
	}
	var out []string
	if phase.Terminal() {
		if !may(auth.VerbUpdate) {
			return nil, nil
		}
		if ok, err := retry(); err != nil || !ok {
			return nil, err
		}
		return []string{ActionRetry}, nil
	}
	if wf := ro.Status.WaitingFor; wf != nil && may(auth.VerbGet) && slices.ContainsFunc(p.Roles, func(r string) bool { return slices.Contains(wf.Roles, r) }) {
		out = append(out, ActionApprove)
	}
	if !may(auth.VerbUpdate) {
		return out, nil
	}
	if phase != v1.RolloutPending {
		out = append(out, ActionPromote)
	}
	if phase == v1.RolloutPaused {
		out = append(out, ActionResume)
		ok, err := retry()
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, ActionRetry)
		}
	} else {
		out = append(out, ActionPause)
	}
	return append(out, ActionAbort, ActionRollback), nil
}

func (d *Dashboard) act(w http.ResponseWriter, r *http.Request, p *auth.Principal, action string) error {
	ctx := r.Context()
	name := r.PathValue("name")
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	to := strings.TrimSpace(r.PostFormValue("to"))
	var before *v1.Rollout
	if action == ActionRetry {
		ro, err := d.opts.Backend.Rollout(ctx, name)
		if err != nil {
			return err
		}
		before = ro
	}
	if err := d.opts.Backend.RolloutAction(ctx, p, name, action, to); err != nil {
		return err
	}
	next := name
	if before != nil && before.Status.Phase.Terminal() {
		// Retrying a finished rollout starts a new one of its release; show that one.
		next = d.retriedAs(ctx, before)
	}
	http.Redirect(w, r, "/ui/rollouts/"+url.PathEscape(next), http.StatusSeeOther)
	return nil
}

// retriedAs finds the rollout a retry of the finished rollout ro started: the newest rollout of
// its release named after it ("<release>-retryN"), or ro itself when none is found.
func (d *Dashboard) retriedAs(ctx context.Context, ro *v1.Rollout) string {
	ros, err := d.opts.Backend.Rollouts(ctx, ro.Spec.Service)
	if err != nil {
		return ro.Metadata.Name
	}
	best := ro.Metadata.Name
	var newest *v1.Rollout
	for i := range ros {
		c := &ros[i]
		if c.Spec.Release != ro.Spec.Release || c.Metadata.Name == ro.Metadata.Name || !strings.Contains(c.Metadata.Name, "-retry") {
			continue
		}
		if newest == nil || compareCreated(c.Metadata, newest.Metadata) > 0 {
			newest, best = c, c.Metadata.Name
		}
	}
	return best
}

type auditPage struct {
	Kind, Name, Actor, Since string
	Events                   []v1.Event
	More                     bool
	Error                    string
}

// auditLimit is how many events the audit page shows at once.
const auditLimit = 500

func (d *Dashboard) audit(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	ctx := r.Context()
	seq, err := d.opts.Backend.LatestSeq(ctx)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	page := auditPage{Kind: q.Get("kind"), Name: strings.TrimSpace(q.Get("name")), Actor: strings.TrimSpace(q.Get("actor")), Since: q.Get("since")}
	if page.Since == "" {
		page.Since = "24h"
	}
	aq := AuditQuery{Name: page.Name, Actor: page.Actor, Limit: auditLimit + 1}
	if page.Kind != "" {
		aq.Kinds = []string{page.Kind}
	}
	if page.Since != "all" {
		if t, err := time.Parse(time.RFC3339, page.Since); err == nil {
			aq.Since = t
		} else if dur, err := kpi.ParsePeriod(page.Since); err == nil {
			aq.Since = d.opts.Now().Add(-dur)
		} else {
			page.Error = fmt.Sprintf("since %q: want 1h, 24h, 7d, 30d, all or an RFC 3339 time", page.Since)
		}
	}
	if page.Error == "" {
		evs, err := d.opts.Backend.Audit(ctx, aq)
		if err != nil {
			return err
		}
		if len(evs) > auditLimit { // keep the newest
			page.More = true
			evs = evs[len(evs)-auditLimit:]
		}
		slices.Reverse(evs)
		page.Events = evs
	}
	d.render(w, r, http.StatusOK, "audit", p, page, live(seq, "*:*", 1000))
	return nil
}

type kpiPage struct {
	Period, Service string
	Periods         []string
	Services        []string
	Report          *v1.KPIReport
	Deployments     template.HTML
	LeadTime        template.HTML
	// Unit is the length of a chart bucket: hour or day.
	Unit string
}

func (d *Dashboard) kpis(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	ctx := r.Context()
	seq, err := d.opts.Backend.LatestSeq(ctx)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	page := kpiPage{Period: q.Get("period"), Service: q.Get("service"), Periods: kpi.Periods}
	if page.Period == "" {
		page.Period = "7d"
	}
	svcs, err := d.opts.Backend.Services(ctx)
	if err != nil {
		return err
	}
	for _, s := range svcs {
		page.Services = append(page.Services, s.Metadata.Name)
	}
	rep, err := d.opts.Backend.KPIs(ctx, page.Period, page.Service)
	if err != nil {
		return err
	}
	page.Report = rep
	page.Unit = "day"
	if b := rep.Fleet.Buckets; len(b) > 1 && b[1].Start.Sub(b[0].Start) == time.Hour {
		page.Unit = "hour"
	}
	page.Deployments = deploymentsChart(rep.Fleet.Buckets)
	page.LeadTime = leadTimeChart(rep.Fleet.Buckets)
	d.render(w, r, http.StatusOK, "kpis", p, page, live(seq, "Rollout:*", 1000))
	return nil
}
