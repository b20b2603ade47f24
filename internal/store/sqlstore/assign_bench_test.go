package sqlstore_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"flotilla.dev/flotilla/internal/store"
	"flotilla.dev/flotilla/internal/store/sqlite"
)

// BenchmarkSetAssignments times one SetAssignments call that moves a service of 10,000 clusters
// to another release (the store's part of a fleet-wide assignment), on SQLite.
//
//	go test ./internal/store/sqlstore -run '^$' -bench SetAssignments -benchtime 10x
func BenchmarkSetAssignments(b *testing.B) {
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "flotilla.db"), sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const n = 10000
	by := store.Actor{Kind: "user", Name: "bench"}
	batch := func(release string) []store.Assignment {
		as := make([]store.Assignment, n)
		for i := range as {
			as[i] = store.Assignment{Cluster: fmt.Sprintf("c%05d", i), Service: "web", Release: release,
				Bundle: "sha256:" + fmt.Sprintf("%064x", len(release)), Options: []byte(`{"namespace":"web","prune":true}`)}
		}
		return as
	}
	batches := [][]store.Assignment{batch("web-1"), batch("web-22")}
	if _, err := s.SetAssignments(ctx, batches[0], by); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		out, err := s.SetAssignments(ctx, batches[(i+1)%2], by)
		if err != nil {
			b.Fatal(err)
		}
		if len(out) != n {
			b.Fatalf("changed %d, want %d", len(out), n)
		}
	}
}
