package sqlstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"flotilla.dev/flotilla/internal/store"
)

var _ store.AgentStore = (*Store)(nil)

// chunk bounds the values of one IN list, and maxParams the parameters of
// one multi-row statement: SQLite resolves each numbered parameter by a
// linear search of those seen so far, so preparing a statement costs the
// square of its parameter count.
const (
	chunk     = 200
	maxParams = 100
)

// insertRows returns multi-row INSERT statements of rows into table; suffix
// (such as an ON CONFLICT clause) ends each statement.
func insertRows(table string, cols []string, rows [][]any, suffix string) []Stmt {
	var out []Stmt
	per := max(1, maxParams/len(cols))
	for start := 0; start < len(rows); start += per {
		part := rows[start:min(start+per, len(rows))]
		var b strings.Builder
		fmt.Fprintf(&b, "INSERT INTO %s (%s) VALUES ", table, strings.Join(cols, ", "))
		args := make([]any, 0, len(part)*len(cols))
		for i, r := range part {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString("(")
			for j := range r {
				if j > 0 {
					b.WriteString(", ")
				}
				fmt.Fprintf(&b, "$%d", len(args)+j+1)
			}
			b.WriteString(")")
			args = append(args, r...)
		}
		b.WriteString(suffix)
		out = append(out, Stmt{b.String(), args})
	}
	return out
}

// eventRow returns the row of the events table for an event about a record
// that is not an API object: its spec is what the audit trail shows.
func eventRow(seq, nanos int64, typ store.EventType, kind, name string, by store.Actor, spec any) ([]any, error) {
	data, err := json.Marshal(spec)
	if err != nil {
		return nil, fmt.Errorf("encode %s %s event: %w", kind, name, err)
	}
	o := &store.Object{Kind: kind, Name: name, ResourceVersion: seq, Generation: 1, Spec: data}
	digest, err := store.Digest(o)
	if err != nil {
		return nil, err
	}
	return specEventRow(seq, nanos, typ, kind, name, by, data, digest)
}

// specEventRow is eventRow for a spec already encoded, with its digest.
func specEventRow(seq, nanos int64, typ store.EventType, kind, name string, by store.Actor, data []byte, digest string) ([]any, error) {
	before := digest
	if typ == store.Created {
		before = ""
	}
	after := digest
	if typ == store.Deleted {
		after = ""
	}
	head, err := json.Marshal(eventObject{ResourceVersion: seq, Generation: 1, CreatedAt: nanos, UpdatedAt: nanos})
	if err != nil {
		return nil, fmt.Errorf("encode %s %s event: %w", kind, name, err)
	}
	// The spec (compact JSON from json.Marshal, often megabytes for a fleet-wide assignment) is
	// spliced in rather than compacted again as a json.RawMessage field; spec is the last field
	// written, so the result is what json.Marshal would give.
	var eo strings.Builder
	eo.Grow(len(head) + len(data) + 16)
	eo.Write(head[:len(head)-1])
	if len(data) > 0 {
		eo.WriteString(`,"spec":`)
		eo.Write(data)
	}
	eo.WriteByte('}')
	return []any{seq, nanos, string(typ), kind, name, by.Kind, by.Name, eo.String(), before, after}, nil
}

var eventCols = []string{"seq", "time", "type", "kind", "name", "actor_kind", "actor_name", "object", "digest_before", "digest_after"}

// logEvent appends one event under the sequence lock.
func (s *Store) logEvent(ctx context.Context, q Querier, typ store.EventType, kind, name string, by store.Actor, spec any) error {
	seq, err := nextSeq(ctx, q)
	if err != nil {
		return err
	}
	nanos, _ := s.now()
	row, err := eventRow(seq, nanos, typ, kind, name, by, spec)
	if err != nil {
		return err
	}
	return execAll(ctx, q, insertRows("events", eventCols, [][]any{row}, "")...)
}

