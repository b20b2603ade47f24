package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/labels"

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

// TestBatchedWritesStayAllOrNothing races writes that fail part-way (an
// apply whose third object is stale, duplicate creates) against writes that
// succeed, so that they share batch transactions, and checks that every
// failed write left nothing behind and every successful one is whole.
func TestBatchedWritesStayAllOrNothing(t *testing.T) {
	s := open(t, pgtest.NewDatabase(t), postgres.Options{})
	defer s.Close()
	ctx := context.Background()
	by := store.Actor{Kind: store.ActorSystem, Name: "test"}
	base, err := s.Create(ctx, &store.Object{Kind: "Service", Name: "base", Spec: []byte(`{"v":1}`)}, by)
	if err != nil {
		t.Fatal(err)
	}
	stale := base.ResourceVersion
	base.Spec = []byte(`{"v":2}`)
	if _, err := s.Update(ctx, base, by); err != nil {
		t.Fatal(err)
	}
	for round := range 5 {
		const n = 30
		errs := make([]error, n)
		start := make(chan struct{})
		done := make(chan struct{})
		for i := range n {
			go func() {
				defer func() { done <- struct{}{} }()
				<-start
				name := func(p string) string { return fmt.Sprintf("%s-%d-%d", p, round, i) }
				switch i % 3 {
				case 0: // fails on its third object, after two writes
					_, errs[i] = s.Apply(ctx, []*store.Object{
						{Kind: "Cluster", Name: name("bad-a"), Labels: map[string]string{"x": "y"}, Spec: []byte(`{}`)},
						{Kind: "Cluster", Name: name("bad-b"), Spec: []byte(`{}`)},
						{Kind: "Service", Name: "base", ResourceVersion: stale, Spec: []byte(`{"v":9}`)},
					}, by)
				case 1:
					_, errs[i] = s.Apply(ctx, []*store.Object{
						{Kind: "Cluster", Name: name("good-a"), Spec: []byte(`{}`)},
						{Kind: "Cluster", Name: name("good-b"), Spec: []byte(`{}`)},
					}, by)
				default:
					// In the last rounds the creates race for one name and all
					// but one fail in the batch; earlier they all succeed, so
					// the batches commit around the failing applies.
					src := name("src")
					if round >= 3 {
						src = fmt.Sprintf("dup-%d", round)
					}
					_, errs[i] = s.Create(ctx, &store.Object{Kind: "Source", Name: src, Spec: []byte(`{}`)}, by)
				}
			}()
		}
		close(start)
		for range n {
			<-done
		}
		dupWins := 0
		for i, err := range errs {
			switch i % 3 {
			case 0:
				if !errors.Is(err, store.ErrConflict) {
					t.Errorf("round %d writer %d: stale apply: %v, want ErrConflict", round, i, err)
				}
			case 1:
				if err != nil {
					t.Errorf("round %d writer %d: good apply: %v", round, i, err)
				}
			default:
				if err == nil {
					dupWins++
				} else if !errors.Is(err, store.ErrAlreadyExists) {
					t.Errorf("round %d writer %d: duplicate create: %v", round, i, err)
				}
			}
		}
		if want := map[bool]int{true: 1, false: 10}[round >= 3]; dupWins != want {
			t.Errorf("round %d: %d creates won, want %d", round, dupWins, want)
		}
	}
	list, err := s.List(ctx, "Cluster", store.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range list.Items {
		if strings.HasPrefix(o.Name, "bad-") {
			t.Errorf("failed apply left %s behind", o.Name)
		}
	}
	if want := 5 * 10 * 2; len(list.Items) != want {
		t.Errorf("%d clusters, want %d", len(list.Items), want)
	}
	sel, _ := labels.Parse("x=y")
	if l, err := s.List(ctx, "Cluster", store.ListOptions{Selector: sel}); err != nil || len(l.Items) != 0 {
		t.Errorf("labels of failed applies are indexed: %d, %v", len(l.Items), err)
	}
	got, err := s.Get(ctx, "Service", "base")
	if err != nil || string(got.Spec) != `{"v":2}` {
		t.Errorf("base changed: %s, %v", got.Spec, err)
	}
	evs, err := s.Events(ctx, 0, 10000, store.EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if want := 2 + 5*10*2 + 3*10 + 2; len(evs) != want {
		t.Errorf("%d events, want %d", len(evs), want)
	}
	for i, e := range evs {
		if e.Seq != int64(i+1) {
			t.Fatalf("event %d has seq %d", i, e.Seq)
		}
	}
}
