package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/labels"

	"flotilla.dev/flotilla/internal/store"
)

// benchSpec is a spec of realistic size (about 400 bytes).
var benchSpec = json.RawMessage(`{"source":{"name":"shop","path":"deploy/web"},"helm":{"valuesFiles":["values.yaml"],` +
	`"values":{"replicas":"{{ .Cluster.Vars.replicas }}","image":{"repository":"registry.example.com/shop/web","tag":"v1.42.0"}}},` +
	`"namespace":"web","placement":{"clusterSelector":{"matchLabels":{"env":"prod"}}},"sync":{"prune":true,"selfHeal":true},` +
	`"strategy":"web-canary","serviceAccountName":"web-deployer"}`)

// benchParallelism times GOMAXPROCS is the number of concurrent writers in
// the parallel write benchmarks, like a server handling many requests.
const benchParallelism = 16

// Bench runs the store benchmarks on a store open returns (fresh per
// benchmark): create, get, update (serial and parallel, reported as
// writes/s or reads/s) and listing 10,000 objects with a selector that
// matches a tenth of them and one that matches all.
func Bench(b *testing.B, open func(b *testing.B) store.Store) {
	ctx := context.Background()
	b.Run("Create", func(b *testing.B) {
		s := open(b)
		defer s.Close()
		b.ResetTimer()
		start := time.Now()
		for i := 0; b.Loop(); i++ {
			if _, err := s.Create(ctx, &store.Object{Kind: "Service", Name: "svc-" + strconv.Itoa(i),
				Labels: map[string]string{"team": "shop"}, Spec: benchSpec}, alice); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "writes/s")
	})
	b.Run("CreateParallel", func(b *testing.B) {
		s := open(b)
		defer s.Close()
		var n atomic.Int64
		b.SetParallelism(benchParallelism)
		b.ResetTimer()
		start := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				i := n.Add(1)
				if _, err := s.Create(ctx, &store.Object{Kind: "Service", Name: "svc-" + strconv.FormatInt(i, 10),
					Labels: map[string]string{"team": "shop"}, Spec: benchSpec}, alice); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "writes/s")
	})
	b.Run("UpdateParallel", func(b *testing.B) {
		s := open(b)
		defer s.Close()
		const objects = 64
		for i := range objects {
			if _, err := s.Create(ctx, &store.Object{Kind: "Service", Name: fmt.Sprintf("u-%02d", i), Spec: benchSpec}, alice); err != nil {
				b.Fatal(err)
			}
		}
		var next atomic.Int64
		b.SetParallelism(benchParallelism)
		b.ResetTimer()
		start := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			// Each goroutine owns some objects, so updates do not conflict.
			name := fmt.Sprintf("u-%02d", next.Add(1)%objects)
			cur, err := s.Get(ctx, "Service", name)
			if err != nil {
				b.Error(err)
				return
			}
			for i := 0; pb.Next(); i++ {
				cur.Spec = json.RawMessage(fmt.Sprintf(`{"n":%d,"name":%q}`, i, name))
				next, err := s.Update(ctx, cur, alice)
				if err != nil {
					b.Error(err)
					return
				}
				cur = next
			}
		})
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "writes/s")
	})
	b.Run("GetParallel", func(b *testing.B) {
		s := open(b)
		defer s.Close()
		for i := range 100 {
			if _, err := s.Create(ctx, &store.Object{Kind: "Service", Name: fmt.Sprintf("g-%03d", i), Spec: benchSpec}, alice); err != nil {
				b.Fatal(err)
			}
		}
		var n atomic.Int64
		b.ResetTimer()
		start := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := s.Get(ctx, "Service", fmt.Sprintf("g-%03d", n.Add(1)%100)); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "reads/s")
	})
	b.Run("List10k", func(b *testing.B) {
		s := open(b)
		defer s.Close()
		const total = 10000
		cases := []struct {
			name, selector string
			want           int
		}{
			{"Selector1in10", "shard=3", 0},
			{"SelectorAll", "env=prod", 0},
			{"SelectorInNotIn", "region in (eu,us),shard notin (0,1)", 0},
			{"NoSelector", "", 0},
		}
		sels := make([]labels.Selector, len(cases))
		for i, c := range cases {
			var err error
			if sels[i], err = labels.Parse(c.selector); err != nil {
				b.Fatal(err)
			}
		}
		batch := make([]*store.Object, 0, 500)
		for i := range total {
			batch = append(batch, &store.Object{Kind: "Cluster", Name: fmt.Sprintf("cluster-%05d", i),
				Labels: map[string]string{"env": "prod", "shard": strconv.Itoa(i % 10), "region": []string{"eu", "us", "ap"}[i%3]},
				Spec:   benchSpec})
			for j := range cases {
				if sels[j].Matches(labels.Set(batch[len(batch)-1].Labels)) {
					cases[j].want++
				}
			}
			if len(batch) == cap(batch) {
				if _, err := s.Apply(ctx, batch, alice); err != nil {
					b.Fatal(err)
				}
				batch = batch[:0]
			}
		}
		for i, c := range cases {
			sel := sels[i]
			b.Run(c.name, func(b *testing.B) {
				for b.Loop() {
					list, err := s.List(ctx, "Cluster", store.ListOptions{Selector: sel})
					if err != nil {
						b.Fatal(err)
					}
					if len(list.Items) != c.want {
						b.Fatalf("listed %d, want %d", len(list.Items), c.want)
					}
				}
			})
		}
	})
}
