package sqlstore_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"flotilla.dev/flotilla/internal/store"
	"flotilla.dev/flotilla/internal/store/sqlite"
)

// A batch larger than one statement's rows (assign to 450 clusters in three groups of options, then
// remove from all of them) is written and removed completely, its digests are those Desired reads
// back, and the same batch again changes nothing.
func TestSetAssignmentsLargeBatches(t *testing.T) {
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "flotilla.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	by := store.Actor{Kind: "user", Name: "t"}
	const n = 450
	var set, unset []store.Assignment
	for i := range n {
		c := fmt.Sprintf("c%03d", i)
		opts := []byte(`{"prune":true}`)
		switch i % 3 {
		case 0:
			opts = nil
		case 1:
			opts = []byte(`{ }`) // the same as none: Desired reads both back alike
		}
		set = append(set, store.Assignment{Cluster: c, Service: "web", Release: "web-1", Bundle: "sha256:aa", Options: opts},
			store.Assignment{Cluster: c, Service: "api", Release: "api-1", Bundle: "sha256:bb"})
		unset = append(unset, store.Assignment{Cluster: c, Service: "web"})
	}
	out, err := s.SetAssignments(ctx, set, by)
	if err != nil || len(out) != n {
		t.Fatalf("set: %d changed, %v", len(out), err)
	}
	for _, i := range []int{0, 1, 2, 299, n - 1} {
		ds, err := s.Desired(ctx, fmt.Sprintf("c%03d", i))
		if err != nil || len(ds.Assignments) != 2 || ds.Digest != out[i].Digest {
			t.Fatalf("c%03d after set: %+v, %v; want the digest %s", i, ds, err, out[i].Digest)
		}
	}
	if again, err := s.SetAssignments(ctx, set, by); err != nil || len(again) != 0 {
		t.Fatalf("the same batch again changed %d, %v", len(again), err)
	}
	out, err = s.SetAssignments(ctx, unset, by)
	if err != nil || len(out) != n {
		t.Fatalf("unset: %d changed, %v", len(out), err)
	}
	for i := range n {
		ds, err := s.Desired(ctx, fmt.Sprintf("c%03d", i))
		if err != nil || len(ds.Assignments) != 1 || ds.Assignments[0].Service != "api" || ds.Digest != out[i].Digest {
			t.Fatalf("c%03d after unset: %+v, %v", i, ds, err)
		}
	}
}
