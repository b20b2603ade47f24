package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/client"
	"flotilla.dev/flotilla/internal/agent/apply"
	"flotilla.dev/flotilla/internal/agent/health"
)

// Applier converges and observes one service in the cluster; *apply.Engine is one.
type Applier interface {
	Apply(ctx context.Context, req apply.Request) (*apply.ChangeSet, error)
	Observe(ctx context.Context, req apply.Request) (*apply.Report, error)
}

// Options configures an Agent.
type Options struct {
	// Client talks to the control plane with the cluster's agent credential. Required.
	Client *client.Client
	// Applier acts on the cluster. Required.
	Applier Applier
	// Holder names this agent process in the lease (default "agent").
	Holder string
	// ObserveInterval is how often health and drift are checked and reported (default 30s).
	ObserveInterval time.Duration
	// PollWait is how long the server may hold a desired-state poll (0: the server's default).
	PollWait          time.Duration
	AgentVersion      string
	KubernetesVersion string
	// Logger receives the agent's log; nil discards it.
	Logger *slog.Logger
}

// Agent converges one cluster to its assignments.
type Agent struct {
	o Options

	mu      sync.Mutex // serialises work on the cluster and the fields below
	seq     int64
	epoch   int64
	desired *v1.DesiredState
	applied string                                  // digest of the last desired state applied in full
	objects map[string][]*unstructured.Unstructured // bundle digest -> objects
	errs    map[string][]v1.AgentError              // service -> errors of its last apply
}

// New returns an agent; Run starts it.
func New(o Options) (*Agent, error) {
	if o.Client == nil || o.Applier == nil {
		return nil, errors.New("agent: a client and an applier are required")
	}
	if o.Holder == "" {
		o.Holder = "agent"
	}
	if o.ObserveInterval <= 0 {
		o.ObserveInterval = 30 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Agent{o: o, seq: time.Now().UnixNano(), objects: map[string][]*unstructured.Unstructured{},
		errs: map[string][]v1.AgentError{}}, nil
}

// Run holds the lease and converges the cluster until ctx ends. Losing the lease to another
// agent makes it wait and try again; it returns only ctx's error.
func (a *Agent) Run(ctx context.Context) error {
	b := client.Backoff{}
	for ctx.Err() == nil {
		lease, err := a.o.Client.AcquireLease(ctx, a.o.Holder)
		if err != nil {
			if client.IsConflict(err) {
				a.o.Logger.Warn("another agent holds this cluster's lease; waiting", "err", err)
			} else {
				a.o.Logger.Warn("acquire lease", "err", err)
			}
			_ = client.Sleep(ctx, b.Delay(err))
			continue
		}
		b.Reset()
		a.mu.Lock()
		a.epoch = lease.Epoch
		a.mu.Unlock()
		a.o.Logger.Info("lease acquired", "cluster", lease.Cluster, "epoch", lease.Epoch)
		err = a.hold(ctx, lease)
		a.o.Logger.Warn("lease lost", "err", err)
	}
	_ = a.o.Client.ReleaseLease(context.WithoutCancel(ctx), a.o.Holder)
	return ctx.Err()
}

// hold runs the poll, observe and renew loops while the lease lasts.
func (a *Agent) hold(ctx context.Context, lease *v1.Lease) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	wg.Go(func() {
		renew, err := lease.RenewAfter.Parse()
		if err != nil || renew <= 0 {
			renew = 10 * time.Second
		}
		for client.Sleep(ctx, renew) == nil {
			if _, err := a.o.Client.AcquireLease(ctx, a.o.Holder); err != nil && client.IsConflict(err) {
				cancel(err)
				return
			}
		}
	})
	wg.Go(func() {
		for client.Sleep(ctx, a.o.ObserveInterval) == nil {
			a.report(ctx)
		}
	})
	wg.Go(func() { a.poll(ctx) })
	wg.Wait()
	return context.Cause(ctx)
}

// poll long-polls the desired state and converges the cluster whenever it changes.
func (a *Agent) poll(ctx context.Context) {
	b := client.Backoff{}
	after := ""
	for ctx.Err() == nil {
		st, err := a.o.Client.Desired(ctx, client.DesiredOptions{After: after, Wait: a.o.PollWait})
		if err != nil {
			if ctx.Err() == nil {
				a.o.Logger.Warn("read desired state", "err", err)
				_ = client.Sleep(ctx, b.Delay(err))
			}
			continue
		}
		b.Reset()
		if st == nil { // held until the timeout: nothing changed
			continue
		}
		after = st.Digest
		a.converge(ctx, st)
		a.report(ctx)
	}
}

