package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"flotilla.dev/flotilla/internal/store"
)

// DefaultEventLimit is the page size of Events when the caller gives none.
const DefaultEventLimit = 1000

// eventObject is how an event stores its object.
type eventObject struct {
	UID             string            `json:"uid"`
	Labels          map[string]string `json:"labels,omitempty"`
	Annotations     map[string]string `json:"annotations,omitempty"`
	ResourceVersion int64             `json:"resourceVersion"`
	Generation      int64             `json:"generation"`
	CreatedAt       int64             `json:"createdAt"`
	UpdatedAt       int64             `json:"updatedAt"`
	Spec            json.RawMessage   `json:"spec,omitempty"`
	Status          json.RawMessage   `json:"status,omitempty"`
}

// eventStmt returns the statement that appends ev to the log.
func eventStmt(nanos int64, ev store.Event) (Stmt, error) {
	o := ev.Object
	data, err := json.Marshal(eventObject{UID: o.UID, Labels: o.Labels, Annotations: o.Annotations,
		ResourceVersion: o.ResourceVersion, Generation: o.Generation, CreatedAt: o.CreatedAt.UnixNano(),
		UpdatedAt: o.UpdatedAt.UnixNano(), Spec: o.Spec, Status: o.Status})
	if err != nil {
		return Stmt{}, fmt.Errorf("encode event %d: %w", ev.Seq, err)
	}
	return Stmt{`INSERT INTO events (seq, time, type, kind, name, actor_kind, actor_name, object,
		digest_before, digest_after) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		[]any{ev.Seq, nanos, string(ev.Type), ev.Kind, ev.Name, ev.Actor.Kind, ev.Actor.Name, string(data),
			ev.DigestBefore, ev.DigestAfter}}, nil
}

// Events implements store.Store.
func (s *Store) Events(ctx context.Context, after int64, limit int, f store.EventFilter) ([]store.Event, error) {
	if limit <= 0 {
		limit = DefaultEventLimit
	}
	var b strings.Builder
	b.WriteString(`SELECT seq, time, type, kind, name, actor_kind, actor_name, object, digest_before, digest_after
		FROM events WHERE seq > $1`)
	args := []any{after}
	param := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if len(f.Kinds) > 0 {
		b.WriteString(" AND kind IN (")
		for i, k := range f.Kinds {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(param(k))
		}
		b.WriteString(")")
	}
	if f.Name != "" {
		b.WriteString(" AND name = " + param(f.Name))
	}
	if f.Actor != "" {
		b.WriteString(" AND actor_name = " + param(f.Actor))
	}
	if !f.Since.IsZero() {
		b.WriteString(" AND time >= " + param(f.Since.UnixNano()))
	}
	if !f.Until.IsZero() {
		b.WriteString(" AND time < " + param(f.Until.UnixNano()))
	}
	fmt.Fprintf(&b, " ORDER BY seq LIMIT %d", limit)
	rows, err := s.b.Querier().Query(ctx, b.String(), args...)
	if err != nil {
		return nil, fmt.Errorf("read events after %d: %w", after, err)
	}
	defer rows.Close()
	var out []store.Event
	for rows.Next() {
		var (
			ev    store.Event
			nanos int64
			typ   string
			data  string
		)
		if err := rows.Scan(&ev.Seq, &nanos, &typ, &ev.Kind, &ev.Name, &ev.Actor.Kind, &ev.Actor.Name, &data,
			&ev.DigestBefore, &ev.DigestAfter); err != nil {
			return nil, fmt.Errorf("read events after %d: %w", after, err)
		}
		ev.Time = fromNanos(nanos)
		ev.Type = store.EventType(typ)
		var eo eventObject
		if err := json.Unmarshal([]byte(data), &eo); err != nil {
			return nil, fmt.Errorf("read event %d: %w", ev.Seq, err)
		}
		ev.Object = &store.Object{Kind: ev.Kind, Name: ev.Name, UID: eo.UID, Labels: cloneMap(eo.Labels),
			Annotations: cloneMap(eo.Annotations), ResourceVersion: eo.ResourceVersion, Generation: eo.Generation,
			CreatedAt: fromNanos(eo.CreatedAt), UpdatedAt: fromNanos(eo.UpdatedAt), Spec: eo.Spec, Status: eo.Status}
		out = append(out, ev)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read events after %d: %w", after, err)
	}
	return out, nil
}

// LatestSeq implements store.Store.
func (s *Store) LatestSeq(ctx context.Context) (int64, error) {
	var seq int64
	if err := s.b.Querier().QueryRow(ctx, `SELECT value FROM flotilla_seq WHERE id = 1`).Scan(&seq); err != nil {
		return 0, fmt.Errorf("read latest sequence number: %w", err)
	}
	return seq, nil
}

// WaitForEvent implements store.Store. It checks the log, then sleeps until
// a write in this process (or a backend notification) wakes it, or the poll
// interval passes, and checks again.
func (s *Store) WaitForEvent(ctx context.Context, after int64) error {
	timer := time.NewTimer(s.opts.PollInterval)
	defer timer.Stop()
	for {
		woken := s.wake.wait()
		latest, err := s.LatestSeq(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		if latest > after {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-woken:
		case <-timer.C:
			timer.Reset(s.opts.PollInterval)
		}
	}
}
