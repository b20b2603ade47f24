package apply

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"flotilla.dev/flotilla/internal/testfleet"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

const benchObjects = 1000

// benchConfigMaps returns n ConfigMaps; every changeEvery-th one carries
// generation gen in its data (changeEvery 0: none).
func benchConfigMaps(ns string, gen, changeEvery int) []*unstructured.Unstructured {
	out := make([]*unstructured.Unstructured, benchObjects)
	for i := range out {
		data := map[string]any{"index": fmt.Sprint(i), "payload": "some configuration value of ordinary size"}
		if changeEvery > 0 && i%changeEvery == 0 {
			data["generation"] = fmt.Sprint(gen)
		}
		out[i] = configMap(ns, fmt.Sprintf("cm-%04d", i), data)
	}
	return out
}

func reportRate(b *testing.B) {
	b.ReportMetric(float64(benchObjects*b.N)/b.Elapsed().Seconds(), "objects/s")
}

// applied creates the 1,000 ConfigMaps in a fresh namespace, untimed.
func applied(b *testing.B, f *testfleet.Fleet, e *Engine) Request {
	b.Helper()
	b.StopTimer()
	defer b.StartTimer()
	ns := f.Namespace(b)
	req := Request{Service: ns, Objects: benchConfigMaps(ns, 0, 0)}
	cs, err := e.Apply(ctxT(b), req)
	if err != nil || cs.Err() != nil {
		b.Fatalf("setup apply: %v %v", err, cs.Err())
	}
	return req
}

func mustBench(b *testing.B, cs *ChangeSet, err error, action Action, want int) {
	b.Helper()
	if err != nil {
		b.Fatal(err)
	}
	if err := cs.Err(); err != nil {
		b.Fatal(err)
	}
	if got := cs.Count(action); got != want {
		b.Fatalf("%d objects %s, want %d", got, action, want)
	}
}

// BenchmarkApply measures the engine on 1,000 ConfigMaps in one fleet
// cluster, and kubectl apply --server-side on the same objects.
func BenchmarkApply(b *testing.B) {
	f := testfleet.Get(b)
	c := f.Clusters[0]
	e := newEngine(b, c)

	b.Run("create", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			ns := f.Namespace(b)
			req := Request{Service: ns, Objects: benchConfigMaps(ns, 0, 0)}
			b.StartTimer()
			cs, err := e.Apply(ctxT(b), req)
			mustBench(b, cs, err, Created, benchObjects)
		}
		reportRate(b)
	})
	b.Run("create-qps50", func(b *testing.B) {
		slow, err := New(c.Config, Options{QPS: 50, Burst: 100})
		if err != nil {
			b.Fatal(err)
		}
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			ns := f.Namespace(b)
			req := Request{Service: ns, Objects: benchConfigMaps(ns, 0, 0)}
			b.StartTimer()
			cs, err := slow.Apply(ctxT(b), req)
			mustBench(b, cs, err, Created, benchObjects)
		}
		reportRate(b)
	})
	b.Run("noop", func(b *testing.B) {
		req := applied(b, f, e)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			cs, err := e.Apply(ctxT(b), req)
			mustBench(b, cs, err, Skipped, benchObjects)
		}
		reportRate(b)
	})
	b.Run("drift-check", func(b *testing.B) {
		req := applied(b, f, e)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			rep, err := e.Observe(ctxT(b), req)
			if err != nil {
				b.Fatal(err)
			}
			if d := rep.Drifted(); len(d) != 0 {
				b.Fatalf("%d objects drifted, want none", len(d))
			}
		}
		reportRate(b)
	})
	b.Run("resync", func(b *testing.B) {
		req := applied(b, f, e)
		req.Resync = true
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			cs, err := e.Apply(ctxT(b), req)
			mustBench(b, cs, err, Unchanged, benchObjects)
		}
		reportRate(b)
	})
	b.Run("change-10pct", func(b *testing.B) {
		req := applied(b, f, e)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			req.Objects = benchConfigMaps(req.Service, i+1, 10)
			cs, err := e.Apply(ctxT(b), req)
			mustBench(b, cs, err, Configured, benchObjects/10)
		}
		reportRate(b)
	})
	b.Run("prune", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			req := applied(b, f, e)
			cs, err := e.Apply(ctxT(b), Request{Service: req.Service, Removed: true})
			mustBench(b, cs, err, Deleted, benchObjects)
		}
		reportRate(b)
	})

	// kubectl on the same objects, one file each, in its own namespace.
	kubectl := func(b *testing.B, dir string) {
		b.Helper()
		out, err := exec.Command("/usr/bin/kubectl", "--kubeconfig", c.Kubeconfig, "apply", "--server-side", "--field-manager", "bench", "-f", dir).CombinedOutput()
		if err != nil {
			b.Fatalf("kubectl: %v\n%s", err, out)
		}
	}
	writeDir := func(b *testing.B, ns string) string {
		b.Helper()
		dir := b.TempDir()
		for _, o := range benchConfigMaps(ns, 0, 0) {
			data, err := o.MarshalJSON()
			if err != nil {
				b.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, o.GetName()+".json"), data, 0o644); err != nil {
				b.Fatal(err)
			}
		}
		return dir
	}
	b.Run("kubectl-create", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			dir := writeDir(b, f.Namespace(b))
			b.StartTimer()
			kubectl(b, dir)
		}
		reportRate(b)
	})
	b.Run("kubectl-noop", func(b *testing.B) {
		b.StopTimer()
		dir := writeDir(b, f.Namespace(b))
		kubectl(b, dir)
		b.StartTimer()
		for i := 0; i < b.N; i++ {
			kubectl(b, dir)
		}
		reportRate(b)
	})
}
