package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// LeadershipRenewer is the part of the store KeepLeadership needs.
type LeadershipRenewer interface {
	AcquireLeadership(ctx context.Context, name, holder string, ttl time.Duration, now time.Time) (*Leadership, error)
}

// KeepLeadership renews the leadership l (held by holder, lasting ttl) every third of ttl, until
// ctx ends (it returns nil) or the leadership is lost, which it returns as the reason: a renewal
// found another epoch or holder, or renewals kept failing until less than a sixth of the lease
// was left. A failed renewal with time to spare is a database hiccup: it goes to warn and the
// holder keeps working while the lease lasts. Every store leadership (source controller, rollout
// runner) is kept this way, so they fail over alike.
func KeepLeadership(ctx context.Context, st LeadershipRenewer, l *Leadership, holder string, ttl time.Duration,
	now func() time.Time, warn func(error)) error {
	expires := l.ExpiresAt
	t := time.NewTicker(ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		nl, err := st.AcquireLeadership(ctx, l.Name, holder, ttl, now())
		switch {
		case err == nil && nl.Epoch == l.Epoch:
			expires = nl.ExpiresAt
			continue
		case err == nil:
			return fmt.Errorf("leadership lapsed (epoch %d, now %d)", l.Epoch, nl.Epoch)
		case ctx.Err() != nil:
			return nil
		case !errors.Is(err, ErrConflict) && now().Before(expires.Add(-ttl/6)):
			warn(err)
			continue
		}
		return err
	}
}
