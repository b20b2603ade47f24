package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/client"
	"flotilla.dev/flotilla/internal/agent/apply"
	"flotilla.dev/flotilla/internal/agent/health"
	"flotilla.dev/flotilla/internal/agent/state"
)

// Applier converges and observes one service in the cluster; *apply.Engine is one.
type Applier interface {
	Apply(ctx context.Context, req apply.Request) (*apply.ChangeSet, error)
	Observe(ctx context.Context, req apply.Request) (*apply.Report, error)
	// Services lists the services that have an inventory in the cluster.
	Services(ctx context.Context) ([]string, error)
}

var _ Applier = (*apply.Engine)(nil)

// Options configures an Agent.
type Options struct {
	// Client talks to the control plane with the cluster's agent credential. Required.
	Client *client.Client
	// Applier acts on the cluster. Required.
	Applier Applier
	// State keeps the last desired state, so that the agent goes on enforcing it while the
	// server is unreachable, across restarts too. Nil keeps nothing: a restarted agent then has
	// nothing to enforce until the server answers.
	State state.Store
	// Holder names this agent process in the lease (default "agent").
	Holder string
	// ObserveInterval is how often health and drift are checked, drift corrected where self-heal
	// is on, and reported (default 30s). Offline, it is also how often the server is tried.
	ObserveInterval time.Duration
	// PollWait is how long the server may hold a desired-state poll (0: the server's default).
	PollWait          time.Duration
	AgentVersion      string
	KubernetesVersion string
	// Logger receives the agent's log; nil discards it.
	Logger *slog.Logger
	// Now returns the time of events (default time.Now).
	Now func() time.Time
}

// maxEvents bounds the events an offline period keeps.
const maxEvents = 100

// Agent converges one cluster to its assignments.
type Agent struct {
	o Options

	mu      sync.Mutex // serialises work on the cluster and the fields below
	seq     int64
	epoch   int64
	desired *v1.DesiredState                        // what is enforced
	fresh   bool                                    // desired came from the server in this run (not from the saved state)
	saved   *v1.DesiredState                        // the latest desired state whose bundles are all in the state store
	applied string                                  // digest of the last desired state applied in full
	objects map[string][]*unstructured.Unstructured // bundle digest -> objects
	stored  map[string]bool                         // bundle digests known to be in the state store
	errs    map[string][]v1.AgentError              // service -> errors of its last apply
	// offline is the period without the server in progress; last the latest one the server
	// acknowledged; pending a report posted without an answer, resent with its seq.
	offline   *v1.OfflinePeriod
	last      *v1.OfflinePeriod
	pending   *v1.AgentStatusReport
	restarted bool   // started from a saved state and not yet heard by the server
	refused   error  // the server refused this agent (lease held by another, credential revoked)
	savedKey  []byte // the last saved snapshot, to skip writes that change nothing
	// predecessor is the holder of the agent that saved the state this one started from, whose
	// lease it gives up once, so that a replacement need not wait for that lease to expire.
	predecessor string

	nextPass time.Time // when Run, without the lease, next enforces offline; only Run uses it
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
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Agent{o: o, seq: time.Now().UnixNano(), objects: map[string][]*unstructured.Unstructured{},
		stored: map[string]bool{}, errs: map[string][]v1.AgentError{}}, nil
}

