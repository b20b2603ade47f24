package open_test

import (
	"context"
	"path/filepath"
	"testing"

	"flotilla.dev/flotilla/internal/store"
	"flotilla.dev/flotilla/internal/store/open"
	"flotilla.dev/flotilla/internal/store/postgres/pgtest"
)

func TestParse(t *testing.T) {
	cases := []struct{ dsn, backend, target string }{
		{"", "sqlite", "flotilla.db"},
		{"sqlite:///var/lib/flotilla/f.db", "sqlite", "/var/lib/flotilla/f.db"},
		{"sqlite://data/f.db", "sqlite", "data/f.db"},
		{"sqlite:f.db", "sqlite", "f.db"},
		{"/tmp/x.db", "sqlite", "/tmp/x.db"},
		{"postgres://u@h/db", "postgres", "postgres://u@h/db"},
		{"postgresql://u@h/db", "postgres", "postgresql://u@h/db"},
	}
	for _, c := range cases {
		b, target := open.Parse(c.dsn)
		if b != c.backend || target != c.target {
			t.Errorf("Parse(%q) = %q, %q; want %q, %q", c.dsn, b, target, c.backend, c.target)
		}
	}
	if got, want := open.Describe("postgres://u:secret@h:5432/db"), "postgres postgres://u:xxxxx@h:5432/db"; got != want {
		t.Errorf("Describe = %q, want %q", got, want)
	}
}

// TestOpenBoth opens each backend through a DSN and round-trips an object.
func TestOpenBoth(t *testing.T) {
	dsns := map[string]func(t *testing.T) string{
		"sqlite":   func(t *testing.T) string { return "sqlite://" + filepath.Join(t.TempDir(), "f.db") },
		"bare":     func(t *testing.T) string { return filepath.Join(t.TempDir(), "g.db") },
		"postgres": func(t *testing.T) string { return pgtest.NewDatabase(t) },
	}
	for name, newDSN := range dsns {
		t.Run(name, func(t *testing.T) {
			dsn := newDSN(t)
			ctx := context.Background()
			s, err := open.Open(ctx, dsn)
			if err != nil {
				t.Fatalf("Open(%s): %v", open.Describe(dsn), err)
			}
			defer s.Close()
			if _, err := s.Create(ctx, &store.Object{Kind: "Cluster", Name: "a", Spec: []byte(`{}`)},
				store.Actor{Kind: store.ActorSystem, Name: "test"}); err != nil {
				t.Fatalf("Create: %v", err)
			}
			if _, err := s.Get(ctx, "Cluster", "a"); err != nil {
				t.Fatalf("Get: %v", err)
			}
		})
	}
}
