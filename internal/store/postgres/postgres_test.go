package postgres_test

import (
	"context"
	"testing"
	"time"

	"flotilla.dev/flotilla/internal/store"
	"flotilla.dev/flotilla/internal/store/postgres"
	"flotilla.dev/flotilla/internal/store/postgres/pgtest"
	"flotilla.dev/flotilla/internal/store/sqlstore"
	"flotilla.dev/flotilla/internal/store/storetest"
)

func open(t testing.TB, dsn string, opts postgres.Options) store.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := postgres.Open(ctx, dsn, opts)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return open(t, pgtest.NewDatabase(t), postgres.Options{})
	})
}

// TestWaitForEventAcrossReplicas checks that a write through one store wakes
// WaitForEvent on another store on the same database through LISTEN/NOTIFY,
// well before the (here one minute) poll fallback.
func TestWaitForEventAcrossReplicas(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	slow := postgres.Options{Store: sqlstore.Options{PollInterval: time.Minute}}
	a := open(t, dsn, slow)
	defer a.Close()
	b := open(t, dsn, slow)
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range 3 {
		after, err := a.LatestSeq(ctx)
		if err != nil {
			t.Fatal(err)
		}
		woke := make(chan error, 1)
		go func() { woke <- a.WaitForEvent(ctx, after) }()
		time.Sleep(50 * time.Millisecond)
		start := time.Now()
		if _, err := b.Create(ctx, &store.Object{Kind: "Cluster", Name: "c" + string(rune('a'+i)), Spec: []byte(`{}`)},
			store.Actor{Kind: store.ActorSystem, Name: "test"}); err != nil {
			t.Fatalf("Create on replica b: %v", err)
		}
		select {
		case err := <-woke:
			if err != nil {
				t.Fatalf("WaitForEvent on replica a: %v", err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("replica a woke after %v", d)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: replica a did not wake within 10s of a write on replica b", i)
		}
	}
}

func TestMigrateTwiceAndConcurrently(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			s, err := postgres.Open(context.Background(), dsn, postgres.Options{})
			if err == nil {
				err = s.Close()
			}
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Errorf("concurrent open: %v", err)
		}
	}
}