// converge applies every assignment of st and prunes services no longer assigned.
func (a *Agent) converge(ctx context.Context, st *v1.DesiredState) {
	a.mu.Lock()
	defer a.mu.Unlock()
	prev := a.desired
	a.desired = st
	complete := true
	assigned := map[string]bool{}
	for _, as := range st.Assignments {
		assigned[as.Service] = true
		objs, err := a.bundle(ctx, as.Bundle)
		if err != nil {
			a.errs[as.Service] = []v1.AgentError{{Message: err.Error()}}
			complete = false
			continue
		}
		cs, err := a.o.Applier.Apply(ctx, apply.Request{Service: as.Service, Release: as.Release, Objects: objs})
		a.errs[as.Service] = changeErrors(cs, err)
		if len(a.errs[as.Service]) > 0 {
			complete = false
		}
		a.o.Logger.Info("applied", "service", as.Service, "release", as.Release, "errors", len(a.errs[as.Service]))
	}
	if prev != nil {
		for _, as := range prev.Assignments {
			if assigned[as.Service] {
				continue
			}
			cs, err := a.o.Applier.Apply(ctx, apply.Request{Service: as.Service, Removed: true})
			if errs := changeErrors(cs, err); len(errs) > 0 {
				complete = false
				a.o.Logger.Warn("remove service", "service", as.Service, "errors", len(errs))
			}
			delete(a.errs, as.Service)
		}
	}
	if complete {
		a.applied = st.Digest
	}
}

// bundle returns a bundle's objects, fetching and verifying it on first use.
func (a *Agent) bundle(ctx context.Context, digest string) ([]*unstructured.Unstructured, error) {
	if objs, ok := a.objects[digest]; ok {
		return objs, nil
	}
	data, err := a.o.Client.Bundle(ctx, digest)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", digest, err)
	}
	var objs []*unstructured.Unstructured
	for line := range bytes.Lines(data) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(line); err != nil {
			return nil, fmt.Errorf("bundle %s: object %d: %w", digest, len(objs)+1, err)
		}
		objs = append(objs, u)
	}
	a.objects[digest] = objs
	return objs, nil
}

// report observes every assigned service (correcting drift where self-heal is on) and posts
// the result.
func (a *Agent) report(ctx context.Context) {
	a.mu.Lock()
	defer a.mu.Unlock()
	rep := v1.AgentStatusReport{AgentVersion: a.o.AgentVersion, KubernetesVersion: a.o.KubernetesVersion,
		AppliedDigest: a.applied}
	var worst []health.Status
	if a.desired != nil {
		rep.DesiredDigest = a.desired.Digest
		for _, as := range a.desired.Assignments {
			sr := v1.ServiceReport{Service: as.Service, Release: as.Release, Bundle: as.Bundle, Errors: a.errs[as.Service]}
			objs, err := a.bundle(ctx, as.Bundle)
			if err != nil {
				sr.Health = string(health.Unknown)
				sr.Errors = append(sr.Errors, v1.AgentError{Message: err.Error()})
				rep.Services = append(rep.Services, sr)
				worst = append(worst, health.Unknown)
				continue
			}
			selfHeal := as.Options != nil && as.Options.SelfHeal
			obs, err := a.o.Applier.Observe(ctx, apply.Request{Service: as.Service, Release: as.Release, Objects: objs, SelfHeal: selfHeal})
			if err != nil {
				sr.Health = string(health.Unknown)
				sr.Errors = append(sr.Errors, v1.AgentError{Message: err.Error()})
			} else {
				sr.Health = string(obs.Health)
				for _, o := range obs.Objects {
					or := v1.ObjectReport{Group: o.Object.Group, Kind: o.Object.Kind, Namespace: o.Object.Namespace,
						Name: o.Object.Name, Health: string(o.Health.Status), Drifted: len(o.Drift) > 0 && !o.Corrected,
						Message: o.Health.Message}
					if o.Corrected {
						or.Message = "drift corrected"
					}
					if o.Err != nil {
						sr.Errors = append(sr.Errors, v1.AgentError{Object: o.Object.String(), Message: o.Err.Error()})
					}
					sr.Objects = append(sr.Objects, or)
				}
			}
			worst = append(worst, health.Status(sr.Health))
			rep.Services = append(rep.Services, sr)
		}
	}
	rep.Health = string(health.Rollup(worst...))
	a.seq++
	rep.Seq = a.seq
	if _, err := a.o.Client.PostStatus(ctx, a.epoch, rep); err != nil && ctx.Err() == nil {
		a.o.Logger.Warn("post status", "err", err)
	}
}

// changeErrors lists the failures of one apply, each naming its object.
func changeErrors(cs *apply.ChangeSet, err error) []v1.AgentError {
	var out []v1.AgentError
	if err != nil {
		out = append(out, v1.AgentError{Message: err.Error()})
	}
	if cs != nil {
		for _, ch := range cs.Changes {
			if ch.Action == apply.Failed {
				msg := ch.Reason
				if ch.Err != nil {
					msg = ch.Err.Error()
				}
				out = append(out, v1.AgentError{Object: ch.Object.String(), Message: msg})
			}
		}
	}
	return out
}
