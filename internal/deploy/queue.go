package deploy

import "sync"

// queue is a set of pending work keys served in order of arrival. A key is
// held by at most one worker; adding it while it is held runs it again once
// the worker is done.
type queue struct {
	mu     sync.Mutex
	cond   *sync.Cond
	items  []string
	queued map[string]bool
	active map[string]bool
	dirty  map[string]bool
	closed bool
}

func newQueue() *queue {
	q := &queue{queued: map[string]bool{}, active: map[string]bool{}, dirty: map[string]bool{}}
	q.cond = sync.NewCond(&q.mu)
	return q
}

func (q *queue) add(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.addLocked(key)
}

func (q *queue) addLocked(key string) {
	if q.closed || q.queued[key] {
		return
	}
	if q.active[key] {
		q.dirty[key] = true
		return
	}
	q.queued[key] = true
	q.items = append(q.items, key)
	q.cond.Signal()
}

// get waits for a key; ok is false once the queue is closed.
func (q *queue) get() (key string, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.items) == 0 && !q.closed {
		q.cond.Wait()
	}
	if q.closed {
		return "", false
	}
	key, q.items = q.items[0], q.items[1:]
	delete(q.queued, key)
	q.active[key] = true
	return key, true
}

func (q *queue) done(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.active, key)
	if q.dirty[key] {
		delete(q.dirty, key)
		q.addLocked(key)
	}
}

// idle reports whether nothing is queued or running.
func (q *queue) idle() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items) == 0 && len(q.active) == 0
}

// reset empties a closed queue and opens it again, for a new term of
// leadership; no worker may hold a key.
func (q *queue) reset() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.items, q.closed = nil, false
	clear(q.queued)
	clear(q.dirty)
}

func (q *queue) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	q.cond.Broadcast()
}