// Run holds the lease and converges the cluster until ctx ends. While the server cannot be
// reached it enforces the saved desired state; when the server refuses it (another agent holds
// the lease, the credential was revoked) it does nothing to the cluster and tries again. It
// returns only ctx's error.
func (a *Agent) Run(ctx context.Context) error {
	a.restore(ctx)
	b := client.Backoff{}
	for ctx.Err() == nil {
		a.replace(ctx)
		lease, err := a.o.Client.AcquireLease(ctx, a.o.Holder)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			wait := b.Delay(err)
			a.mu.Lock()
			switch {
			case client.IsConflict(err):
				a.o.Logger.Warn("another agent holds this cluster's lease; waiting", "err", err)
				a.refused = err
			case unreachable(err):
				a.o.Logger.Warn("acquire lease: server unreachable", "err", err)
				a.noteUnreachable(err)
			default:
				a.o.Logger.Warn("acquire lease: refused", "err", err)
				a.refused = err
			}
			enforce := a.refused == nil
			a.mu.Unlock()
			if enforce {
				if d := time.Until(a.nextPass); d <= 0 {
					a.pass(ctx, false)
					a.nextPass = time.Now().Add(a.o.ObserveInterval)
				}
				wait = min(wait, max(time.Until(a.nextPass), 10*time.Millisecond))
			}
			_ = client.Sleep(ctx, wait)
			continue
		}
		b.Reset()
		a.mu.Lock()
		a.epoch, a.refused = lease.Epoch, nil
		a.mu.Unlock()
		a.o.Logger.Info("lease acquired", "cluster", lease.Cluster, "epoch", lease.Epoch)
		err = a.hold(ctx, lease)
		a.o.Logger.Warn("lease lost", "err", err)
	}
	_ = a.o.Client.ReleaseLease(context.WithoutCancel(ctx), a.o.Holder)
	return ctx.Err()
}

// replace gives up the lease of the agent whose saved state this one started from (it was
// killed, or its pod replaced): that agent is gone or, sharing the state, must not go on. The
// server still arbitrates: should it live on, its next renewal takes the lease back or is
// refused, never both agents at once.
func (a *Agent) replace(ctx context.Context) {
	if a.predecessor == "" {
		return
	}
	err := a.o.Client.ReleaseLease(ctx, a.predecessor)
	switch {
	case err == nil:
		a.o.Logger.Info("released the lease of the agent this one replaces", "holder", a.predecessor)
	case client.IsNotFound(err):
	case unreachable(err):
		return // try again with the next attempt at the lease
	default:
		a.o.Logger.Warn("release the lease of the agent this one replaces", "holder", a.predecessor, "err", err)
	}
	a.predecessor = ""
}

// refusal reports whether err means the server will not serve this agent any more.
func refusal(err error) bool {
	return client.IsConflict(err) || client.IsUnauthorized(err) || client.IsForbidden(err)
}

// unreachable reports whether err means the server could not be reached or could not answer
// (no connection, timeout, 5xx, 429), as opposed to an answer that refuses the agent.
func unreachable(err error) bool {
	st, ok := client.StatusOf(err)
	if !ok {
		return true
	}
	return st.Code >= 500 || st.Code == 429 || st.Code == 408
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
			l, err := a.o.Client.AcquireLease(ctx, a.o.Holder)
			switch {
			case err == nil:
				a.mu.Lock()
				a.epoch = l.Epoch // a new epoch when the lease expired while the server was away
				a.mu.Unlock()
			case ctx.Err() != nil:
			case refusal(err):
				cancel(err)
				return
			case unreachable(err):
				a.mu.Lock()
				a.noteUnreachable(err)
				a.mu.Unlock()
			}
		}
	})
	wg.Go(func() {
		for client.Sleep(ctx, a.o.ObserveInterval) == nil {
			a.pass(ctx, true)
		}
	})
	wg.Go(func() { a.poll(ctx, lease.Cluster, cancel) })
	wg.Wait()
	return context.Cause(ctx)
}

// poll long-polls the desired state and converges the cluster whenever it changes. The first
// poll asks for the state at once, so that every run starts from a fresh answer of the server.
func (a *Agent) poll(ctx context.Context, cluster string, cancel context.CancelCauseFunc) {
	b := client.Backoff{}
	after := ""
	for ctx.Err() == nil {
		st, err := a.o.Client.Desired(ctx, client.DesiredOptions{After: after, Wait: a.o.PollWait})
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			a.o.Logger.Warn("read desired state", "err", err)
			if refusal(err) {
				cancel(err)
				return
			}
			if unreachable(err) {
				a.mu.Lock()
				a.noteUnreachable(err)
				a.mu.Unlock()
			}
			_ = client.Sleep(ctx, b.Delay(err))
			continue
		}
		b.Reset()
		if st == nil { // held until the timeout: nothing changed
			continue
		}
		if st.Cluster != cluster {
			a.o.Logger.Error("desired state of another cluster ignored", "cluster", st.Cluster, "want", cluster)
			_ = client.Sleep(ctx, b.Delay(nil))
			continue
		}
		after = st.Digest
		a.mu.Lock()
		a.converge(ctx, st, true)
		a.mu.Unlock()
		a.pass(ctx, true)
	}
}

