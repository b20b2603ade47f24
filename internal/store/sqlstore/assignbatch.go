package sqlstore

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	"flotilla.dev/flotilla/internal/store"
)

// A fleet-wide assignment gives thousands of clusters the same few
// (release, bundle, options), so a batch computes each canonical form and
// each desired digest once, and writes rows in statements whose shared
// values are bound once: each row adds only its cluster as a parameter.
// That keeps the number of statements (each prepared anew) and of
// parameters (whose lookup SQLite does by a linear search) small.

// batchMemo caches per batch what many clusters share.
type batchMemo struct {
	canon  map[string][]byte // raw options -> canonical form (nil: none)
	digest map[string]string // desiredKey -> DesiredDigest
}

func newBatchMemo() *batchMemo {
	return &batchMemo{canon: map[string][]byte{}, digest: map[string]string{}}
}

// canonical returns the canonical form of options, nil when empty or not
// JSON (as store.DesiredDigest treats them).
func (m *batchMemo) canonical(raw json.RawMessage) []byte {
	if len(raw) == 0 {
		return nil
	}
	c, ok := m.canon[string(raw)]
	if !ok {
		var err error
		if c, err = store.Canonical(raw); err != nil {
			c = nil
		}
		m.canon[string(raw)] = c
	}
	return c
}

// same reports whether two assignments of one cluster and service agree.
func (m *batchMemo) same(a, b store.Assignment) bool {
	return a.Release == b.Release && a.Bundle == b.Bundle && string(m.canonical(a.Options)) == string(m.canonical(b.Options))
}

// desiredDigest returns store.DesiredDigest of as, sorted by service,
// computing it once per distinct content.
func (m *batchMemo) desiredDigest(as []store.Assignment) string {
	var k strings.Builder
	for _, a := range as {
		k.WriteString(a.Service)
		k.WriteByte(0)
		k.WriteString(a.Release)
		k.WriteByte(0)
		k.WriteString(a.Bundle)
		k.WriteByte(0)
		k.Write(m.canonical(a.Options))
		k.WriteByte('\n')
	}
	d, ok := m.digest[k.String()]
	if !ok {
		d = store.DesiredDigest(as)
		m.digest[k.String()] = d
	}
	return d
}

// changeSpec returns the spec of the Assignments event for out and its
// store.Digest. The spec is written in canonical form (keys sorted, options
// canonical), so its digest is the hash of the spec as is, without the
// decode and re-encode of store.Canonical over megabytes.
func (m *batchMemo) changeSpec(out []store.DesiredState) ([]byte, string, error) {
	type assignment struct {
		Bundle  string          `json:"bundle"`
		Options json.RawMessage `json:"options,omitempty"`
		Release string          `json:"release"`
		Service string          `json:"service"`
	}
	type state struct {
		Assignments []assignment `json:"assignments"`
		Cluster     string       `json:"cluster"`
		Digest      string       `json:"digest"`
	}
	spec := struct {
		Changed []state `json:"changed"`
	}{Changed: make([]state, len(out))}
	for i, ds := range out {
		st := state{Assignments: make([]assignment, len(ds.Assignments)), Cluster: ds.Cluster, Digest: ds.Digest}
		for j, a := range ds.Assignments {
			st.Assignments[j] = assignment{Bundle: a.Bundle, Release: a.Release, Service: a.Service}
			if len(a.Options) > 0 {
				if c := m.canonical(a.Options); c != nil {
					st.Assignments[j].Options = c
				} else {
					st.Assignments[j].Options = a.Options
				}
			}
		}
		spec.Changed[i] = st
	}
	data, err := json.Marshal(spec)
	if err != nil {
		return nil, "", fmt.Errorf("encode assignments event: %w", err)
	}
	// store.Digest of an object without labels or annotations hashes {"spec":<canonical spec>}.
	h := sha256.New()
	h.Write([]byte(`{"spec":`))
	h.Write(data)
	h.Write([]byte(`}`))
	return data, hex.EncodeToString(h.Sum(nil)), nil
}

// sharedRows returns multi-row INSERT statements into table whose rows are
// each one value of keyCol followed by the same shared values of cols;
// suffix ends each statement. Every statement binds the shared values once.
func sharedRows(table, keyCol string, keys []any, cols []string, shared []any, suffix string) []Stmt {
	var out []Stmt
	per := max(1, maxParams-len(shared))
	for start := 0; start < len(keys); start += per {
		part := keys[start:min(start+per, len(keys))]
		var b strings.Builder
		fmt.Fprintf(&b, "INSERT INTO %s (%s, %s) VALUES ", table, keyCol, strings.Join(cols, ", "))
		// The shared values come first, so SQLite finds them early in its parameter list.
		args := append(make([]any, 0, len(shared)+len(part)), shared...)
		var tail strings.Builder
		for j := range shared {
			fmt.Fprintf(&tail, ", $%d", j+1)
		}
		for i, k := range part {
			if i > 0 {
				b.WriteString(", ")
			}
			args = append(args, k)
			fmt.Fprintf(&b, "($%d%s)", len(args), tail.String())
		}
		b.WriteString(suffix)
		out = append(out, Stmt{b.String(), args})
	}
	return out
}

// deleteIn returns statements deleting the rows of table where col equals
// value and keyCol is one of keys.
func deleteIn(table, col string, value any, keyCol string, keys []any) []Stmt {
	var out []Stmt
	for start := 0; start < len(keys); start += chunk {
		part := keys[start:min(start+chunk, len(keys))]
		var b strings.Builder
		fmt.Fprintf(&b, "DELETE FROM %s WHERE %s = $1 AND %s IN (", table, col, keyCol)
		args := append(make([]any, 0, 1+len(part)), value)
		for i, k := range part {
			if i > 0 {
				b.WriteString(", ")
			}
			args = append(args, k)
			fmt.Fprintf(&b, "$%d", len(args))
		}
		b.WriteString(")")
		out = append(out, Stmt{b.String(), args})
	}
	return out
}
