package postgres_test

import (
	"testing"

	"flotilla.dev/flotilla/internal/store"
	"flotilla.dev/flotilla/internal/store/postgres"
	"flotilla.dev/flotilla/internal/store/postgres/pgtest"
	"flotilla.dev/flotilla/internal/store/storetest"
)

// BenchmarkStore: go test -run '^$' -bench . -benchtime 2s ./internal/store/postgres/
func BenchmarkStore(b *testing.B) {
	storetest.Bench(b, func(b *testing.B) store.Store { return open(b, pgtest.NewDatabase(b), postgres.Options{}) })
}
