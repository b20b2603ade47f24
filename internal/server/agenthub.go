package server

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"flotilla.dev/flotilla/internal/store"
)

// agentHub wakes long polls. It keeps, per cluster, a channel that the next change closes and the
// latest desired state known. One goroutine follows the event log for Assignments and
// AgentCredential events, so a change written by this replica or another (whose events arrive
// through the store's wake-up path: in-process broadcast on SQLite, LISTEN/NOTIFY on PostgreSQL)
// reaches every waiting agent of that cluster at once, without a store read per waiter.
//
// It also caches agent credentials (hash -> cluster) for at most credentialTTL. A change of a
// cluster's credential (an AgentCredential event, or a registration or revocation in this process)
// drops that cluster's entries and raises a generation; a store read is cached only if no change
// happened since just before it. Revocation stays immediate in this replica and as fast as its
// event reaches the others.
type agentHub struct {
	mu      sync.Mutex
	waiters map[string]chan struct{}
	cache   map[string]*store.DesiredState
	credGen int64
	creds   map[string]cachedCredential
}

type cachedCredential struct {
	cluster string
	at      time.Time
}

// credentialTTL bounds how long a cached credential is trusted without a store read.
const credentialTTL = 30 * time.Second

func newAgentHub() *agentHub {
	return &agentHub{waiters: map[string]chan struct{}{}, cache: map[string]*store.DesiredState{},
		creds: map[string]cachedCredential{}}
}

// credentialGen returns the credential generation.
func (h *agentHub) credentialGen() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.credGen
}

// credentialChanged drops the cached credentials of cluster, raises the credential generation (so
// that no store read racing with the change is cached) and wakes the waiters of cluster, which
// then authenticate again.
func (h *agentHub) credentialChanged(cluster string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.credGen++
	for hash, c := range h.creds {
		if c.cluster == cluster {
			delete(h.creds, hash)
		}
	}
	h.kickLocked(cluster)
}

// cachedAgent returns the cluster of a cached, still trusted credential hash.
func (h *agentHub) cachedAgent(hash string, now time.Time) (string, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c, ok := h.creds[hash]
	if !ok || now.Sub(c.at) > credentialTTL {
		delete(h.creds, hash)
		return "", false
	}
	return c.cluster, true
}

// rememberAgent caches a credential hash read from the store, if the generation gen read before
// that store read is still current.
func (h *agentHub) rememberAgent(hash, cluster string, gen int64, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if gen == h.credGen {
		h.creds[hash] = cachedCredential{cluster: cluster, at: now}
	}
}

// wait returns a channel closed by the next change of cluster.
func (h *agentHub) wait(cluster string) <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	ch, ok := h.waiters[cluster]
	if !ok {
		ch = make(chan struct{})
		h.waiters[cluster] = ch
	}
	return ch
}

// kickLocked wakes the waiters of cluster; h.mu is held.
func (h *agentHub) kickLocked(cluster string) {
	if ch, ok := h.waiters[cluster]; ok {
		close(ch)
		delete(h.waiters, cluster)
	}
}

// remember caches ds unless a newer state is cached; it reports whether ds was taken.
func (h *agentHub) remember(ds *store.DesiredState) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.rememberLocked(ds)
}

func (h *agentHub) rememberLocked(ds *store.DesiredState) bool {
	if cur, ok := h.cache[ds.Cluster]; ok && cur.Seq >= ds.Seq {
		return false
	}
	h.cache[ds.Cluster] = ds
	return true
}

// publish caches ds and wakes the cluster's waiters.
func (h *agentHub) publish(ds *store.DesiredState) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.rememberLocked(ds) {
		h.kickLocked(ds.Cluster)
	}
}

// cached returns the cached desired state of cluster, or nil.
func (h *agentHub) cached(cluster string) *store.DesiredState {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.cache[cluster]
}

// hubBatch is how many events the hub reads at a time.
const hubBatch = 1000

// run follows the event log from its current end until ctx ends. A store error is retried after a
// second; waiters meanwhile still answer at their timeout.
func (h *agentHub) run(ctx context.Context, st store.Store) {
	var after int64
	for ctx.Err() == nil {
		var err error
		if after, err = st.LatestSeq(ctx); err == nil {
			break
		}
		sleep(ctx, time.Second)
	}
	f := store.EventFilter{Kinds: []string{store.KindAssignments, store.KindAgentCredential}}
	for ctx.Err() == nil {
		latest, err := st.LatestSeq(ctx)
		if err != nil {
			sleep(ctx, time.Second)
			continue
		}
		evs, err := st.Events(ctx, after, hubBatch, f)
		if err != nil {
			sleep(ctx, time.Second)
			continue
		}
		for _, e := range evs {
			after = e.Seq
			switch e.Kind {
			case store.KindAssignments:
				var ch store.AssignmentsChange
				if e.Object == nil || json.Unmarshal(e.Object.Spec, &ch) != nil {
					h.forgetAll() // the next polls read the store
					continue
				}
				for i := range ch.Changed {
					ch.Changed[i].Seq = e.Seq
					h.publish(&ch.Changed[i])
				}
			case store.KindAgentCredential:
				h.credentialChanged(e.Name) // waiters re-check their credential
			}
		}
		if len(evs) == hubBatch {
			continue
		}
		after = max(after, latest)
		if err := st.WaitForEvent(ctx, after); err != nil && ctx.Err() == nil {
			sleep(ctx, time.Second)
		}
	}
}

// forgetAll drops every cached state and wakes every waiter.
func (h *agentHub) forgetAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	clear(h.cache)
	for c := range h.waiters {
		h.kickLocked(c)
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
