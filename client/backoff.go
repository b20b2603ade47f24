package client

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"time"
)

// Backoff spaces out retries with full jitter: the n-th wait is uniform in [0, min(Max, Base*2^n)),
// so many agents that failed together do not retry together. The zero value uses Base 500ms and
// Max 1m. It is not safe for concurrent use.
type Backoff struct {
	Base time.Duration
	Max  time.Duration
	// Rand returns a uniform number in [0, n); nil uses math/rand/v2.
	Rand func(n int64) int64

	attempt int
}

// Next returns how long to wait before the next attempt and counts the attempt.
func (b *Backoff) Next() time.Duration {
	base, maxWait := b.Base, b.Max
	if base <= 0 {
		base = 500 * time.Millisecond
	}
	if maxWait <= 0 {
		maxWait = time.Minute
	}
	ceil := maxWait
	if b.attempt < 62 && base<<b.attempt > 0 && base<<b.attempt < maxWait {
		ceil = base << b.attempt
	}
	b.attempt++
	rnd := b.Rand
	if rnd == nil {
		rnd = rand.Int64N
	}
	return time.Duration(rnd(int64(ceil)))
}

// Reset starts the sequence again after a success.
func (b *Backoff) Reset() { b.attempt = 0 }

// Delay returns how long to wait after err: the server's Retry-After (plus up to a second of
// jitter) when it answered 429 or 503 with one, else Next.
func (b *Backoff) Delay(err error) time.Duration {
	if d := RetryAfter(err); d > 0 {
		rnd := b.Rand
		if rnd == nil {
			rnd = rand.Int64N
		}
		b.attempt++
		return d + time.Duration(rnd(int64(time.Second)))
	}
	return b.Next()
}

// Sleep waits for d or until ctx ends, returning ctx's error in that case.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// IsTooManyRequests reports whether the server refused the call because it is overloaded (429).
func IsTooManyRequests(err error) bool { return hasCode(err, http.StatusTooManyRequests) }

// RetryAfter returns the wait the server asked for with a Retry-After header, or 0.
func RetryAfter(err error) time.Duration {
	if e, ok := errors.AsType[*APIError](err); ok {
		return e.RetryAfter
	}
	return 0
}