// CreateBootstrapToken implements store.AgentStore.
func (s *Store) CreateBootstrapToken(ctx context.Context, t store.BootstrapToken, by store.Actor) error {
	if t.Hash == "" || t.Cluster == "" || t.ExpiresAt.IsZero() {
		return fmt.Errorf("create bootstrap token for %q: hash, cluster and expiry are required: %w", t.Cluster, store.ErrInvalid)
	}
	created := t.CreatedAt
	if created.IsZero() {
		_, created = s.now()
	}
	err := s.write(ctx, func(ctx context.Context, q Querier) error {
		if _, err := q.Exec(ctx, `INSERT INTO bootstrap_tokens (hash, cluster, created_at, expires_at, created_by)
			VALUES ($1, $2, $3, $4, $5)`, t.Hash, t.Cluster, created.UnixNano(), t.ExpiresAt.UnixNano(), t.CreatedBy); err != nil {
			if s.b.IsUniqueViolation(err) {
				return store.ErrAlreadyExists
			}
			return err
		}
		return s.logEvent(ctx, q, store.Created, store.KindAgentCredential, t.Cluster, by,
			map[string]any{"bootstrapToken": map[string]any{"expiresAt": t.ExpiresAt.UTC()}})
	})
	if err != nil {
		return fmt.Errorf("create bootstrap token for %s: %w", t.Cluster, err)
	}
	return nil
}

// RedeemBootstrapToken implements store.AgentStore.
func (s *Store) RedeemBootstrapToken(ctx context.Context, hash string, cred store.AgentCredential, now time.Time) (string, error) {
	if cred.Hash == "" {
		return "", fmt.Errorf("redeem bootstrap token: credential hash is required: %w", store.ErrInvalid)
	}
	var cluster string
	err := s.write(ctx, func(ctx context.Context, q Querier) error {
		var (
			expires int64
			used    *int64
		)
		err := q.QueryRow(ctx, `SELECT cluster, expires_at, used_at FROM bootstrap_tokens WHERE hash = $1`, hash).
			Scan(&cluster, &expires, &used)
		switch {
		case s.b.IsNoRows(err):
			return store.ErrNotFound
		case err != nil:
			return err
		case used != nil:
			return fmt.Errorf("bootstrap token of cluster %s was redeemed at %s: %w", cluster,
				fromNanos(*used).Format(time.RFC3339), store.ErrUsed)
		case !now.Before(fromNanos(expires)):
			return fmt.Errorf("bootstrap token of cluster %s expired at %s: %w", cluster,
				fromNanos(expires).Format(time.RFC3339), store.ErrExpired)
		}
		n := now.UnixNano()
		if _, err := q.Exec(ctx, `UPDATE bootstrap_tokens SET used_at = $2 WHERE hash = $1`, hash, n); err != nil {
			return err
		}
		if _, err := q.Exec(ctx, `INSERT INTO agent_credentials (cluster, hash, created_at) VALUES ($1, $2, $3)
			ON CONFLICT (cluster) DO UPDATE SET hash = excluded.hash, created_at = excluded.created_at, revoked_at = NULL`,
			cluster, cred.Hash, n); err != nil {
			return err
		}
		if _, err := q.Exec(ctx, `DELETE FROM agent_leases WHERE cluster = $1`, cluster); err != nil {
			return err
		}
		return s.logEvent(ctx, q, store.Updated, store.KindAgentCredential, cluster,
			store.Actor{Kind: store.ActorAgent, Name: cluster}, map[string]any{"registered": true})
	})
	if err != nil {
		return "", fmt.Errorf("redeem bootstrap token: %w", err)
	}
	return cluster, nil
}

