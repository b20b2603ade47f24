package server_test

import (
	"context"
	"fmt"
	"testing"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/client"
	"flotilla.dev/flotilla/internal/store"
)

// BenchmarkAPI measures the whole path a client sees: the Go client, HTTP over loopback,
// authentication, validation and a SQLite store in a temporary directory.
func BenchmarkAPI(b *testing.B) {
	ctx := context.Background()
	b.Run("Create", func(b *testing.B) {
		e := newEnv(b)
		b.ResetTimer()
		for i := 0; b.Loop(); i++ {
			if _, err := e.deploy.Create(ctx, cluster(fmt.Sprintf("c%d", i), map[string]string{"env": "prod"})); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Get", func(b *testing.B) {
		e := newEnv(b)
		if _, err := e.deploy.Create(ctx, fleet(b)[v1.KindService]); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for b.Loop() {
			if _, err := e.viewer.Get(ctx, "service", "web"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Update", func(b *testing.B) {
		e := newEnv(b)
		obj, err := e.deploy.Create(ctx, cluster("c", nil))
		if err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for i := 0; b.Loop(); i++ {
			obj.GetMetadata().Labels = map[string]string{"i": fmt.Sprint(i)}
			if obj, err = e.deploy.Update(ctx, obj); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("List100", func(b *testing.B) {
		e := newEnv(b)
		seed(b, e, 100, 1)
		b.ResetTimer()
		for b.Loop() {
			l, err := e.viewer.List(ctx, "clusters", client.ListOptions{})
			if err != nil || len(l.Items) != 100 {
				b.Fatalf("list: %d items, %v", len(l.Items), err)
			}
		}
	})
	b.Run("List100of1000BySelector", func(b *testing.B) {
		e := newEnv(b)
		seed(b, e, 1000, 10)
		b.ResetTimer()
		for b.Loop() {
			objs, err := e.viewer.ListAll(ctx, "clusters", client.ListOptions{LabelSelector: "shard=3"})
			if err != nil || len(objs) != 100 {
				b.Fatalf("list: %d items, %v", len(objs), err)
			}
		}
	})
	b.Run("List1000of10000BySelector", func(b *testing.B) {
		e := newEnv(b)
		seed(b, e, 10000, 10)
		b.ResetTimer()
		for b.Loop() {
			objs, err := e.viewer.ListAll(ctx, "clusters", client.ListOptions{LabelSelector: "shard=3", Limit: 1000})
			if err != nil || len(objs) != 1000 {
				b.Fatalf("list: %d items, %v", len(objs), err)
			}
		}
	})
	b.Run("Apply10", func(b *testing.B) {
		e := newEnv(b)
		b.ResetTimer()
		for i := 0; b.Loop(); i++ {
			batch := make([]v1.Object, 10)
			for j := range batch {
				batch[j] = cluster(fmt.Sprintf("b%d-%d", i, j), nil)
			}
			if _, err := e.deploy.Apply(ctx, batch); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// seed writes n clusters straight to the store, labelled shard=i%shards, in batches.
func seed(b testing.TB, e *env, n, shards int) {
	b.Helper()
	for start := 0; start < n; start += 500 {
		var batch []*store.Object
		for i := start; i < min(n, start+500); i++ {
			batch = append(batch, &store.Object{Kind: v1.KindCluster, Name: fmt.Sprintf("c%05d", i),
				Labels: map[string]string{"shard": fmt.Sprint(i % shards)}, Spec: []byte(`{}`)})
		}
		if _, err := e.store.Apply(context.Background(), batch, store.Actor{Kind: "system", Name: "bench"}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWatchLatency measures how long a change takes to reach a watcher: one create through
// the API, then the wait until its event arrives on an open watch stream.
func BenchmarkWatchLatency(b *testing.B) {
	e := newEnv(b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := make(chan v1.Event, 16)
	go func() {
		_ = e.viewer.Watch(ctx, client.WatchOptions{Kinds: []string{"clusters"}}, func(ev v1.Event) error {
			events <- ev
			return nil
		})
	}()
	for i := 0; b.Loop(); i++ {
		name := fmt.Sprintf("w%d", i)
		if _, err := e.deploy.Create(ctx, cluster(name, nil)); err != nil {
			b.Fatal(err)
		}
		for ev := range events {
			if ev.Name == name {
				break
			}
		}
	}
}
