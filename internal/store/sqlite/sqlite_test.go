package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"flotilla.dev/flotilla/internal/store"
	"flotilla.dev/flotilla/internal/store/sqlite"
	"flotilla.dev/flotilla/internal/store/storetest"
)

func openTemp(t testing.TB) store.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "flotilla.db"), sqlite.Options{})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openTemp(t) })
}
