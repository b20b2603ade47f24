package sqlstore

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"

	"flotilla.dev/flotilla/internal/store"
)

// The Assignments event's spec is written canonical so that its digest is a plain hash: it must
// equal store.Digest of the same spec, and decode to the same change.
func TestChangeSpecDigestIsStoreDigest(t *testing.T) {
	out := []store.DesiredState{
		{Cluster: "a", Digest: "sha256:1", Assignments: []store.Assignment{
			{Service: "db", Release: "db-1", Bundle: "sha256:b1", Options: json.RawMessage(`{"z": 1.50, "a": "<&>", "m": {"y": [2, 1], "b": null}}`)},
			{Service: "web", Release: "web-2", Bundle: "sha256:b2"},
			{Service: "x", Release: "x-1", Bundle: "sha256:b3", Options: json.RawMessage(`{}`)},
		}},
		{Cluster: "b<", Digest: "sha256:2", Assignments: []store.Assignment{}},
		{Cluster: "c", Digest: "sha256:3", Assignments: []store.Assignment{{Service: "web", Release: "web-2", Bundle: "sha256:b2",
			Options: json.RawMessage(`{"namespace":"web","prune":true}`)}}},
	}
	data, digest, err := newBatchMemo().changeSpec(out)
	if err != nil {
		t.Fatal(err)
	}
	want, err := store.Digest(&store.Object{Kind: store.KindAssignments, Name: "web", Spec: data})
	if err != nil {
		t.Fatal(err)
	}
	if digest != want {
		t.Errorf("digest %s, store.Digest %s of %s", digest, want, data)
	}
	var got store.AssignmentsChange
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	canon := func(m json.RawMessage) string { c, _ := store.Canonical(m); return string(c) }
	if d := cmp.Diff(out, got.Changed, cmp.Comparer(func(a, b json.RawMessage) bool { return canon(a) == canon(b) })); d != "" {
		t.Errorf("decoded change (-want +got):\n%s", d)
	}
}

// Rows with shared values bind them once per statement, and split so that no statement has more
// than maxParams parameters.
func TestSharedRows(t *testing.T) {
	keys := make([]any, 2*maxParams)
	for i := range keys {
		keys[i] = i
	}
	stmts := sharedRows("t", "k", keys, []string{"a", "b"}, []any{"x", "y"}, " ON CONFLICT DO NOTHING")
	n := 0
	for _, st := range stmts {
		if len(st.Args) > maxParams {
			t.Errorf("%d parameters in one statement", len(st.Args))
		}
		if st.Args[0] != "x" || st.Args[1] != "y" {
			t.Errorf("shared values %v", st.Args[:2])
		}
		n += len(st.Args) - 2
	}
	if n != len(keys) {
		t.Errorf("%d keys written, want %d", n, len(keys))
	}
	if want := "INSERT INTO t (k, a, b) VALUES ($3, $1, $2), ($4, $1, $2)"; stmts[0].SQL[:len(want)] != want {
		t.Errorf("statement %q", stmts[0].SQL[:80])
	}
}
