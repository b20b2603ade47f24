package server

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
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
//
// A fleet-wide change wakes thousands of polls at once, so what they share is computed once: the
// encoded assignments of each distinct desired state (bodies, by digest), and the events this
// replica has already published (local) are not decoded again when the log brings them back.
type agentHub struct {
	mu      sync.Mutex
	waiters map[string]chan struct{}
	cache   map[string]*store.DesiredState
	local   map[int64]bool // seqs of Assignments events already published here

	// The credential cache has its own lock: every poll reads it, so it must not wait behind the
	// wake-up of thousands of polls.
	credMu  sync.Mutex
	credGen atomic.Int64 // written under credMu; read without it by every poll
	creds   map[string]cachedCredential

	bodyMu sync.Mutex
	bodies map[string][]byte // digest -> encoded wire assignments
}

type cachedCredential struct {
	cluster string
	at      time.Time
}

// credentialTTL bounds how long a cached credential is trusted without a store read.
const credentialTTL = 30 * time.Second

func newAgentHub() *agentHub {
	return &agentHub{waiters: map[string]chan struct{}{}, cache: map[string]*store.DesiredState{},
		creds: map[string]cachedCredential{}, local: map[int64]bool{}, bodies: map[string][]byte{}}
}

// credentialGen returns the credential generation.
func (h *agentHub) credentialGen() int64 {
	return h.credGen.Load()
}

// credentialChanged drops the cached credentials of cluster, raises the credential generation (so
// that no store read racing with the change is cached) and wakes the waiters of cluster, which
// then authenticate again.
func (h *agentHub) credentialChanged(cluster string) {
	h.credMu.Lock()
	h.credGen.Add(1)
	for hash, c := range h.creds {
		if c.cluster == cluster {
			delete(h.creds, hash)
		}
	}
	h.credMu.Unlock()
	// After the generation: a poll that starts waiting from here on sees the new generation.
	h.mu.Lock()
	defer h.mu.Unlock()
	h.kickLocked(cluster)
}

// cachedAgent returns the cluster of a cached, still trusted credential hash.
func (h *agentHub) cachedAgent(hash string, now time.Time) (string, bool) {
	h.credMu.Lock()
	defer h.credMu.Unlock()
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
	h.credMu.Lock()
	defer h.credMu.Unlock()
	if gen == h.credGen.Load() {
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

// waitCached returns wait(cluster) and cached(cluster) under one lock.
func (h *agentHub) waitCached(cluster string) (<-chan struct{}, *store.DesiredState) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ch, ok := h.waiters[cluster]
	if !ok {
		ch = make(chan struct{})
		h.waiters[cluster] = ch
	}
	return ch, h.cache[cluster]
}

// publishedLocally notes that the states of Assignments event seq were published by this replica.
func (h *agentHub) publishedLocally(seq int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.local[seq] = true
}

// takeLocal reports whether event seq was published by this replica, forgetting it and any older.
func (h *agentHub) takeLocal(seq int64) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	ok := h.local[seq]
	for s := range h.local {
		if s <= seq {
			delete(h.local, s)
		}
	}
	return ok
}

// maxBodies bounds the encoded assignments kept; past it the cache starts again.
const maxBodies = 1024

// desiredBody returns the JSON answer for ds, exactly as json.Marshal(toWireDesired(ds)) with a
// newline; the assignments part, which every cluster with that digest shares, is encoded once.
func (h *agentHub) desiredBody(ds *store.DesiredState) []byte {
	h.bodyMu.Lock()
	as, ok := h.bodies[ds.Digest]
	h.bodyMu.Unlock()
	if !ok {
		var err error
		if as, err = json.Marshal(toWireDesired(ds).Assignments); err != nil {
			as = []byte("[]") // unreachable: the wire types always encode
		}
		h.bodyMu.Lock()
		if len(h.bodies) >= maxBodies {
			clear(h.bodies)
		}
		h.bodies[ds.Digest] = as
		h.bodyMu.Unlock()
	}
	cluster, _ := json.Marshal(ds.Cluster)
	digest, _ := json.Marshal(ds.Digest)
	out := make([]byte, 0, len(as)+len(cluster)+len(digest)+40)
	out = append(out, `{"cluster":`...)
	out = append(out, cluster...)
	out = append(out, `,"digest":`...)
	out = append(out, digest...)
	out = append(out, `,"assignments":`...)
	out = append(out, as...)
	return append(out, "}\n"...)
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
				if h.takeLocal(e.Seq) {
					continue // its states are published already
				}
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
