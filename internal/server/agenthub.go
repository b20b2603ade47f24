package server

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"flotilla.dev/flotilla/internal/store"
)

// agentHub wakes long polls. It keeps, per cluster, a channel that the next change closes and the
// latest desired state known. One goroutine follows the event log for DesiredState and
// AgentCredential events, so a change written by this replica or another (whose events arrive
// through the store's wake-up path: in-process broadcast on SQLite, LISTEN/NOTIFY on PostgreSQL)
// reaches every waiting agent of that cluster at once, without a store read per waiter.
type agentHub struct {
	mu      sync.Mutex
	waiters map[string]chan struct{}
	cache   map[string]*store.DesiredState
}

func newAgentHub() *agentHub {
	return &agentHub{waiters: map[string]chan struct{}{}, cache: map[string]*store.DesiredState{}}
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

// kick wakes the waiters of cluster.
func (h *agentHub) kick(cluster string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.kickLocked(cluster)
}

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
	f := store.EventFilter{Kinds: []string{store.KindDesiredState, store.KindAgentCredential}}
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
			case store.KindDesiredState:
				var ds store.DesiredState
				if e.Object == nil || json.Unmarshal(e.Object.Spec, &ds) != nil {
					h.forget(e.Name) // the next poll reads the store
					continue
				}
				ds.Seq = e.Seq
				h.publish(&ds)
			case store.KindAgentCredential:
				h.kick(e.Name) // waiters re-check their credential
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

// forget drops the cached state of cluster and wakes its waiters.
func (h *agentHub) forget(cluster string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.cache, cluster)
	h.kickLocked(cluster)
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