// AgentByHash implements store.AgentStore.
func (s *Store) AgentByHash(ctx context.Context, hash string) (*store.AgentCredential, error) {
	var (
		c       store.AgentCredential
		created int64
		revoked *int64
	)
	err := s.b.Querier().QueryRow(ctx, `SELECT cluster, hash, created_at, revoked_at FROM agent_credentials WHERE hash = $1`, hash).
		Scan(&c.Cluster, &c.Hash, &created, &revoked)
	if s.b.IsNoRows(err) || err == nil && revoked != nil {
		return nil, fmt.Errorf("agent credential: %w", store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("agent credential: %w", err)
	}
	c.CreatedAt = fromNanos(created)
	return &c, nil
}

// RevokeAgent implements store.AgentStore.
func (s *Store) RevokeAgent(ctx context.Context, cluster string, by store.Actor) error {
	err := s.write(ctx, func(ctx context.Context, q Querier) error {
		nanos, _ := s.now()
		creds, err := q.Exec(ctx, `UPDATE agent_credentials SET revoked_at = $2 WHERE cluster = $1 AND revoked_at IS NULL`, cluster, nanos)
		if err != nil {
			return err
		}
		toks, err := q.Exec(ctx, `DELETE FROM bootstrap_tokens WHERE cluster = $1 AND used_at IS NULL`, cluster)
		if err != nil {
			return err
		}
		if creds == 0 && toks == 0 {
			return store.ErrNotFound
		}
		if _, err := q.Exec(ctx, `DELETE FROM agent_leases WHERE cluster = $1`, cluster); err != nil {
			return err
		}
		return s.logEvent(ctx, q, store.Deleted, store.KindAgentCredential, cluster, by,
			map[string]any{"revokedCredential": creds > 0, "droppedBootstrapTokens": toks})
	})
	if err != nil {
		return fmt.Errorf("revoke agent of cluster %s: %w", cluster, err)
	}
	return nil
}

func (s *Store) scanLease(r Row) (*store.Lease, error) {
	var (
		l                store.Lease
		renewed, expires int64
	)
	if err := r.Scan(&l.Cluster, &l.Holder, &l.Epoch, &renewed, &expires); err != nil {
		return nil, err
	}
	l.RenewedAt, l.ExpiresAt = fromNanos(renewed), fromNanos(expires)
	return &l, nil
}

// AcquireLease implements store.AgentStore.
func (s *Store) AcquireLease(ctx context.Context, cluster, holder string, ttl time.Duration, now time.Time) (*store.Lease, error) {
	if cluster == "" || holder == "" || ttl <= 0 {
		return nil, fmt.Errorf("acquire lease of %q: cluster, holder and a positive ttl are required: %w", cluster, store.ErrInvalid)
	}
	var out *store.Lease
	err := s.b.Write(ctx, func(ctx context.Context, q Querier) error {
		cur, err := s.scanLease(q.QueryRow(ctx, `SELECT cluster, holder, epoch, renewed_at, expires_at FROM agent_leases WHERE cluster = $1`, cluster))
		if err != nil && !s.b.IsNoRows(err) {
			return err
		}
		l := store.Lease{Cluster: cluster, Holder: holder, Epoch: 1, RenewedAt: now.UTC(), ExpiresAt: now.Add(ttl).UTC()}
		if cur != nil {
			live := now.Before(cur.ExpiresAt)
			switch {
			case live && cur.Holder != holder:
				return &store.LeaseHeldError{Lease: *cur}
			case live:
				l.Epoch = cur.Epoch
			default:
				l.Epoch = cur.Epoch + 1
			}
		}
		if _, err := q.Exec(ctx, `INSERT INTO agent_leases (cluster, holder, epoch, renewed_at, expires_at) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (cluster) DO UPDATE SET holder = excluded.holder, epoch = excluded.epoch,
			renewed_at = excluded.renewed_at, expires_at = excluded.expires_at`,
			cluster, holder, l.Epoch, l.RenewedAt.UnixNano(), l.ExpiresAt.UnixNano()); err != nil {
			return err
		}
		out = &l
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("acquire lease of %s: %w", cluster, err)
	}
	return out, nil
}

// ReleaseLease implements store.AgentStore.
func (s *Store) ReleaseLease(ctx context.Context, cluster, holder string) error {
	var n int64
	err := s.b.Write(ctx, func(ctx context.Context, q Querier) error {
		nanos, _ := s.now()
		var err error
		// The epoch stays, so the next holder gets a greater one.
		n, err = q.Exec(ctx, `UPDATE agent_leases SET expires_at = $3 WHERE cluster = $1 AND holder = $2`, cluster, holder, nanos)
		return err
	})
	if err == nil && n == 0 {
		err = store.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("release lease of %s: %w", cluster, err)
	}
	return nil
}

// GetLease implements store.AgentStore.
func (s *Store) GetLease(ctx context.Context, cluster string) (*store.Lease, error) {
	l, err := s.scanLease(s.b.Querier().QueryRow(ctx, `SELECT cluster, holder, epoch, renewed_at, expires_at FROM agent_leases WHERE cluster = $1`, cluster))
	if s.b.IsNoRows(err) {
		return nil, fmt.Errorf("lease of %s: %w", cluster, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("lease of %s: %w", cluster, err)
	}
	return l, nil
}

// readAssignments returns the assignments of the given clusters, by cluster.
func readAssignments(ctx context.Context, q Querier, clusters []string) (map[string][]store.Assignment, error) {
	out := map[string][]store.Assignment{}
	for start := 0; start < len(clusters); start += chunk {
		part := clusters[start:min(start+chunk, len(clusters))]
		query, args := whereClusterIn(`SELECT cluster, service, release, bundle, options, updated_at, updated_by FROM assignments`, part)
		rows, err := q.Query(ctx, query+" ORDER BY cluster, service", args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var (
				a       store.Assignment
				opts    string
				updated int64
			)
			if err := rows.Scan(&a.Cluster, &a.Service, &a.Release, &a.Bundle, &opts, &updated, &a.UpdatedBy); err != nil {
				rows.Close()
				return nil, err
			}
			if opts != "" {
				a.Options = json.RawMessage(opts)
			}
			a.UpdatedAt = fromNanos(updated)
			out[a.Cluster] = append(out[a.Cluster], a)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// SetAssignments implements store.AgentStore.
func (s *Store) SetAssignments(ctx context.Context, as []store.Assignment, by store.Actor) ([]store.DesiredState, error) {
	clusters, err := checkAssignments(as)
	if err != nil {
		return nil, fmt.Errorf("set assignments: %w", err)
	}
	var out []store.DesiredState
	err = s.write(ctx, func(ctx context.Context, q Querier) error {
		var err error
		out, err = s.setAssignments(ctx, q, as, clusters, by)
		if err == nil && len(out) == 0 {
			return errNoChange
		}
		return err
	})
	if errors.Is(err, errNoChange) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("set assignments: %w", err)
	}
	return out, nil
}

// checkAssignments rejects malformed assignments and returns the clusters
// they name, sorted.
func checkAssignments(as []store.Assignment) ([]string, error) {
	seen := map[[2]string]int{}
	clusterSet := map[string]bool{}
	for i, a := range as {
		switch {
		case a.Cluster == "" || a.Service == "":
			return nil, fmt.Errorf("item %d: cluster and service are required: %w", i, store.ErrInvalid)
		case a.Release != "" && a.Bundle == "":
			return nil, fmt.Errorf("item %d (%s/%s): bundle is required: %w", i, a.Cluster, a.Service, store.ErrInvalid)
		case len(a.Options) > 0 && !json.Valid(a.Options):
			return nil, fmt.Errorf("item %d (%s/%s): options are not JSON: %w", i, a.Cluster, a.Service, store.ErrInvalid)
		}
		k := [2]string{a.Cluster, a.Service}
		if j, dup := seen[k]; dup {
			return nil, fmt.Errorf("item %d repeats item %d (%s/%s): %w", i, j, a.Cluster, a.Service, store.ErrInvalid)
		}
		seen[k] = i
		clusterSet[a.Cluster] = true
	}
	clusters := make([]string, 0, len(clusterSet))
	for c := range clusterSet {
		clusters = append(clusters, c)
	}
	slices.Sort(clusters)
	return clusters, nil
}

// setAssignments applies checked assignments inside a write transaction
// and returns the desired states that changed (none: nothing written).
func (s *Store) setAssignments(ctx context.Context, q Querier, as []store.Assignment, clusters []string, by store.Actor) ([]store.DesiredState, error) {
	var out []store.DesiredState
	cur, err := readAssignments(ctx, q, clusters)
	if err != nil {
		return nil, err
	}
	nanos, _ := s.now()
	updatedBy := by.Kind + ":" + by.Name
	changes := map[string][]store.Assignment{}
	for _, a := range as {
		changes[a.Cluster] = append(changes[a.Cluster], a)
	}
	memo := newBatchMemo()
	// Rows are grouped by what they share: upserts by (service, release,
	// bundle, options), deletes by service.
	type upsertKey struct{ service, release, bundle, options string }
	var upsertOrder []upsertKey
	upserts := map[upsertKey][]any{}
	var deleteOrder []string
	deletes := map[string][]any{}
	for _, c := range clusters {
		state := map[string]store.Assignment{}
		for _, a := range cur[c] {
			if string(a.Options) == "{}" {
				a.Options = nil // stored for none; read as Desired reads it, so digests agree
			}
			state[a.Service] = a
		}
		changed := false
		for _, a := range changes[c] {
			if string(memo.canonical(a.Options)) == "{}" {
				a.Options = nil // what Desired will read back
			}
			old, had := state[a.Service]
			switch {
			case a.Release == "" && had:
				delete(state, a.Service)
				if _, ok := deletes[a.Service]; !ok {
					deleteOrder = append(deleteOrder, a.Service)
				}
				deletes[a.Service] = append(deletes[a.Service], c)
				changed = true
			case a.Release == "":
			case !had || !memo.same(old, a):
				a.UpdatedAt, a.UpdatedBy = fromNanos(nanos), updatedBy
				if len(a.Options) == 0 {
					a.Options = nil
				}
				state[a.Service] = a
				k := upsertKey{a.Service, a.Release, a.Bundle, "{}"}
				if len(a.Options) > 0 {
					k.options = string(a.Options)
				}
				if _, ok := upserts[k]; !ok {
					upsertOrder = append(upsertOrder, k)
				}
				upserts[k] = append(upserts[k], c)
				changed = true
			}
		}
		if !changed {
			continue
		}
		ds := store.DesiredState{Cluster: c, Assignments: make([]store.Assignment, 0, len(state))}
		for _, a := range state {
			ds.Assignments = append(ds.Assignments, a)
		}
		slices.SortFunc(ds.Assignments, func(a, b store.Assignment) int { return strings.Compare(a.Service, b.Service) })
		ds.Digest = memo.desiredDigest(ds.Assignments)
		out = append(out, ds)
	}
	if len(out) == 0 {
		return nil, nil
	}
	seq, err := nextSeq(ctx, q)
	if err != nil {
		return nil, err
	}
	var digestOrder []string
	desired := map[string][]any{}
	services := map[string]bool{}
	for i := range out {
		out[i].Seq = seq
		d := out[i].Digest
		if _, ok := desired[d]; !ok {
			digestOrder = append(digestOrder, d)
		}
		desired[d] = append(desired[d], out[i].Cluster)
	}
	for _, a := range as {
		services[a.Service] = true
	}
	names := make([]string, 0, len(services))
	for sv := range services {
		names = append(names, sv)
	}
	slices.Sort(names)
	spec, digest, err := memo.changeSpec(out)
	if err != nil {
		return nil, err
	}
	row, err := specEventRow(seq, nanos, store.Updated, store.KindAssignments, strings.Join(names, ","), by, spec, digest)
	if err != nil {
		return nil, err
	}
	var stmts []Stmt
	for _, sv := range deleteOrder {
		stmts = append(stmts, deleteIn("assignments", "service", sv, "cluster", deletes[sv])...)
	}
	for _, k := range upsertOrder {
		stmts = append(stmts, sharedRows("assignments", "cluster", upserts[k],
			[]string{"service", "release", "bundle", "options", "updated_at", "updated_by"},
			[]any{k.service, k.release, k.bundle, k.options, nanos, updatedBy},
			` ON CONFLICT (cluster, service) DO UPDATE SET release = excluded.release, bundle = excluded.bundle,
			options = excluded.options, updated_at = excluded.updated_at, updated_by = excluded.updated_by`)...)
	}
	for _, d := range digestOrder {
		stmts = append(stmts, sharedRows("desired_states", "cluster", desired[d], []string{"digest", "seq"}, []any{d, seq},
			` ON CONFLICT (cluster) DO UPDATE SET digest = excluded.digest, seq = excluded.seq`)...)
	}
	stmts = append(stmts, insertRows("events", eventCols, [][]any{row}, "")...)
	if err := execAll(ctx, q, stmts...); err != nil {
		return nil, err
	}
	return out, nil
}

// Desired implements store.AgentStore.
func (s *Store) Desired(ctx context.Context, cluster string) (*store.DesiredState, error) {
	out := &store.DesiredState{Cluster: cluster}
	err := s.b.Read(ctx, func(ctx context.Context, q Querier) error {
		err := q.QueryRow(ctx, `SELECT seq FROM desired_states WHERE cluster = $1`, cluster).Scan(&out.Seq)
		if err != nil && !s.b.IsNoRows(err) {
			return err
		}
		cur, err := readAssignments(ctx, q, []string{cluster})
		if err != nil {
			return err
		}
		out.Assignments = cur[cluster]
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("desired state of %s: %w", cluster, err)
	}
	if out.Assignments == nil {
		out.Assignments = []store.Assignment{}
	}
	for i := range out.Assignments {
		if string(out.Assignments[i].Options) == "{}" {
			out.Assignments[i].Options = nil
		}
	}
	out.Digest = store.DesiredDigest(out.Assignments)
	return out, nil
}

// BundleAssigned implements store.AgentStore.
func (s *Store) BundleAssigned(ctx context.Context, cluster, digest string) (bool, error) {
	var n int64
	if err := s.b.Querier().QueryRow(ctx, `SELECT COUNT(*) FROM assignments WHERE cluster = $1 AND bundle = $2`, cluster, digest).Scan(&n); err != nil {
		return false, fmt.Errorf("bundle %s assigned to %s: %w", digest, cluster, err)
	}
	return n > 0, nil
}

// PutBundle implements store.AgentStore.
func (s *Store) PutBundle(ctx context.Context, digest string, data []byte, by store.Actor) (bool, error) {
	if digest == "" || data == nil {
		return false, fmt.Errorf("put bundle: digest and data are required: %w", store.ErrInvalid)
	}
	if ok, err := s.HasBundle(ctx, digest); err != nil || ok {
		return false, err
	}
	created := false
	err := s.write(ctx, func(ctx context.Context, q Querier) error {
		nanos, _ := s.now()
		n, err := q.Exec(ctx, `INSERT INTO bundles (digest, data, size, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (digest) DO NOTHING`,
			digest, data, len(data), nanos)
		if err != nil {
			return err
		}
		if n == 0 {
			return errNoChange
		}
		created = true
		return s.logEvent(ctx, q, store.Created, store.KindBundle, digest, by, map[string]any{"size": len(data)})
	})
	if err != nil && !errors.Is(err, errNoChange) {
		return false, fmt.Errorf("put bundle %s: %w", digest, err)
	}
	return created, nil
}

// GetBundle implements store.AgentStore.
func (s *Store) GetBundle(ctx context.Context, digest string) ([]byte, error) {
	var data []byte
	err := s.b.Querier().QueryRow(ctx, `SELECT data FROM bundles WHERE digest = $1`, digest).Scan(&data)
	if s.b.IsNoRows(err) {
		return nil, fmt.Errorf("bundle %s: %w", digest, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", digest, err)
	}
	return data, nil
}

// HasBundle implements store.AgentStore.
func (s *Store) HasBundle(ctx context.Context, digest string) (bool, error) {
	var n int64
	if err := s.b.Querier().QueryRow(ctx, `SELECT COUNT(*) FROM bundles WHERE digest = $1`, digest).Scan(&n); err != nil {
		return false, fmt.Errorf("bundle %s: %w", digest, err)
	}
	return n > 0, nil
}

const statusColumns = `cluster, seq, epoch, agent_version, kubernetes_version, health, applied_digest, summary, report, last_heartbeat`

func scanStatus(r Row) (*store.AgentStatus, error) {
	var (
		st              store.AgentStatus
		summary, report string
		hb              int64
	)
	if err := r.Scan(&st.Cluster, &st.Seq, &st.Epoch, &st.AgentVersion, &st.KubernetesVersion, &st.Health, &st.AppliedDigest,
		&summary, &report, &hb); err != nil {
		return nil, err
	}
	st.Summary, st.Report, st.LastHeartbeat = json.RawMessage(summary), json.RawMessage(report), fromNanos(hb)
	return &st, nil
}

// RecordAgentStatus implements store.AgentStore.
func (s *Store) RecordAgentStatus(ctx context.Context, st store.AgentStatus) (bool, error) {
	if st.Cluster == "" || st.Seq <= 0 {
		return false, fmt.Errorf("record agent status of %q: cluster and a positive seq are required: %w", st.Cluster, store.ErrInvalid)
	}
	summary, err := store.Canonical(st.Summary)
	if err != nil || len(st.Summary) == 0 {
		summary = []byte("{}")
	}
	report := st.Report
	if len(report) == 0 || !json.Valid(report) {
		report = []byte("{}")
	}
	if st.LastHeartbeat.IsZero() {
		_, st.LastHeartbeat = s.now()
	}
	changed := false
	// A heartbeat that changes nothing meaningful writes no event and wakes
	// no event waiter, so it goes straight to the backend.
	err = s.b.Write(ctx, func(ctx context.Context, q Querier) error {
		cur, err := scanStatus(q.QueryRow(ctx, `SELECT `+statusColumns+` FROM agent_status WHERE cluster = $1`, st.Cluster))
		if err != nil && !s.b.IsNoRows(err) {
			return err
		}
		if cur != nil && st.Seq <= cur.Seq {
			return fmt.Errorf("seq %d, stored %d: %w", st.Seq, cur.Seq, store.ErrDuplicate)
		}
		if _, err := q.Exec(ctx, `INSERT INTO agent_status (`+statusColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
			ON CONFLICT (cluster) DO UPDATE SET seq = excluded.seq, epoch = excluded.epoch, agent_version = excluded.agent_version,
			kubernetes_version = excluded.kubernetes_version, health = excluded.health, applied_digest = excluded.applied_digest,
			summary = excluded.summary, report = excluded.report, last_heartbeat = excluded.last_heartbeat`,
			st.Cluster, st.Seq, st.Epoch, st.AgentVersion, st.KubernetesVersion, st.Health, st.AppliedDigest,
			string(summary), string(report), st.LastHeartbeat.UnixNano()); err != nil {
			return err
		}
		if cur != nil && bytes.Equal(cur.Summary, summary) {
			return nil
		}
		changed = true
		typ := store.Updated
		if cur == nil {
			typ = store.Created
		}
		return s.logEvent(ctx, q, typ, store.KindAgentStatus, st.Cluster, store.Actor{Kind: store.ActorAgent, Name: st.Cluster},
			json.RawMessage(summary))
	})
	if err != nil {
		return false, fmt.Errorf("record agent status of %s: %w", st.Cluster, err)
	}
	if changed {
		s.wake.broadcast()
	}
	return changed, nil
}

// AgentStatuses implements store.AgentStore.
func (s *Store) AgentStatuses(ctx context.Context, clusters ...string) (map[string]*store.AgentStatus, error) {
	query, args := whereClusterIn(`SELECT `+statusColumns+` FROM agent_status`, clusters)
	rows, err := s.b.Querier().Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("agent statuses: %w", err)
	}
	defer rows.Close()
	out := map[string]*store.AgentStatus{}
	for rows.Next() {
		st, err := scanStatus(rows)
		if err != nil {
			return nil, fmt.Errorf("agent statuses: %w", err)
		}
		out[st.Cluster] = st
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("agent statuses: %w", err)
	}
	return out, nil
}

// whereClusterIn appends "WHERE cluster IN ($1, ...)" for clusters to query, with the arguments;
// no clusters leaves the query unfiltered.
func whereClusterIn(query string, clusters []string) (string, []any) {
	if len(clusters) == 0 {
		return query, nil
	}
	var b strings.Builder
	b.WriteString(query + ` WHERE cluster IN (`)
	args := make([]any, len(clusters))
	for i, c := range clusters {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "$%d", i+1)
		args[i] = c
	}
	b.WriteString(")")
	return b.String(), args
}