// converge applies every assignment of st. With fresh (st is the server's answer of this run)
// it first keeps st and its bundles in the state store, then removes the services that have an
// inventory or were assigned before but are not assigned in st. A saved state never removes
// anything. a.mu is held.
func (a *Agent) converge(ctx context.Context, st *v1.DesiredState, fresh bool) {
	prev := a.desired
	a.desired, a.fresh = st, fresh
	complete := true
	for _, as := range st.Assignments {
		if _, err := a.bundle(ctx, as.Bundle, fresh); err != nil {
			a.errs[as.Service] = []v1.AgentError{{Message: err.Error()}}
			a.event(v1.EventFailed, as.Service, "", err.Error())
			complete = false
		}
	}
	if fresh {
		a.keep(ctx, st)
	}
	assigned := map[string]bool{}
	for _, as := range st.Assignments {
		assigned[as.Service] = true
		objs, ok := a.objects[as.Bundle]
		if !ok {
			continue // its error is recorded above
		}
		cs, err := a.o.Applier.Apply(ctx, apply.Request{Service: as.Service, Release: as.Release, Objects: objs})
		a.errs[as.Service] = changeErrors(cs, err)
		if len(a.errs[as.Service]) > 0 {
			complete = false
		}
		a.noteApply(as.Service, as.Release, cs, a.errs[as.Service])
		a.o.Logger.Info("applied", "service", as.Service, "release", as.Release, "errors", len(a.errs[as.Service]), "saved", !fresh)
	}
	if fresh {
		gone := map[string]bool{}
		if prev != nil {
			for _, as := range prev.Assignments {
				gone[as.Service] = true
			}
		}
		// Services unassigned while the agent was down are known only by their inventories.
		svcs, err := a.o.Applier.Services(ctx)
		if err != nil {
			a.o.Logger.Warn("list inventories", "err", err)
			complete = false
		}
		for _, s := range svcs {
			gone[s] = true
		}
		for _, s := range sortedKeys(gone) {
			if assigned[s] {
				continue
			}
			cs, err := a.o.Applier.Apply(ctx, apply.Request{Service: s, Removed: true})
			if errs := changeErrors(cs, err); len(errs) > 0 {
				complete = false
				a.o.Logger.Warn("remove service", "service", s, "errors", len(errs), "first", errs[0].Message)
			} else {
				a.o.Logger.Info("removed service", "service", s, "deleted", cs.Count(apply.Deleted))
			}
			delete(a.errs, s)
		}
		// Forget bundles no longer assigned.
		for d := range a.objects {
			if !slices.ContainsFunc(st.Assignments, func(as v1.Assignment) bool { return as.Bundle == d }) {
				delete(a.objects, d)
			}
		}
	}
	if complete {
		a.applied = st.Digest
	}
	a.persist(ctx)
}

// keep makes st the saved desired state when every bundle it names is in the state store, and
// then drops the bundles it no longer names. When st cannot be saved, no desired state is saved
// at all: a restarted agent must not take an older state for the last one and roll back to it
// without the server's word. a.mu is held.
func (a *Agent) keep(ctx context.Context, st *v1.DesiredState) {
	if a.o.State == nil {
		return
	}
	var digests []string
	for _, as := range st.Assignments {
		if !a.stored[as.Bundle] {
			a.o.Logger.Warn("desired state not saved (a bundle is missing from the state store): an agent restarted without the server will enforce nothing",
				"bundle", as.Bundle, "state", a.o.State.String())
			a.saved = nil
			a.persist(ctx)
			return
		}
		digests = append(digests, as.Bundle)
	}
	a.saved = st
	if !a.persist(ctx) {
		return
	}
	if err := a.o.State.RetainBundles(ctx, digests); err != nil {
		a.o.Logger.Warn("drop old bundles from the state store", "err", err)
	}
	for d := range a.stored {
		if !slices.Contains(digests, d) {
			delete(a.stored, d)
		}
	}
}

