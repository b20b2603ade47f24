package sqlstore

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"

	"flotilla.dev/flotilla/internal/store"
)

// List implements store.Store. Pages are read on one snapshot each; a page
// ends after the name in its continue token, so objects created or deleted
// between pages are seen or missed by name order, never repeated.
func (s *Store) List(ctx context.Context, kind string, opts store.ListOptions) (*store.ObjectList, error) {
	after := ""
	if opts.Continue != "" {
		var err error
		if after, err = decodeContinue(kind, opts.Continue); err != nil {
			return nil, fmt.Errorf("list %s: %w", kind, err)
		}
	}
	if opts.Limit < 0 {
		return nil, fmt.Errorf("list %s: negative limit %d: %w", kind, opts.Limit, store.ErrInvalid)
	}
	out := &store.ObjectList{}
	err := s.b.Read(ctx, func(ctx context.Context, q Querier) error {
		out.Items = nil
		if err := q.QueryRow(ctx, `SELECT value FROM flotilla_seq WHERE id = 1`).Scan(&out.ResourceVersion); err != nil {
			return fmt.Errorf("read sequence: %w", err)
		}
		where, args, exact := selectorSQL(opts.Selector)
		if where != "" {
			broad, err := broadSelector(ctx, q, kind, opts.Selector)
			if err != nil {
				return err
			}
			if broad {
				// Reading every object in name order and filtering in Go
				// beats probing the objects one by one from the label index.
				where, args, exact = "", nil, false
			}
		}
		batch := 0
		if opts.Limit > 0 {
			batch = opts.Limit + 1
		}
		cursor := after
		for {
			query := `SELECT ` + objectColumns + ` FROM objects o WHERE kind = $1 AND name > $2` + where + ` ORDER BY name`
			a := append([]any{kind, cursor}, args...)
			if batch > 0 {
				query += fmt.Sprintf(" LIMIT %d", batch)
			}
			rows, err := q.Query(ctx, query, a...)
			if err != nil {
				return err
			}
			fetched := 0
			for rows.Next() {
				o, err := scanObject(rows)
				if err != nil {
					rows.Close()
					return err
				}
				fetched++
				cursor = o.Name
				if !exact && !opts.Selector.Matches(labels.Set(o.Labels)) {
					continue
				}
				out.Items = append(out.Items, o)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			if batch == 0 || fetched < batch || len(out.Items) > opts.Limit {
				return nil
			}
		}
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", kind, err)
	}
	if opts.Limit > 0 && len(out.Items) > opts.Limit {
		out.Items = out.Items[:opts.Limit]
		out.Continue = encodeContinue(kind, out.Items[opts.Limit-1].Name)
	}
	return out, nil
}

type continueToken struct {
	Kind  string `json:"k"`
	After string `json:"a"`
}

func encodeContinue(kind, after string) string {
	b, _ := json.Marshal(continueToken{kind, after})
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeContinue(kind, token string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(token)
	var t continueToken
	if err == nil {
		err = json.Unmarshal(b, &t)
	}
	if err != nil || t.After == "" {
		return "", fmt.Errorf("malformed continue token: %w", store.ErrInvalid)
	}
	if t.Kind != kind {
		return "", fmt.Errorf("continue token is for kind %q: %w", t.Kind, store.ErrInvalid)
	}
	return t.After, nil
}

// selectorSQL turns the requirements of sel that SQL can answer through the
// labels index into conditions (with parameters from $3 on); exact is false
// when some requirement (Gt, Lt) must still be checked in Go.
func selectorSQL(sel labels.Selector) (where string, args []any, exact bool) {
	if sel == nil || sel.Empty() {
		return "", nil, true
	}
	reqs, selectable := sel.Requirements()
	if !selectable {
		return " AND 1 = 0", nil, true
	}
	exact = true
	var b strings.Builder
	param := func(v string) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args)+2)
	}
	for _, r := range reqs {
		var not bool
		var values []string
		switch r.Operator() {
		case selection.Equals, selection.DoubleEquals, selection.In:
			values = r.ValuesUnsorted()
		case selection.NotEquals, selection.NotIn:
			not, values = true, r.ValuesUnsorted()
		case selection.Exists:
		case selection.DoesNotExist:
			not = true
		default:
			exact = false
			continue
		}
		// A subquery that does not depend on the outer row is evaluated
		// once, through the (kind, key, value) index, and probed per row;
		// a correlated EXISTS leaves SQLite free to pick a plan that scans
		// the labels of the kind for every object.
		b.WriteString(" AND o.name ")
		if not {
			b.WriteString("NOT ")
		}
		b.WriteString("IN (SELECT l.name FROM object_labels l WHERE l.kind = $1 AND l.key = ")
		b.WriteString(param(r.Key()))
		if len(values) > 0 {
			slices.Sort(values)
			b.WriteString(" AND l.value IN (")
			for i, v := range values {
				if i > 0 {
					b.WriteString(", ")
				}
				b.WriteString(param(v))
			}
			b.WriteString(")")
		}
		b.WriteString(")")
	}
	return b.String(), args, exact
}

// broadSelector estimates, from the label index alone, whether sel matches
// more than a quarter of the objects of kind.
func broadSelector(ctx context.Context, q Querier, kind string, sel labels.Selector) (bool, error) {
	reqs, _ := sel.Requirements()
	var bound int64 = -1
	for _, r := range reqs {
		query := `SELECT COUNT(*) FROM object_labels WHERE kind = $1 AND key = $2`
		args := []any{kind, r.Key()}
		switch r.Operator() {
		case selection.Equals, selection.DoubleEquals, selection.In:
			values := r.ValuesUnsorted()
			slices.Sort(values)
			query += " AND value IN ("
			for i, v := range values {
				if i > 0 {
					query += ", "
				}
				args = append(args, v)
				query += fmt.Sprintf("$%d", len(args))
			}
			query += ")"
		case selection.Exists:
		default:
			continue // negative requirements bound nothing
		}
		var n int64
		if err := q.QueryRow(ctx, query, args...).Scan(&n); err != nil {
			return false, fmt.Errorf("estimate selector: %w", err)
		}
		if bound < 0 || n < bound {
			bound = n
		}
	}
	var total int64
	if err := q.QueryRow(ctx, `SELECT COUNT(*) FROM objects WHERE kind = $1`, kind).Scan(&total); err != nil {
		return false, fmt.Errorf("count objects: %w", err)
	}
	if bound < 0 {
		bound = total
	}
	return bound*4 > total, nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
