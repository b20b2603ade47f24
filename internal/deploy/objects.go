package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/internal/store"
)

// Condition types the controller writes.
const (
	// ConditionStale is True on a Source whose last fetch failed and on a
	// Service whose latest commit could not be released; the reason and
	// message say why. The last good commit and release stay in force.
	ConditionStale = "Stale"
)

// Reasons of the Stale condition.
const (
	ReasonFetched          = "Fetched"
	ReasonFetchFailed      = "FetchFailed"
	ReasonReleased         = "Released"
	ReasonRenderFailed     = "RenderFailed"
	ReasonSourceNotFound   = "SourceNotFound"
	ReasonSourceNotFetched = "SourceNotFetched"
	ReasonNoTargets        = "NoTargetClusters"
	ReasonReleaseFailed    = "ReleaseFailed"
)

// decode fills a typed object from its stored form.
func decode(o *store.Object, obj v1.Object) error {
	m := obj.GetMetadata()
	*m = v1.ObjectMeta{Name: o.Name, UID: o.UID, Labels: o.Labels, Annotations: o.Annotations, Generation: o.Generation,
		ResourceVersion: fmt.Sprint(o.ResourceVersion)}
	t := obj.GetTypeMeta()
	t.APIVersion, t.Kind = v1.APIVersion, o.Kind
	var spec, status any
	switch x := obj.(type) {
	case *v1.Source:
		spec, status = &x.Spec, &x.Status
	case *v1.Service:
		spec, status = &x.Spec, &x.Status
	case *v1.Cluster:
		spec, status = &x.Spec, &x.Status
	case *v1.Release:
		spec, status = &x.Spec, &x.Status
	default:
		return fmt.Errorf("decode %s: kind not handled here", o.Kind)
	}
	if len(o.Spec) > 0 {
		if err := json.Unmarshal(o.Spec, spec); err != nil {
			return fmt.Errorf("%s %s: spec: %w", o.Kind, o.Name, err)
		}
	}
	if len(o.Status) > 0 && string(o.Status) != "null" {
		if err := json.Unmarshal(o.Status, status); err != nil {
			return fmt.Errorf("%s %s: status: %w", o.Kind, o.Name, err)
		}
	}
	obj.Default()
	return nil
}

// toStore converts a typed object to its stored form (spec and status).
func toStore(kind, name string, labels map[string]string, spec, status any) (*store.Object, error) {
	s, err := json.Marshal(spec)
	if err != nil {
		return nil, fmt.Errorf("%s %s: spec: %w", kind, name, err)
	}
	st, err := json.Marshal(status)
	if err != nil {
		return nil, fmt.Errorf("%s %s: status: %w", kind, name, err)
	}
	return &store.Object{Kind: kind, Name: name, Labels: labels, Spec: s, Status: st}, nil
}

func (c *Controller) getSource(ctx context.Context, name string) (*v1.Source, error) {
	o, err := c.st.Get(ctx, v1.KindSource, name)
	if err != nil {
		return nil, err
	}
	var s v1.Source
	return &s, decode(o, &s)
}

func (c *Controller) getService(ctx context.Context, name string) (*v1.Service, error) {
	o, err := c.st.Get(ctx, v1.KindService, name)
	if err != nil {
		return nil, err
	}
	var s v1.Service
	return &s, decode(o, &s)
}

func (c *Controller) getCluster(ctx context.Context, name string) (*v1.Cluster, error) {
	o, err := c.st.Get(ctx, v1.KindCluster, name)
	if err != nil {
		return nil, err
	}
	var s v1.Cluster
	return &s, decode(o, &s)
}

func (c *Controller) getRelease(ctx context.Context, name string) (*v1.Release, error) {
	o, err := c.st.Get(ctx, v1.KindRelease, name)
	if err != nil {
		return nil, err
	}
	var s v1.Release
	return &s, decode(o, &s)
}

// listAll returns every object of kind, page by page.
func (c *Controller) listAll(ctx context.Context, kind string) ([]*store.Object, error) {
	var out []*store.Object
	opts := store.ListOptions{Limit: 5000}
	for {
		l, err := c.st.List(ctx, kind, opts)
		if err != nil {
			return nil, err
		}
		out = append(out, l.Items...)
		if l.Continue == "" {
			return out, nil
		}
		opts.Continue = l.Continue
	}
}

// updateStatus reads an object, lets mutate change its typed status, and
// writes the status back if mutate reports a change; a write that loses a
// race with another writer (the rollout runner) is retried on a fresh read.
func updateStatus[T any](ctx context.Context, c *Controller, kind, name string, mutate func(st *T, o *store.Object) bool) error {
	return updateStatusBy(ctx, c, c.actor, kind, name, mutate)
}

// updateStatusBy is updateStatus attributed to by.
func updateStatusBy[T any](ctx context.Context, c *Controller, by store.Actor, kind, name string, mutate func(st *T, o *store.Object) bool) error {
	for attempt := 0; ; attempt++ {
		o, err := c.st.Get(ctx, kind, name)
		if err != nil {
			return err
		}
		var st T
		if len(o.Status) > 0 && string(o.Status) != "null" {
			if err := json.Unmarshal(o.Status, &st); err != nil {
				return fmt.Errorf("%s %s: status: %w", kind, name, err)
			}
		}
		if !mutate(&st, o) {
			return nil
		}
		data, err := json.Marshal(&st)
		if err != nil {
			return fmt.Errorf("%s %s: status: %w", kind, name, err)
		}
		o.Status = data
		_, err = c.st.UpdateStatus(ctx, o, by)
		if errors.Is(err, store.ErrConflict) && attempt < 8 {
			continue
		}
		if err != nil {
			return fmt.Errorf("%s %s: status: %w", kind, name, err)
		}
		return nil
	}
}

// setCondition sets a condition in conds, keeping its transition time when
// the status does not change; it reports whether anything changed.
func setCondition(conds *[]v1.Condition, typ string, status bool, reason, msg string, now time.Time) bool {
	s := "False"
	if status {
		s = "True"
	}
	for i := range *conds {
		c := &(*conds)[i]
		if c.Type != typ {
			continue
		}
		if c.Status == s && c.Reason == reason && c.Message == msg {
			return false
		}
		if c.Status != s {
			t := now.UTC()
			c.LastTransitionTime = &t
		}
		c.Status, c.Reason, c.Message = s, reason, msg
		return true
	}
	t := now.UTC()
	*conds = append(*conds, v1.Condition{Type: typ, Status: s, Reason: reason, Message: msg, LastTransitionTime: &t})
	return true
}

// markService records the outcome of releasing a service in its Stale
// condition (stale true when err is set).
func (c *Controller) markService(ctx context.Context, name string, stale bool, reason, msg string) error {
	return updateStatus(ctx, c, v1.KindService, name, func(st *v1.ServiceStatus, _ *store.Object) bool {
		return setCondition(&st.Conditions, ConditionStale, stale, reason, msg, c.now())
	})
}
