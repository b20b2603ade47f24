package sqlstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sync"
	"time"

	"flotilla.dev/flotilla/internal/store"
)

// Options tune a Store; zero values take defaults.
type Options struct {
	// PollInterval bounds how long WaitForEvent sleeps between checks when no
	// wake-up arrives (another process may have written); default 1s.
	PollInterval time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Store implements store.Store over a Backend.
type Store struct {
	b    Backend
	opts Options
	wake broadcaster
}

var _ store.Store = (*Store)(nil)

// New returns a Store on b; the schema must already be migrated.
func New(b Backend, opts Options) *Store {
	if opts.PollInterval <= 0 {
		opts.PollInterval = time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Store{b: b, opts: opts}
}

// Wake tells waiters that new events may exist; backends call it when they
// learn of writes made elsewhere (PostgreSQL notifications).
func (s *Store) Wake() { s.wake.broadcast() }

// Ping implements store.Store.
func (s *Store) Ping(ctx context.Context) error { return s.b.Ping(ctx) }

// Close implements store.Store.
func (s *Store) Close() error {
	s.wake.broadcast()
	return s.b.Close()
}

// errNoChange rolls back a write transaction that turned out to change
// nothing.
var errNoChange = errors.New("no change")

// write runs fn in a write transaction and wakes waiters after a commit.
func (s *Store) write(ctx context.Context, fn func(ctx context.Context, q Querier) error) error {
	err := s.b.Write(ctx, fn)
	if err == nil {
		s.wake.broadcast()
	}
	return err
}

// now returns the clock in UTC Unix nanoseconds and as a time equal to what
// reading it back gives.
func (s *Store) now() (int64, time.Time) {
	n := s.opts.Now().UnixNano()
	return n, time.Unix(0, n).UTC()
}

func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }

// newUID returns a random RFC 4122 version 4 UUID.
func newUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// broadcaster wakes every waiter at once: wait returns a channel that is
// closed by the next broadcast.
type broadcaster struct {
	mu sync.Mutex
	ch chan struct{}
}

func (b *broadcaster) wait() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ch == nil {
		b.ch = make(chan struct{})
	}
	return b.ch
}

func (b *broadcaster) broadcast() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ch != nil {
		close(b.ch)
		b.ch = nil
	}
}
