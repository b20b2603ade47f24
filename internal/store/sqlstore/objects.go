package sqlstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"

	"flotilla.dev/flotilla/internal/store"
)

const objectColumns = "kind, name, uid, labels, annotations, resource_version, generation, created_at, updated_at, spec, status"

// Create implements store.Store.
func (s *Store) Create(ctx context.Context, obj *store.Object, by store.Actor) (*store.Object, error) {
	if err := checkObject(obj); err != nil {
		return nil, fmt.Errorf("create %s %s: %w", obj.Kind, obj.Name, err)
	}
	if obj.ResourceVersion != 0 {
		return nil, fmt.Errorf("create %s %s: resourceVersion must not be set: %w", obj.Kind, obj.Name, store.ErrInvalid)
	}
	var out *store.Object
	err := s.write(ctx, func(ctx context.Context, q Querier) error {
		seq, err := nextSeq(ctx, q)
		if err != nil {
			return err
		}
		out, err = s.insert(ctx, q, obj, seq, by)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("create %s %s: %w", obj.Kind, obj.Name, err)
	}
	return out, nil
}

// insert writes a new object with version seq and its Created event.
func (s *Store) insert(ctx context.Context, q Querier, obj *store.Object, seq int64, by store.Actor) (*store.Object, error) {
	nanos, now := s.now()
	o := cloneObject(obj)
	o.UID = newUID()
	o.ResourceVersion = seq
	o.Generation = 1
	o.CreatedAt, o.UpdatedAt = now, now
	digest, err := store.Digest(o)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", store.ErrInvalid, err)
	}
	ev := store.Event{Seq: seq, Time: now, Type: store.Created, Kind: o.Kind, Name: o.Name, Actor: by,
		Object: o, DigestAfter: digest}
	evStmt, err := eventStmt(nanos, ev)
	if err != nil {
		return nil, err
	}
	stmts := []Stmt{{`INSERT INTO objects (` + objectColumns + `) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		[]any{o.Kind, o.Name, o.UID, encodeMap(o.Labels), encodeMap(o.Annotations), seq, o.Generation, nanos, nanos,
			string(o.Spec), string(o.Status)}}}
	stmts = append(stmts, labelStmts(o.Kind, o.Name, o.Labels)...)
	stmts = append(stmts, evStmt)
	if err := execAll(ctx, q, stmts...); err != nil {
		if s.b.IsUniqueViolation(err) {
			return nil, store.ErrAlreadyExists
		}
		return nil, err
	}
	return o, nil
}

// Get implements store.Store.
func (s *Store) Get(ctx context.Context, kind, name string) (*store.Object, error) {
	o, err := s.get(ctx, s.b.Querier(), kind, name)
	if err != nil {
		return nil, fmt.Errorf("get %s %s: %w", kind, name, err)
	}
	return o, nil
}

func (s *Store) get(ctx context.Context, q Querier, kind, name string) (*store.Object, error) {
	row := q.QueryRow(ctx, `SELECT `+objectColumns+` FROM objects WHERE kind = $1 AND name = $2`, kind, name)
	o, err := scanObject(row)
	if err != nil {
		if s.b.IsNoRows(err) {
			return nil, store.ErrNotFound
		}
		return nil, err
	}
	return o, nil
}

// Update implements store.Store.
func (s *Store) Update(ctx context.Context, obj *store.Object, by store.Actor) (*store.Object, error) {
	return s.updateChecked(ctx, "update", obj, func(ctx context.Context, q Querier, cur *store.Object, seq int64) (*store.Object, error) {
		return s.replace(ctx, q, cur, obj, seq, by)
	})
}

// updateChecked runs change on the stored object under the sequence lock,
// once obj's resourceVersion is known to match it. change returns the new
// object, or the stored one and errNoChange when there is nothing to write.
func (s *Store) updateChecked(ctx context.Context, what string, obj *store.Object,
	change func(ctx context.Context, q Querier, cur *store.Object, seq int64) (*store.Object, error)) (*store.Object, error) {
	if err := checkObject(obj); err != nil {
		return nil, fmt.Errorf("%s %s %s: %w", what, obj.Kind, obj.Name, err)
	}
	var out *store.Object
	err := s.write(ctx, func(ctx context.Context, q Querier) error {
		seq, err := nextSeq(ctx, q)
		if err != nil {
			return err
		}
		cur, err := s.get(ctx, q, obj.Kind, obj.Name)
		if err != nil {
			return err
		}
		if cur.ResourceVersion != obj.ResourceVersion {
			return fmt.Errorf("have resourceVersion %d, stored %d: %w", obj.ResourceVersion, cur.ResourceVersion, store.ErrConflict)
		}
		out, err = change(ctx, q, cur, seq)
		return err
	})
	if errors.Is(err, errNoChange) {
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s %s %s: %w", what, obj.Kind, obj.Name, err)
	}
	return out, nil
}

// replace writes obj's labels, annotations and spec over cur with version
// seq, or returns (cur, errNoChange) when they are equal.
func (s *Store) replace(ctx context.Context, q Querier, cur, obj *store.Object, seq int64, by store.Actor) (*store.Object, error) {
	before, err := store.Digest(cur)
	if err != nil {
		return nil, err
	}
	after, err := store.Digest(obj)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", store.ErrInvalid, err)
	}
	if before == after {
		return cur, errNoChange
	}
	nanos, now := s.now()
	o := cloneObject(cur)
	o.Labels, o.Annotations = cloneMap(obj.Labels), cloneMap(obj.Annotations)
	o.Spec = bytes.Clone(obj.Spec)
	o.Generation++
	o.ResourceVersion = seq
	o.UpdatedAt = now
	// The caller holds the sequence lock and read cur under it, so the row
	// is there and unchanged.
	stmts := []Stmt{{`UPDATE objects SET labels = $3, annotations = $4, spec = $5, resource_version = $6,
		generation = $7, updated_at = $8 WHERE kind = $1 AND name = $2`,
		[]any{o.Kind, o.Name, encodeMap(o.Labels), encodeMap(o.Annotations), string(o.Spec), seq, o.Generation, nanos}}}
	if !maps.Equal(cur.Labels, o.Labels) {
		stmts = append(stmts, Stmt{`DELETE FROM object_labels WHERE kind = $1 AND name = $2`, []any{o.Kind, o.Name}})
		stmts = append(stmts, labelStmts(o.Kind, o.Name, o.Labels)...)
	}
	ev := store.Event{Seq: seq, Time: now, Type: store.Updated, Kind: o.Kind, Name: o.Name, Actor: by,
		Object: o, DigestBefore: before, DigestAfter: after}
	evStmt, err := eventStmt(nanos, ev)
	if err != nil {
		return nil, err
	}
	if err := execAll(ctx, q, append(stmts, evStmt)...); err != nil {
		return nil, err
	}
	return o, nil
}

// UpdateStatus implements store.Store.
func (s *Store) UpdateStatus(ctx context.Context, obj *store.Object, by store.Actor) (*store.Object, error) {
	return s.updateChecked(ctx, "update status of", obj, func(ctx context.Context, q Querier, cur *store.Object, seq int64) (*store.Object, error) {
		was, _ := store.Canonical(cur.Status)
		now, _ := store.Canonical(obj.Status)
		if bytes.Equal(was, now) {
			return cur, errNoChange
		}
		digest, err := store.Digest(cur)
		if err != nil {
			return nil, err
		}
		nanos, t := s.now()
		o := cloneObject(cur)
		o.Status = bytes.Clone(obj.Status)
		o.ResourceVersion = seq
		o.UpdatedAt = t
		ev := store.Event{Seq: seq, Time: t, Type: store.StatusUpdated, Kind: o.Kind, Name: o.Name, Actor: by,
			Object: o, DigestBefore: digest, DigestAfter: digest}
		evStmt, err := eventStmt(nanos, ev)
		if err != nil {
			return nil, err
		}
		if err := execAll(ctx, q, Stmt{`UPDATE objects SET status = $3, resource_version = $4, updated_at = $5
			WHERE kind = $1 AND name = $2`, []any{o.Kind, o.Name, string(o.Status), seq, nanos}}, evStmt); err != nil {
			return nil, err
		}
		return o, nil
	})
}

// Delete implements store.Store.
func (s *Store) Delete(ctx context.Context, kind, name string, resourceVersion int64, by store.Actor) (*store.Object, error) {
	var out *store.Object
	err := s.write(ctx, func(ctx context.Context, q Querier) error {
		seq, err := nextSeq(ctx, q)
		if err != nil {
			return err
		}
		cur, err := s.get(ctx, q, kind, name)
		if err != nil {
			return err
		}
		if resourceVersion != 0 && cur.ResourceVersion != resourceVersion {
			return fmt.Errorf("have resourceVersion %d, stored %d: %w", resourceVersion, cur.ResourceVersion, store.ErrConflict)
		}
		digest, err := store.Digest(cur)
		if err != nil {
			return err
		}
		nanos, now := s.now()
		ev := store.Event{Seq: seq, Time: now, Type: store.Deleted, Kind: kind, Name: name, Actor: by,
			Object: cur, DigestBefore: digest}
		evStmt, err := eventStmt(nanos, ev)
		if err != nil {
			return err
		}
		if err := execAll(ctx, q,
			Stmt{`DELETE FROM objects WHERE kind = $1 AND name = $2`, []any{kind, name}},
			Stmt{`DELETE FROM object_labels WHERE kind = $1 AND name = $2`, []any{kind, name}},
			evStmt); err != nil {
			return err
		}
		out = cur
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("delete %s %s: %w", kind, name, err)
	}
	return out, nil
}

// Apply implements store.Store.
func (s *Store) Apply(ctx context.Context, objs []*store.Object, by store.Actor) ([]store.ApplyResult, error) {
	seen := make(map[[2]string]int, len(objs))
	for i, o := range objs {
		if err := checkObject(o); err != nil {
			return nil, fmt.Errorf("apply: item %d (%s %s): %w", i, o.Kind, o.Name, err)
		}
		k := [2]string{o.Kind, o.Name}
		if j, dup := seen[k]; dup {
			return nil, fmt.Errorf("apply: item %d (%s %s) repeats item %d: %w", i, o.Kind, o.Name, j, store.ErrInvalid)
		}
		seen[k] = i
	}
	var results []store.ApplyResult
	err := s.write(ctx, func(ctx context.Context, q Querier) error {
		results = make([]store.ApplyResult, 0, len(objs))
		last, err := currentSeq(ctx, q)
		if err != nil {
			return err
		}
		first := last
		for i, o := range objs {
			cur, err := s.get(ctx, q, o.Kind, o.Name)
			switch {
			case err == store.ErrNotFound:
				if o.ResourceVersion != 0 {
					return fmt.Errorf("item %d (%s %s): have resourceVersion %d, object does not exist: %w",
						i, o.Kind, o.Name, o.ResourceVersion, store.ErrConflict)
				}
				created, err := s.insert(ctx, q, o, last+1, by)
				if err != nil {
					return fmt.Errorf("item %d (%s %s): %w", i, o.Kind, o.Name, err)
				}
				last++
				results = append(results, store.ApplyResult{Object: created, Action: store.ActionCreated})
			case err != nil:
				return fmt.Errorf("item %d (%s %s): %w", i, o.Kind, o.Name, err)
			default:
				if o.ResourceVersion != 0 && o.ResourceVersion != cur.ResourceVersion {
					return fmt.Errorf("item %d (%s %s): have resourceVersion %d, stored %d: %w",
						i, o.Kind, o.Name, o.ResourceVersion, cur.ResourceVersion, store.ErrConflict)
				}
				updated, err := s.replace(ctx, q, cur, o, last+1, by)
				switch {
				case err == errNoChange:
					results = append(results, store.ApplyResult{Object: cur, Action: store.ActionUnchanged})
				case err != nil:
					return fmt.Errorf("item %d (%s %s): %w", i, o.Kind, o.Name, err)
				default:
					last++
					results = append(results, store.ApplyResult{Object: updated, Action: store.ActionUpdated})
				}
			}
		}
		if last == first {
			return errNoChange
		}
		return setSeq(ctx, q, last)
	})
	if err != nil && err != errNoChange {
		return nil, fmt.Errorf("apply: %w", err)
	}
	return results, nil
}

// SeqCounter is implemented by queriers of a transaction that already holds
// the sequence lock and keeps the sequence in memory until it commits
// (PostgreSQL's batched writes); it saves a round trip per write.
type SeqCounter interface {
	Seq() int64
	SetSeq(v int64)
}

// nextSeq increments the sequence and returns the new value; on PostgreSQL
// the row lock it takes serialises writers until commit.
func nextSeq(ctx context.Context, q Querier) (int64, error) {
	if c, ok := q.(SeqCounter); ok {
		c.SetSeq(c.Seq() + 1)
		return c.Seq(), nil
	}
	var seq int64
	if err := q.QueryRow(ctx, `UPDATE flotilla_seq SET value = value + 1 WHERE id = 1 RETURNING value`).Scan(&seq); err != nil {
		return 0, fmt.Errorf("next sequence number: %w", err)
	}
	return seq, nil
}

// currentSeq takes the sequence lock and returns the current value.
func currentSeq(ctx context.Context, q Querier) (int64, error) {
	if c, ok := q.(SeqCounter); ok {
		return c.Seq(), nil
	}
	var seq int64
	if err := q.QueryRow(ctx, `UPDATE flotilla_seq SET value = value WHERE id = 1 RETURNING value`).Scan(&seq); err != nil {
		return 0, fmt.Errorf("lock sequence: %w", err)
	}
	return seq, nil
}

// setSeq stores the sequence's new value.
func setSeq(ctx context.Context, q Querier, v int64) error {
	if c, ok := q.(SeqCounter); ok {
		c.SetSeq(v)
		return nil
	}
	if _, err := q.Exec(ctx, `UPDATE flotilla_seq SET value = $1 WHERE id = 1`, v); err != nil {
		return fmt.Errorf("store sequence: %w", err)
	}
	return nil
}

// checkObject rejects what no store can hold.
func checkObject(o *store.Object) error {
	switch {
	case o == nil:
		return fmt.Errorf("nil object: %w", store.ErrInvalid)
	case o.Kind == "":
		return fmt.Errorf("kind is required: %w", store.ErrInvalid)
	case o.Name == "":
		return fmt.Errorf("name is required: %w", store.ErrInvalid)
	case len(o.Spec) > 0 && !json.Valid(o.Spec):
		return fmt.Errorf("spec is not JSON: %w", store.ErrInvalid)
	case len(o.Status) > 0 && !json.Valid(o.Status):
		return fmt.Errorf("status is not JSON: %w", store.ErrInvalid)
	}
	return nil
}

// labelStmts returns the statement that indexes an object's labels, if any.
func labelStmts(kind, name string, labels map[string]string) []Stmt {
	if len(labels) == 0 {
		return nil
	}
	var b bytes.Buffer
	b.WriteString(`INSERT INTO object_labels (kind, name, key, value) VALUES `)
	args := []any{kind, name}
	for i, k := range sortedKeys(labels) {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "($1, $2, $%d, $%d)", len(args)+1, len(args)+2)
		args = append(args, k, labels[k])
	}
	return []Stmt{{b.String(), args}}
}

type rowScanner interface{ Scan(dest ...any) error }

func scanObject(r rowScanner) (*store.Object, error) {
	var (
		o                          store.Object
		labels, annotations        []byte
		spec, status               []byte
		createdNanos, updatedNanos int64
	)
	if err := r.Scan(&o.Kind, &o.Name, &o.UID, &labels, &annotations, &o.ResourceVersion, &o.Generation,
		&createdNanos, &updatedNanos, &spec, &status); err != nil {
		return nil, err
	}
	var err error
	if o.Labels, err = decodeMap(labels); err != nil {
		return nil, fmt.Errorf("%s %s: labels: %w", o.Kind, o.Name, err)
	}
	if o.Annotations, err = decodeMap(annotations); err != nil {
		return nil, fmt.Errorf("%s %s: annotations: %w", o.Kind, o.Name, err)
	}
	o.CreatedAt, o.UpdatedAt = fromNanos(createdNanos), fromNanos(updatedNanos)
	if len(spec) > 0 {
		o.Spec = json.RawMessage(spec)
	}
	if len(status) > 0 {
		o.Status = json.RawMessage(status)
	}
	return &o, nil
}

func encodeMap(m map[string]string) string {
	if len(m) == 0 {
		return "{}"
	}
	b, _ := json.Marshal(m) // a map of strings always encodes
	return string(b)
}

// decodeMap reads what encodeMap wrote. Listing decodes a map per object,
// so the common case (no escapes) is parsed by hand; anything else goes to
// encoding/json.
func decodeMap(b []byte) (map[string]string, error) {
	if len(b) == 0 || string(b) == "{}" {
		return nil, nil
	}
	if m, ok := decodeFlatMap(b); ok {
		return m, nil
	}
	var m map[string]string
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	if len(m) == 0 {
		return nil, nil
	}
	return m, nil
}

// decodeFlatMap parses {"k":"v",...} whose strings hold no escapes; ok is
// false for anything else.
func decodeFlatMap(b []byte) (map[string]string, bool) {
	if len(b) < 2 || b[0] != '{' || b[len(b)-1] != '}' {
		return nil, false
	}
	m := make(map[string]string, bytes.Count(b, []byte{','})+1)
	i := 1
	str := func() (string, bool) {
		if i >= len(b) || b[i] != '"' {
			return "", false
		}
		end := bytes.IndexByte(b[i+1:], '"')
		if end < 0 {
			return "", false
		}
		s := b[i+1 : i+1+end]
		if bytes.IndexByte(s, '\\') >= 0 {
			return "", false
		}
		i += end + 2
		return string(s), true
	}
	for {
		k, ok := str()
		if !ok || i >= len(b) || b[i] != ':' {
			return nil, false
		}
		i++
		v, ok := str()
		if !ok || i >= len(b) {
			return nil, false
		}
		m[k] = v
		switch b[i] {
		case ',':
			i++
		case '}':
			if i != len(b)-1 {
				return nil, false
			}
			return m, true
		default:
			return nil, false
		}
	}
}

func cloneMap(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return maps.Clone(m)
}

func cloneObject(o *store.Object) *store.Object {
	c := *o
	c.Labels = cloneMap(o.Labels)
	c.Annotations = cloneMap(o.Annotations)
	c.Spec = bytes.Clone(o.Spec)
	c.Status = bytes.Clone(o.Status)
	return &c
}