// bundle returns a bundle's objects: from memory, else from the state store, else (with fetch)
// from the server, in which case it is also put in the state store. a.mu is held.
func (a *Agent) bundle(ctx context.Context, digest string, fetch bool) ([]*unstructured.Unstructured, error) {
	if objs, ok := a.objects[digest]; ok {
		return objs, nil
	}
	var data []byte
	if a.o.State != nil {
		var err error
		if data, err = a.o.State.Bundle(ctx, digest); err != nil {
			a.o.Logger.Warn("saved bundle unusable", "bundle", digest, "err", err)
			data = nil
		}
		a.stored[digest] = data != nil
	}
	if data == nil {
		if !fetch {
			return nil, fmt.Errorf("bundle %s: not in the saved state (%s)", digest, a.stateName())
		}
		var err error
		if data, err = a.o.Client.Bundle(ctx, digest); err != nil {
			return nil, fmt.Errorf("bundle %s: %w", digest, err)
		}
		if a.o.State != nil {
			if err := a.o.State.PutBundle(ctx, digest, data); err != nil {
				a.o.Logger.Warn("keep bundle in the state store", "bundle", digest, "err", err)
			} else {
				a.stored[digest] = true
			}
		}
	}
	objs, err := parseBundle(digest, data)
	if err != nil {
		return nil, err
	}
	a.objects[digest] = objs
	return objs, nil
}

func (a *Agent) stateName() string {
	if a.o.State == nil {
		return "no state store"
	}
	return a.o.State.String()
}

// parseBundle decodes a bundle's JSON lines (verified against digest by whoever read them).
func parseBundle(digest string, data []byte) ([]*unstructured.Unstructured, error) {
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
	return objs, nil
}

// pass converges what is not yet applied, observes every assigned service (correcting drift
// where self-heal is on) and, online, posts the report.
func (a *Agent) pass(ctx context.Context, online bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if ctx.Err() != nil {
		return
	}
	if a.desired != nil && a.applied != a.desired.Digest {
		a.converge(ctx, a.desired, a.fresh)
	}
	rep, evs := a.observe(ctx)
	if online {
		a.post(ctx, rep)
	}
	// What this pass did is in its report when the server took it; otherwise (offline, or the
	// post just failed) it belongs to the offline period.
	for _, ev := range evs {
		if ev.Reason == v1.EventDriftCorrected && a.offline != nil {
			a.offline.Corrections++
		}
		a.event(ev.Reason, ev.Service, ev.Object, ev.Message)
	}
	a.persist(ctx)
}

// observe builds a status report from the live state of every assigned service, and returns
// with it the corrections and failures it met. a.mu is held.
func (a *Agent) observe(ctx context.Context) (*v1.AgentStatusReport, []v1.AgentEvent) {
	var evs []v1.AgentEvent
	rep := &v1.AgentStatusReport{AgentVersion: a.o.AgentVersion, KubernetesVersion: a.o.KubernetesVersion,
		AppliedDigest: a.applied}
	var worst []health.Status
	if a.desired != nil {
		rep.DesiredDigest = a.desired.Digest
		for _, as := range a.desired.Assignments {
			sr := v1.ServiceReport{Service: as.Service, Release: as.Release, Bundle: as.Bundle, Errors: a.errs[as.Service]}
			objs, err := a.bundle(ctx, as.Bundle, a.fresh)
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
				evs = append(evs, v1.AgentEvent{Reason: v1.EventFailed, Service: as.Service, Message: err.Error()})
			} else {
				sr.Health = string(obs.Health)
				for _, o := range obs.Objects {
					or := v1.ObjectReport{Group: o.Object.Group, Kind: o.Object.Kind, Namespace: o.Object.Namespace,
						Name: o.Object.Name, Health: string(o.Health.Status), Drifted: len(o.Drift) > 0 && !o.Corrected,
						Message: o.Health.Message}
					if o.Corrected {
						or.Message = "drift corrected"
						a.o.Logger.Info("drift corrected", "service", as.Service, "object", o.Object.String(), "offline", a.offline != nil)
						evs = append(evs, v1.AgentEvent{Reason: v1.EventDriftCorrected, Service: as.Service, Object: o.Object.String(),
							Message: "fields " + joinFields(o.Drift)})
					}
					if o.Err != nil {
						sr.Errors = append(sr.Errors, v1.AgentError{Object: o.Object.String(), Message: o.Err.Error()})
						evs = append(evs, v1.AgentEvent{Reason: v1.EventFailed, Service: as.Service, Object: o.Object.String(), Message: o.Err.Error()})
					}
					sr.Objects = append(sr.Objects, or)
				}
			}
			worst = append(worst, health.Status(sr.Health))
			rep.Services = append(rep.Services, sr)
		}
	}
	rep.Health = string(health.Rollup(worst...))
	return rep, evs
}

