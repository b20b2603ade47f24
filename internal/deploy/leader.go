package deploy

import (
	"context"
	"errors"
	"time"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/internal/store"
)

// LeadershipName is the store leadership the controller holds while it
// fetches sources, cuts releases and places them. It is not the rollout
// runner's, so either loop fails over without waiting for the other.
const LeadershipName = "deploy"

// WebhookActor is who records a webhook call in a Source's status; the
// leading controller fetches a source at once when it sees that write.
var WebhookActor = store.Actor{Kind: store.ActorSystem, Name: "webhook"}

// Run campaigns for the store leadership LeadershipName and, while it
// holds it, does the controller's work (see term). It returns nil when ctx
// ends, after giving the leadership up so that another replica takes over
// at once.
func (c *Controller) Run(ctx context.Context) error {
	ttl := c.opts.LeaseTTL
	for ctx.Err() == nil {
		l, err := c.st.AcquireLeadership(ctx, LeadershipName, c.opts.Holder, ttl, c.now())
		if err == nil {
			c.log.Info("source and release controller leads", "holder", c.opts.Holder, "epoch", l.Epoch, "ttl", ttl)
			if err := c.lead(ctx, l); err != nil && ctx.Err() == nil {
				c.log.Warn("source and release controller stopped leading", "err", err)
			}
			continue
		}
		wait := ttl / 3
		var held *store.LeadershipHeldError
		if errors.As(err, &held) {
			if d := held.Leadership.ExpiresAt.Sub(c.now()); d > 0 && d < wait {
				wait = d + 10*time.Millisecond
			}
		} else if ctx.Err() == nil {
			c.log.Warn("deploy: acquire leadership", "err", err)
		}
		sleep(ctx, wait)
	}
	return nil
}

// Leading reports whether this controller holds the leadership now.
func (c *Controller) Leading() bool { return c.leading.Load() }

// lead runs one term: the work runs until the leadership is lost (a renewal
// finds another holder or a new epoch, or fails until the lease is nearly
// over) or ctx ends.
func (c *Controller) lead(ctx context.Context, l *store.Leadership) error {
	ttl := c.opts.LeaseTTL
	tctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c.leading.Store(true)
	defer c.leading.Store(false)
	lost := make(chan error, 1)
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		if err := store.KeepLeadership(tctx, c.st, l, c.opts.Holder, ttl, c.now, func(err error) {
			c.log.Warn("deploy: renew leadership", "err", err)
		}); err != nil {
			lost <- err
			cancel()
		}
	}()
	err := c.term(tctx)
	cancel()
	<-renewed
	if ctx.Err() != nil {
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		_ = c.st.ReleaseLeadership(rctx, LeadershipName, c.opts.Holder)
		rcancel()
		return nil
	}
	select {
	case e := <-lost:
		return e
	default:
		return err
	}
}

// Trigger records an authenticated webhook call of source in its status
// (status.lastWebhook, by WebhookActor). Any replica may call it: the
// leading controller follows the event log and fetches the source as soon
// as it sees the write, so the request survives a change of leader and
// shows in the audit trail. ref and commit are what the push said ("" if
// nothing).
func (c *Controller) Trigger(ctx context.Context, source, ref, commit string) error {
	now := c.now().UTC()
	return updateStatusBy(ctx, c, WebhookActor, v1.KindSource, source, func(st *v1.SourceStatus, _ *store.Object) bool {
		st.LastWebhook = &v1.WebhookCall{Time: now, Ref: ref, Commit: commit}
		return true
	})
}
