package analysis

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/internal/bundle"
	"flotilla.dev/flotilla/internal/store"
)

// JobServicePrefix starts the name of the temporary service a Job
// measurement is assigned as; the rest is a hash of the rollout, run,
// metric and cluster, so a re-run of the same analysis reuses (and then
// removes) the same assignment.
const JobServicePrefix = "flotilla-analysis-"

// jobMeasurer runs a Job on one cluster through the cluster's agent.
type jobMeasurer struct {
	a         *Analyzer
	cluster   string
	service   string // temporary service name
	owner     string // the analysed service, whose namespace a Job without one goes to
	namespace string
	baseName  string
	suffix    string
	job       map[string]any // rendered template, without name
}

// job renders a Job metric's manifest for one cluster. The Job goes to
// its own metadata.namespace, else the service's namespace (the service's
// spec.namespace, else its name).
func (a *Analyzer) job(req Request, m v1.Metric, data TemplateData) (measurer, error) {
	if a.o.Store == nil {
		return nil, errors.New("job provider: no store configured")
	}
	text, err := render("job.template", string(m.Provider.Job.Template), data)
	if err != nil {
		return nil, err
	}
	var obj map[string]any
	if err := json.Unmarshal([]byte(text), &obj); err != nil {
		return nil, fmt.Errorf("job.template: not a JSON object after rendering: %w", err)
	}
	if obj == nil {
		return nil, errors.New("job.template: empty")
	}
	if k, ok := obj["kind"]; ok && k != "Job" {
		return nil, fmt.Errorf("job.template: kind is %v, want Job", k)
	}
	if av, ok := obj["apiVersion"]; ok && av != "batch/v1" {
		return nil, fmt.Errorf("job.template: apiVersion is %v, want batch/v1", av)
	}
	obj["apiVersion"], obj["kind"] = "batch/v1", "Job"
	meta, _ := obj["metadata"].(map[string]any)
	if meta == nil {
		meta = map[string]any{}
		obj["metadata"] = meta
	}
	base, _ := meta["name"].(string)
	if base == "" {
		base = m.Name
	}
	ns, _ := meta["namespace"].(string)
	spec, _ := obj["spec"].(map[string]any)
	tmpl, _ := spec["template"].(map[string]any)
	podSpec, _ := tmpl["spec"].(map[string]any)
	if podSpec == nil {
		return nil, errors.New("job.template: spec.template.spec is required")
	}
	if _, ok := podSpec["restartPolicy"]; !ok {
		podSpec["restartPolicy"] = "Never" // a Job refuses the Pod default, Always
	}
	sum := sha256.Sum256([]byte(req.Rollout + "\x00" + req.ID + "\x00" + m.Name + "\x00" + data.Cluster.Name))
	h := hex.EncodeToString(sum[:])
	return &jobMeasurer{a: a, cluster: data.Cluster.Name, service: JobServicePrefix + h[:12], owner: data.Service,
		namespace: ns, baseName: base, suffix: h[:6], job: obj}, nil
}

// jobNamespace resolves the namespace of a Job without one from the
// stored service.
func (m *jobMeasurer) jobNamespace(ctx context.Context, service string) (string, error) {
	if m.namespace != "" {
		return m.namespace, nil
	}
	if service == "" {
		return "default", nil
	}
	obj, err := m.a.o.Store.Get(ctx, v1.KindService, service)
	if errors.Is(err, store.ErrNotFound) {
		return service, nil
	}
	if err != nil {
		return "", fmt.Errorf("service %s: %w", service, err)
	}
	var spec v1.ServiceSpec
	if err := json.Unmarshal(obj.Spec, &spec); err != nil {
		return "", fmt.Errorf("service %s: spec: %w", service, err)
	}
	if spec.Namespace != "" {
		return spec.Namespace, nil
	}
	return service, nil
}