func joinFields(paths []string) string {
	const most = 5
	if len(paths) > most {
		return fmt.Sprintf("%v and %d more", paths[:most], len(paths)-most)
	}
	return fmt.Sprint(paths)
}

// post sends rep with a new seq, after the pending report if there is one. The first report
// the server acknowledges after an offline period ends that period. a.mu is held.
func (a *Agent) post(ctx context.Context, rep *v1.AgentStatusReport) {
	if a.pending != nil {
		if ok, retry := a.send(ctx, a.pending); !ok {
			if !retry {
				a.pending = nil
			}
			return
		}
		a.pending = nil
	}
	a.seq++
	rep.Seq = a.seq
	closing := a.offline != nil
	if closing {
		p := copyPeriod(a.offline)
		p.Until = a.o.Now().UTC()
		rep.Offline = p
	} else {
		rep.Offline = a.last
	}
	ok, retry := a.send(ctx, rep)
	if !ok {
		if retry {
			a.pending = rep
		}
		return
	}
	if closing {
		a.last, a.offline = rep.Offline, nil
		a.o.Logger.Info("server reachable again: reported the offline period", "since", rep.Offline.Since,
			"corrections", rep.Offline.Corrections, "applies", rep.Offline.Applies, "errors", rep.Offline.Errors,
			"restarts", rep.Offline.Restarts, "seq", rep.Seq)
	}
}

// send posts one report under the lease epoch, taking the lease again once if its epoch is no
// longer live (it expired while the server was away). It reports whether the server took it,
// and otherwise whether to send the same report again. a.mu is held.
func (a *Agent) send(ctx context.Context, rep *v1.AgentStatusReport) (ok, retry bool) {
	_, err := a.o.Client.PostStatus(ctx, a.epoch, *rep)
	if err != nil && client.IsConflict(err) {
		l, lerr := a.o.Client.AcquireLease(ctx, a.o.Holder)
		if lerr != nil {
			err = lerr
		} else {
			a.epoch = l.Epoch
			_, err = a.o.Client.PostStatus(ctx, a.epoch, *rep)
		}
	}
	if err == nil {
		a.restarted = false
		return true, false
	}
	if ctx.Err() != nil {
		return false, true
	}
	a.o.Logger.Warn("post status", "seq", rep.Seq, "err", err)
	if unreachable(err) {
		a.noteUnreachable(err)
		return false, true
	}
	return false, false
}

// noteUnreachable opens an offline period unless one is open. a.mu is held.
func (a *Agent) noteUnreachable(err error) {
	if a.offline == nil {
		a.offline = &v1.OfflinePeriod{Since: a.o.Now().UTC()}
		a.o.Logger.Warn("server unreachable: enforcing the last desired state", "digest", digestOf(a.desired), "err", err)
	}
	if a.restarted {
		a.restarted = false
		a.offline.Restarts++
		a.event(v1.EventRestarted, "", "", "agent started from its saved desired state "+digestOf(a.desired))
	}
}

