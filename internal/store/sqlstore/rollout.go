package sqlstore

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"flotilla.dev/flotilla/internal/store"
)

var _ store.RolloutStore = (*Store)(nil)

// kindRollout is the API kind of rollouts (the store does not import api/v1).
const kindRollout = "Rollout"

func scanLeadership(r Row) (*store.Leadership, error) {
	var (
		l                store.Leadership
		renewed, expires int64
	)
	if err := r.Scan(&l.Name, &l.Holder, &l.Epoch, &renewed, &expires); err != nil {
		return nil, err
	}
	l.RenewedAt, l.ExpiresAt = fromNanos(renewed), fromNanos(expires)
	return &l, nil
}

const leadershipColumns = `name, holder, epoch, renewed_at, expires_at`

// AcquireLeadership implements store.RolloutStore.
func (s *Store) AcquireLeadership(ctx context.Context, name, holder string, ttl time.Duration, now time.Time) (*store.Leadership, error) {
	if name == "" || holder == "" || ttl <= 0 {
		return nil, fmt.Errorf("acquire leadership %q: name, holder and a positive ttl are required: %w", name, store.ErrInvalid)
	}
	var out *store.Leadership
	err := s.b.Write(ctx, func(ctx context.Context, q Querier) error {
		// Taking the sequence lock serialises competing candidates on
		// PostgreSQL as on SQLite.
		if _, err := currentSeq(ctx, q); err != nil {
			return err
		}
		cur, err := scanLeadership(q.QueryRow(ctx, `SELECT `+leadershipColumns+` FROM leaderships WHERE name = $1`, name))
		if err != nil && !s.b.IsNoRows(err) {
			return err
		}
		l := store.Leadership{Name: name, Holder: holder, Epoch: 1, RenewedAt: now.UTC(), ExpiresAt: now.Add(ttl).UTC()}
		if cur != nil {
			live := now.Before(cur.ExpiresAt)
			switch {
			case live && cur.Holder != holder:
				return &store.LeadershipHeldError{Leadership: *cur}
			case live:
				l.Epoch = cur.Epoch
			default:
				l.Epoch = cur.Epoch + 1
			}
		}
		if _, err := q.Exec(ctx, `INSERT INTO leaderships (`+leadershipColumns+`) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, epoch = excluded.epoch,
			renewed_at = excluded.renewed_at, expires_at = excluded.expires_at`,
			name, holder, l.Epoch, l.RenewedAt.UnixNano(), l.ExpiresAt.UnixNano()); err != nil {
			return err
		}
		out = &l
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("acquire leadership %s: %w", name, err)
	}
	return out, nil
}

// ReleaseLeadership implements store.RolloutStore.
func (s *Store) ReleaseLeadership(ctx context.Context, name, holder string) error {
	var n int64
	err := s.b.Write(ctx, func(ctx context.Context, q Querier) error {
		nanos, _ := s.now()
		var err error
		n, err = q.Exec(ctx, `UPDATE leaderships SET expires_at = $3 WHERE name = $1 AND holder = $2 AND expires_at > $3`, name, holder, nanos)
		return err
	})
	if err == nil && n == 0 {
		err = store.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("release leadership %s: %w", name, err)
	}
	return nil
}

// checkFence fails with ErrConflict unless f holds.
func (s *Store) checkFence(ctx context.Context, q Querier, f *store.Fence) error {
	cur, err := scanLeadership(q.QueryRow(ctx, `SELECT `+leadershipColumns+` FROM leaderships WHERE name = $1`, f.Name))
	if s.b.IsNoRows(err) {
		return fmt.Errorf("leadership %s is not held: %w", f.Name, store.ErrConflict)
	}
	if err != nil {
		return err
	}
	if cur.Holder != f.Holder || cur.Epoch != f.Epoch || !f.Now.Before(cur.ExpiresAt) {
		return fmt.Errorf("leadership %s: %q (epoch %d) no longer holds it: %w", f.Name, f.Holder, f.Epoch, store.ErrConflict)
	}
	return nil
}

// CommitTransition implements store.RolloutStore.
func (s *Store) CommitTransition(ctx context.Context, t store.Transition, by store.Actor) (*store.TransitionResult, error) {
	ro := t.Rollout
	if ro == nil || ro.Name == "" {
		return nil, fmt.Errorf("commit transition: the rollout is required: %w", store.ErrInvalid)
	}
	if ro.Kind == "" {
		ro = cloneObject(ro)
		ro.Kind = kindRollout
	}
	name := ro.Name
	if ro.Kind != kindRollout {
		return nil, fmt.Errorf("commit transition of %s: kind %q is not %s: %w", name, ro.Kind, kindRollout, store.ErrInvalid)
	}
	if len(t.Record) == 0 || !json.Valid(t.Record) {
		return nil, fmt.Errorf("commit transition of %s: the record is not JSON: %w", name, store.ErrInvalid)
	}
	if len(ro.Status) > 0 && !json.Valid(ro.Status) {
		return nil, fmt.Errorf("commit transition of %s: status is not JSON: %w", name, store.ErrInvalid)
	}
	clusters, err := checkAssignments(t.Assignments)
	if err != nil {
		return nil, fmt.Errorf("commit transition of %s: assignments: %w", name, err)
	}
	var audit []byte
	if t.Audit != nil {
		if audit, err = json.Marshal(t.Audit); err != nil {
			return nil, fmt.Errorf("commit transition of %s: audit: %v: %w", name, err, store.ErrInvalid)
		}
	}
	res := &store.TransitionResult{}
	err = s.write(ctx, func(ctx context.Context, q Querier) error {
		res.Changed = nil
		// The sequence lock first: it serialises this write with every other.
		if _, err := currentSeq(ctx, q); err != nil {
			return err
		}
		if t.Fence != nil {
			if err := s.checkFence(ctx, q, t.Fence); err != nil {
				return err
			}
		}
		cur, err := s.get(ctx, q, kindRollout, name)
		if err != nil {
			return err
		}
		if cur.ResourceVersion != ro.ResourceVersion {
			return fmt.Errorf("have resourceVersion %d, stored %d: %w", ro.ResourceVersion, cur.ResourceVersion, store.ErrConflict)
		}
		res.Rollout = cur
		was, _ := store.Canonical(cur.Status)
		now, _ := store.Canonical(ro.Status)
		if !bytes.Equal(was, now) {
			seq, err := nextSeq(ctx, q)
			if err != nil {
				return err
			}
			digest, err := store.Digest(cur)
			if err != nil {
				return err
			}
			nanos, tm := s.now()
			o := cloneObject(cur)
			o.Status = bytes.Clone(ro.Status)
			o.ResourceVersion, o.UpdatedAt = seq, tm
			ev := store.Event{Seq: seq, Time: tm, Type: store.StatusUpdated, Kind: o.Kind, Name: o.Name, Actor: by,
				Object: o, DigestBefore: digest, DigestAfter: digest}
			evStmt, err := eventStmt(nanos, ev)
			if err != nil {
				return err
			}
			if err := execAll(ctx, q, Stmt{`UPDATE objects SET status = $3, resource_version = $4, updated_at = $5
				WHERE kind = $1 AND name = $2`, []any{o.Kind, o.Name, string(o.Status), seq, nanos}}, evStmt); err != nil {
				return err
			}
			res.Rollout = o
		}
		nanos, _ := s.now()
		if _, err := q.Exec(ctx, `INSERT INTO rollout_records (name, record, done, updated_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (name) DO UPDATE SET record = excluded.record, done = excluded.done, updated_at = excluded.updated_at`,
			name, string(t.Record), t.Done, nanos); err != nil {
			return err
		}
		if len(t.Assignments) > 0 {
			if res.Changed, err = s.setAssignments(ctx, q, t.Assignments, clusters, by); err != nil {
				return err
			}
		}
		if audit != nil {
			if err := s.logEvent(ctx, q, store.Updated, store.KindRolloutAudit, name, by, json.RawMessage(audit)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("commit transition of %s: %w", name, err)
	}
	return res, nil
}

// RolloutRecords implements store.RolloutStore.
func (s *Store) RolloutRecords(ctx context.Context, names ...string) ([]store.RolloutRecord, error) {
	var out []store.RolloutRecord
	err := s.b.Read(ctx, func(ctx context.Context, q Querier) error {
		out = nil
		cols := "o." + strings.ReplaceAll(objectColumns, ", ", ", o.")
		query := `SELECT ` + cols + `, r.record, r.done FROM objects o LEFT JOIN rollout_records r ON r.name = o.name
			WHERE o.kind = $1`
		args := []any{kindRollout}
		if len(names) > 0 {
			var b strings.Builder
			b.WriteString(" AND o.name IN (")
			for i, n := range names {
				if i > 0 {
					b.WriteString(", ")
				}
				args = append(args, n)
				fmt.Fprintf(&b, "$%d", len(args))
			}
			b.WriteString(")")
			query += b.String()
		} else {
			query += ` AND (r.done IS NULL OR NOT r.done)`
		}
		rows, err := q.Query(ctx, query+` ORDER BY o.name`, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				rec  *string
				done *bool
			)
			o, err := scanObject(recordScanner{rows, &rec, &done})
			if err != nil {
				return err
			}
			rr := store.RolloutRecord{Object: o}
			if rec != nil {
				rr.Record = json.RawMessage(*rec)
			}
			rr.Done = done != nil && *done
			out = append(out, rr)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("rollout records: %w", err)
	}
	return out, nil
}

// recordScanner appends the record columns to an object row's scan.
type recordScanner struct {
	r    Rows
	rec  **string
	done **bool
}

func (r recordScanner) Scan(dest ...any) error {
	return r.r.Scan(append(dest, r.rec, r.done)...)
}

// AgentSummaries implements store.RolloutStore.
func (s *Store) AgentSummaries(ctx context.Context, clusters ...string) (map[string]*store.AgentStatus, error) {
	query, args := whereClusterIn(`SELECT cluster, seq, epoch, agent_version, kubernetes_version, health, applied_digest, summary, last_heartbeat FROM agent_status`, clusters)
	rows, err := s.b.Querier().Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("agent summaries: %w", err)
	}
	defer rows.Close()
	out := map[string]*store.AgentStatus{}
	for rows.Next() {
		var (
			st      store.AgentStatus
			summary string
			hb      int64
		)
		if err := rows.Scan(&st.Cluster, &st.Seq, &st.Epoch, &st.AgentVersion, &st.KubernetesVersion, &st.Health, &st.AppliedDigest,
			&summary, &hb); err != nil {
			return nil, fmt.Errorf("agent summaries: %w", err)
		}
		st.Summary, st.LastHeartbeat = json.RawMessage(summary), fromNanos(hb)
		out[st.Cluster] = &st
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("agent summaries: %w", err)
	}
	return out, nil
}
