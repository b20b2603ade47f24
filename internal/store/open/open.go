// Package open picks and opens a store backend from a DSN, so that the
// server's wiring depends on one function rather than on both backends.
//
// Accepted forms: "" (SQLite file flotilla.db in the working directory),
// "sqlite:///abs/path.db", "sqlite://rel/path.db", "sqlite:rel/path.db" or
// a bare path (SQLite); "postgres://..." or "postgresql://..." (PostgreSQL).
package open

import (
	"context"
	"fmt"
	"strings"

	"flotilla.dev/flotilla/internal/store"
	"flotilla.dev/flotilla/internal/store/postgres"
	"flotilla.dev/flotilla/internal/store/sqlite"
)

// DefaultSQLitePath is the database file used when the DSN is empty.
const DefaultSQLitePath = "flotilla.db"

// Open opens the store named by dsn.
func Open(ctx context.Context, dsn string) (store.Store, error) {
	backend, target := Parse(dsn)
	switch backend {
	case "postgres":
		return postgres.Open(ctx, target, postgres.Options{})
	default:
		return sqlite.Open(ctx, target, sqlite.Options{})
	}
}

// Parse says which backend dsn names ("sqlite" or "postgres") and what to
// hand it (a file path or the DSN itself).
func Parse(dsn string) (backend, target string) {
	switch {
	case dsn == "":
		return "sqlite", DefaultSQLitePath
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		return "postgres", dsn
	case strings.HasPrefix(dsn, "sqlite://"):
		return "sqlite", strings.TrimPrefix(dsn, "sqlite://")
	case strings.HasPrefix(dsn, "sqlite:"):
		return "sqlite", strings.TrimPrefix(dsn, "sqlite:")
	default:
		return "sqlite", dsn
	}
}

// Describe renders dsn for logs without a password.
func Describe(dsn string) string {
	backend, target := Parse(dsn)
	if backend == "sqlite" {
		return fmt.Sprintf("sqlite %s", target)
	}
	if at := strings.LastIndex(target, "@"); at > 0 {
		scheme := strings.Index(target, "://") + 3
		userinfo := target[scheme:at]
		if user, _, hasPass := strings.Cut(userinfo, ":"); hasPass {
			return "postgres " + target[:scheme] + user + ":xxxxx" + target[at:]
		}
	}
	return "postgres " + target
}