func digestOf(st *v1.DesiredState) string {
	if st == nil {
		return "(none)"
	}
	return st.Digest
}

// event records what the agent did during an offline period; online, reports say it. a.mu is held.
func (a *Agent) event(reason, service, object, msg string) {
	p := a.offline
	if p == nil {
		return
	}
	if reason == v1.EventFailed {
		p.Errors++
	}
	p.Events = append(p.Events, v1.AgentEvent{Time: a.o.Now().UTC(), Reason: reason, Service: service, Object: object, Message: msg})
	if n := len(p.Events) - maxEvents; n > 0 {
		p.Events = slices.Delete(p.Events, 0, n)
		p.Dropped += n
	}
}

// noteApply records an apply that changed something during an offline period. a.mu is held.
func (a *Agent) noteApply(service, release string, cs *apply.ChangeSet, errs []v1.AgentError) {
	if a.offline == nil || cs == nil {
		return
	}
	for _, e := range errs {
		a.event(v1.EventFailed, service, e.Object, e.Message)
	}
	created, configured, deleted := cs.Count(apply.Created), cs.Count(apply.Configured), cs.Count(apply.Deleted)
	if created+configured+deleted == 0 {
		return
	}
	a.offline.Applies++
	a.event(v1.EventApplied, service, "", fmt.Sprintf("release %s from the saved desired state: %d created, %d configured, %d deleted",
		release, created, configured, deleted))
}

func copyPeriod(p *v1.OfflinePeriod) *v1.OfflinePeriod {
	c := *p
	c.Events = slices.Clone(p.Events)
	return &c
}

// restore loads the saved state: the desired state to enforce while the server is away (only
// when every bundle it names is there and verified), the offline period and the pending report.
func (a *Agent) restore(ctx context.Context) {
	if a.o.State == nil {
		return
	}
	snap, err := a.o.State.Load(ctx)
	if err != nil {
		a.o.Logger.Error("saved agent state unusable: nothing to enforce until the server answers", "state", a.o.State.String(), "err", err)
		return
	}
	if snap == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.offline, a.last, a.pending = snap.Offline, snap.Last, snap.Pending
	if snap.Holder != a.o.Holder {
		a.predecessor = snap.Holder
	}
	a.seq = max(a.seq, snap.Seq)
	if a.pending != nil {
		a.seq = max(a.seq, a.pending.Seq)
	}
	if snap.Desired == nil {
		return
	}
	for _, as := range snap.Desired.Assignments {
		if _, err := a.bundle(ctx, as.Bundle, false); err != nil {
			a.o.Logger.Error("saved desired state unusable: nothing to enforce until the server answers", "state", a.o.State.String(), "err", err)
			clear(a.objects)
			return
		}
	}
	a.desired, a.saved, a.fresh, a.restarted = snap.Desired, snap.Desired, false, true
	a.o.Logger.Info("loaded the saved desired state", "digest", snap.Desired.Digest, "services", len(snap.Desired.Assignments),
		"state", a.o.State.String(), "saved", snap.SavedAt)
	if a.offline != nil {
		a.noteUnreachable(nil) // the period goes on; count the restart
	}
}

// persist saves the snapshot when it changed and reports whether it is saved. a.mu is held.
func (a *Agent) persist(ctx context.Context) bool {
	if a.o.State == nil {
		return false
	}
	snap := &state.Snapshot{Desired: a.saved, Offline: a.offline, Last: a.last, Pending: a.pending, Holder: a.o.Holder}
	key, err := state.Encode(snap)
	if err != nil {
		a.o.Logger.Warn("save agent state", "err", err)
		return false
	}
	if bytes.Equal(key, a.savedKey) {
		return true
	}
	snap.Seq, snap.SavedAt = a.seq, a.o.Now().UTC()
	if err := a.o.State.Save(ctx, snap); err != nil {
		a.o.Logger.Warn("save agent state", "state", a.o.State.String(), "err", err)
		return false
	}
	a.savedKey = key
	return true
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
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