// measure runs the n-th Job: it stores a bundle holding only the Job
// (named <name>-<hash>-<n>, so measurements never reuse a Job), assigns it
// to the cluster as the temporary service, waits until the agent reports
// the Job completed (Healthy) or Failed, and removes the assignment again,
// which makes the agent delete the Job. The result is 1 for a completed
// Job, 0 for a failed one. An apply error reported
// by the agent is an error; no verdict within Options.JobTimeout is no
// data (the agent may be unreachable).
func (m *jobMeasurer) measure(ctx context.Context, n int) (any, error) {
	st := m.a.o.Store
	ns, err := m.jobNamespace(ctx, m.owner)
	if err != nil {
		return nil, fmt.Errorf("job: %w", err)
	}
	name := jobName(m.baseName, m.suffix, n)
	obj := cloneJSON(m.job)
	meta := obj["metadata"].(map[string]any)
	meta["name"], meta["namespace"] = name, ns
	b, err := bundle.New([]map[string]any{obj})
	if err != nil {
		return nil, fmt.Errorf("job %s: %w", name, err)
	}
	if _, err := st.PutBundle(ctx, b.Digest(), b.Bytes(), m.a.o.Actor); err != nil {
		return nil, fmt.Errorf("job %s: store bundle: %w", name, err)
	}
	opts, _ := json.Marshal(v1.AssignmentOptions{Namespace: ns, Prune: true})
	release := fmt.Sprintf("%s-%d", name, n)
	if _, err := st.SetAssignments(ctx, []store.Assignment{{Cluster: m.cluster, Service: m.service, Release: release,
		Bundle: b.Digest(), Options: opts}}, m.a.o.Actor); err != nil {
		return nil, fmt.Errorf("job %s: assign to %s: %w", name, m.cluster, err)
	}
	defer func() {
		// Removed also when ctx was cancelled: the Job must not outlive its measurement.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_, _ = st.SetAssignments(rctx, []store.Assignment{{Cluster: m.cluster, Service: m.service}}, m.a.o.Actor)
	}()

	ctx, cancel := context.WithTimeout(ctx, m.a.o.JobTimeout)
	defer cancel()
	last := "the agent has not reported it yet"
	for {
		v, status, err := m.readJob(ctx, release, name)
		if err != nil || status == "" {
			return v, err
		}
		last = status
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return nil, noData("job %s on %s did not finish within %s (%s)", name, m.cluster, m.a.o.JobTimeout, last)
			}
			return nil, ctx.Err()
		case <-time.After(m.a.o.JobPoll):
		}
	}
}

// readJob reads the agent's report; it returns a verdict (status ""), or
// the state so far.
func (m *jobMeasurer) readJob(ctx context.Context, release, name string) (any, string, error) {
	sts, err := m.a.o.Store.AgentStatuses(ctx, m.cluster)
	if err != nil {
		return nil, "", fmt.Errorf("job %s: agent status of %s: %w", name, m.cluster, err)
	}
	st, ok := sts[m.cluster]
	if !ok {
		return nil, "no agent report from the cluster", nil
	}
	var rep v1.AgentStatusReport
	if err := json.Unmarshal(st.Report, &rep); err != nil {
		return nil, "", fmt.Errorf("job %s: agent report of %s: %w", name, m.cluster, err)
	}
	for _, s := range rep.Services {
		if s.Service != m.service || s.Release != release {
			continue
		}
		if len(s.Errors) > 0 {
			msgs := make([]string, len(s.Errors))
			for i, e := range s.Errors {
				msgs[i] = strings.TrimSpace(e.Object + " " + e.Message)
			}
			return nil, "", fmt.Errorf("job %s on %s: the agent could not apply it: %s", name, m.cluster, strings.Join(msgs, "; "))
		}
		for _, o := range s.Objects {
			if o.Kind != "Job" || o.Name != name {
				continue
			}
			switch {
			case o.Health == v1.HealthFailed:
				return noted{value: 0.0, note: "job " + name + ": " + o.Message}, "", nil
			case o.Health == v1.HealthHealthy && strings.HasPrefix(o.Message, jobCompleted):
				return noted{value: 1.0, note: "job " + name + ": " + o.Message}, "", nil
			}
			return nil, "last reported " + orDash(o.Health) + " " + o.Message, nil
		}
		return nil, "applied, not yet observed", nil
	}
	return nil, "the agent has not reported it yet", nil
}

// jobCompleted starts the health message of a Job whose Complete
// condition is true. The agent reports a running Job Progressing and only a
// completed one Healthy (internal/agent/health); the message is checked
// too because agents built before that rule report a merely started Job
// Healthy ("Job in progress. ..."), and such a Job must not pass.
const jobCompleted = "Job Completed"

// jobName is <base>-<suffix>-<n>, with base cut so the whole stays a
// DNS label (63 characters).
func jobName(base, suffix string, n int) string {
	tail := fmt.Sprintf("-%s-%d", suffix, n)
	if len(base)+len(tail) > 63 {
		base = strings.TrimRight(base[:63-len(tail)], "-.")
	}
	return base + tail
}

// cloneJSON deep-copies a decoded JSON object.
func cloneJSON(m map[string]any) map[string]any {
	b, _ := json.Marshal(m)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return out
}
