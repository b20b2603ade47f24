package haproxy

import (
	"context"
	"fmt"
	"slices"
)

// Router drives the servers of one HAProxy backend: each Flotilla backend
// is a server name. It implements the traffic provider interface.
type Router struct {
	Client  *Client
	Backend string
}

// NewRouter returns a Router for backend through the runtime API address.
func NewRouter(runtimeAPI, backend string) (*Router, error) {
	c, err := NewClient(runtimeAPI)
	if err != nil {
		return nil, err
	}
	return &Router{Client: c, Backend: backend}, nil
}

// MaxWeight is HAProxy's largest absolute server weight.
func (r *Router) MaxWeight() int { return MaxWeight }

// SetWeights sets the weight of each named server. A weight of 0 also puts
// the server in drain, so it gets no new traffic even from persistence,
// while its requests in flight finish; a positive weight makes it ready.
// Raises go first and lowerings last, so the backend never passes through
// a moment with fewer usable servers than before or after the change (a
// switch 0/100 -> 100/0 never leaves both at 0). Every server is checked to
// exist before anything changes. A server in maintenance is left in it:
// giving it a weight above 0 is refused. A failure part way (a lost
// connection) may leave some servers changed; weights are absolute, so the
// caller repeats the change.
func (r *Router) SetWeights(ctx context.Context, weights map[string]int) error {
	states, err := r.Client.ServersState(ctx, r.Backend)
	if err != nil {
		return err
	}
	current := map[string]ServerState{}
	for _, s := range states {
		current[s.Name] = s
	}
	names := make([]string, 0, len(weights))
	for name, w := range weights {
		if _, ok := current[name]; !ok {
			return fmt.Errorf("haproxy %s: backend %s has no server %q", r.Client, r.Backend, name)
		}
		if w < 0 || w > MaxWeight {
			return fmt.Errorf("haproxy %s: server %s/%s: weight %d out of range 0-%d", r.Client, r.Backend, name, w, MaxWeight)
		}
		// Maintenance is an operator's decision (or HAProxy's own); taking
		// a server out of it to give it traffic is not ours to make.
		if cur := current[name]; w > 0 && cur.Maintenance() {
			return fmt.Errorf("haproxy %s: server %s/%s is in maintenance (admin state %#x); Flotilla does not take it out",
				r.Client, r.Backend, name, cur.AdminState)
		}
		names = append(names, name)
	}
	// Raises first (by how much they add), then lowerings.
	slices.SortFunc(names, func(a, b string) int {
		da, db := weights[a]-current[a].Effective(), weights[b]-current[b].Effective()
		if da != db {
			return db - da
		}
		if a < b {
			return -1
		}
		return 1
	})
	for _, name := range names {
		w := weights[name]
		if w > 0 {
			// Weight before ready: a drained server comes back at the new
			// weight, never briefly at its old one.
			if err := r.Client.SetWeight(ctx, r.Backend, name, w); err != nil {
				return err
			}
			if current[name].Draining() {
				if err := r.Client.SetState(ctx, r.Backend, name, StateReady); err != nil {
					return err
				}
			}
			continue
		}
		// "state drain" would also end a maintenance: a server in
		// maintenance gets no traffic already, so only its weight changes.
		if !current[name].Maintenance() {
			if err := r.Client.SetState(ctx, r.Backend, name, StateDrain); err != nil {
				return err
			}
		}
		if err := r.Client.SetWeight(ctx, r.Backend, name, 0); err != nil {
			return err
		}
	}
	return nil
}

// Weights reads back each named server's effective weight: 0 while it
// drains or is in maintenance. A server missing from the backend is an
// error.
func (r *Router) Weights(ctx context.Context, backends []string) (map[string]int, error) {
	states, err := r.Client.ServersState(ctx, r.Backend)
	if err != nil {
		return nil, err
	}
	byName := map[string]ServerState{}
	for _, s := range states {
		byName[s.Name] = s
	}
	out := make(map[string]int, len(backends))
	for _, b := range backends {
		s, ok := byName[b]
		if !ok {
			return nil, fmt.Errorf("haproxy %s: backend %s has no server %q", r.Client, r.Backend, b)
		}
		out[b] = s.Effective()
	}
	return out, nil
}

// Ping checks that the runtime API answers and knows the backend.
func (r *Router) Ping(ctx context.Context) error {
	_, err := r.Client.ServersState(ctx, r.Backend)
	return err
}
