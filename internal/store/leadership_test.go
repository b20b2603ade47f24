package store

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// renewals answers AcquireLeadership from a script, one entry per call, then keeps answering the
// last entry.
type renewals struct {
	mu     sync.Mutex
	script []renewal
	calls  int
}

type renewal struct {
	epoch int64
	err   error
}

func (r *renewals) AcquireLeadership(_ context.Context, name, holder string, ttl time.Duration, now time.Time) (*Leadership, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	a := r.script[min(r.calls, len(r.script)-1)]
	r.calls++
	if a.err != nil {
		return nil, a.err
	}
	return &Leadership{Name: name, Holder: holder, Epoch: a.epoch, RenewedAt: now, ExpiresAt: now.Add(ttl)}, nil
}

func TestKeepLeadership(t *testing.T) {
	const ttl = 300 * time.Millisecond // renewals every 100 ms; hiccups tolerated until 250 ms
	hiccup := errors.New("connection reset")
	for _, tc := range []struct {
		name   string
		script []renewal
		want   string // "" : kept until ctx ends
		warns  int    // when kept
	}{
		{"renewed until the holder stops", []renewal{{epoch: 1}}, "", 0},
		{"another epoch", []renewal{{epoch: 1}, {epoch: 2}}, "leadership lapsed (epoch 1, now 2)", 0},
		{"another holder", []renewal{{err: ErrConflict}}, ErrConflict.Error(), 0},
		{"a hiccup with time to spare, then renewed", []renewal{{err: hiccup}, {epoch: 1}}, "", 1},
		{"hiccups until the lease is nearly over", []renewal{{err: hiccup}}, hiccup.Error(), 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*ttl)
			defer cancel()
			st := &renewals{script: tc.script}
			l := &Leadership{Name: "deploy", Holder: "a", Epoch: 1, ExpiresAt: time.Now().Add(ttl)}
			warns := 0
			err := KeepLeadership(ctx, st, l, "a", ttl, time.Now, func(error) { warns++ })
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("lost the leadership: %v", err)
			case tc.want == "" && ctx.Err() == nil:
				t.Fatalf("returned before its context ended")
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if tc.want == "" && warns != tc.warns {
				t.Errorf("%d warnings, want %d", warns, tc.warns)
			}
		})
	}
}
