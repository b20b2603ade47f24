package sqlstore

import (
	"context"
	"fmt"

	"flotilla.dev/flotilla/internal/store"
)

const tokenColumns = "id, name, hash, role, created_at, expires_at, created_by"

// CreateToken implements store.Store.
func (s *Store) CreateToken(ctx context.Context, t store.Token, by store.Actor) error {
	if t.ID == "" || t.Hash == "" || t.Role == "" {
		return fmt.Errorf("create token %q: id, hash and role are required: %w", t.ID, store.ErrInvalid)
	}
	created := t.CreatedAt
	if created.IsZero() {
		_, created = s.now()
	}
	var expires *int64
	if t.ExpiresAt != nil {
		n := t.ExpiresAt.UnixNano()
		expires = &n
	}
	err := s.write(ctx, func(ctx context.Context, q Querier) error {
		if _, err := q.Exec(ctx, `INSERT INTO tokens (`+tokenColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			t.ID, t.Name, t.Hash, t.Role, created.UnixNano(), expires, t.CreatedBy); err != nil {
			if s.b.IsUniqueViolation(err) {
				return store.ErrAlreadyExists
			}
			return err
		}
		return s.logEvent(ctx, q, store.Created, store.KindToken, t.Name, by, tokenEventSpec(t))
	})
	if err != nil {
		return fmt.Errorf("create token %q: %w", t.ID, err)
	}
	return nil
}

// tokenEventSpec is what the audit trail shows of a token: never its hash.
func tokenEventSpec(t store.Token) map[string]any {
	spec := map[string]any{"id": t.ID, "role": t.Role}
	if t.ExpiresAt != nil {
		spec["expiresAt"] = t.ExpiresAt.UTC()
	}
	return spec
}

func scanToken(r rowScanner) (*store.Token, error) {
	var (
		t       store.Token
		created int64
		expires *int64
	)
	if err := r.Scan(&t.ID, &t.Name, &t.Hash, &t.Role, &created, &expires, &t.CreatedBy); err != nil {
		return nil, err
	}
	t.CreatedAt = fromNanos(created)
	if expires != nil {
		e := fromNanos(*expires)
		t.ExpiresAt = &e
	}
	return &t, nil
}

// TokenByHash implements store.Store.
func (s *Store) TokenByHash(ctx context.Context, hash string) (*store.Token, error) {
	t, err := scanToken(s.b.Querier().QueryRow(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE hash = $1`, hash))
	if err != nil {
		if s.b.IsNoRows(err) {
			return nil, fmt.Errorf("token by hash: %w", store.ErrNotFound)
		}
		return nil, fmt.Errorf("token by hash: %w", err)
	}
	return t, nil
}

// ListTokens implements store.Store.
func (s *Store) ListTokens(ctx context.Context) ([]store.Token, error) {
	rows, err := s.b.Querier().Query(ctx, `SELECT `+tokenColumns+` FROM tokens ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	defer rows.Close()
	var out []store.Token
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, fmt.Errorf("list tokens: %w", err)
		}
		out = append(out, *t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	return out, nil
}

// DeleteToken implements store.Store.
func (s *Store) DeleteToken(ctx context.Context, id string, by store.Actor) error {
	err := s.write(ctx, func(ctx context.Context, q Querier) error {
		t, err := scanToken(q.QueryRow(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE id = $1`, id))
		if err != nil {
			if s.b.IsNoRows(err) {
				return store.ErrNotFound
			}
			return err
		}
		if _, err := q.Exec(ctx, `DELETE FROM tokens WHERE id = $1`, id); err != nil {
			return err
		}
		return s.logEvent(ctx, q, store.Deleted, store.KindToken, t.Name, by, tokenEventSpec(*t))
	})
	if err != nil {
		return fmt.Errorf("delete token %q: %w", id, err)
	}
	return nil
}
