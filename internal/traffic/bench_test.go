package traffic_test

import (
	"context"
	"slices"
	"testing"
	"time"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/internal/testhaproxy"
)

// BenchmarkSetWeightsHAProxy measures one blue/green switch through the
// Manager: read the router and both clusters from SQLite, set both servers
// (weight and state), read the weights back and record the router status.
func BenchmarkSetWeightsHAProxy(b *testing.B) {
	f := newFleet(b)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		p := 100 * (i % 2)
		if _, err := f.m.SetWeights(ctx, "edge", []v1.TrafficWeight{tw("eu-1", p), tw("us-1", 100-p)}); err != nil {
			b.Fatal(err)
		}
	}
}

// TestSwitchUnderLoadMeasured switches all traffic between two clusters
// 20 times under steady load through a real HAProxy and checks that no
// request is lost and that, once SetWeights returns, every new request
// goes to the new side. It logs how long SetWeights took and how soon the
// first request reached the new side (docs/performance.md).
func TestSwitchUnderLoadMeasured(t *testing.T) {
	f := newFleet(t)
	ctx := context.Background()
	if _, err := f.m.SetWeights(ctx, "edge", []v1.TrafficWeight{tw("eu-1", 100), tw("us-1", 0)}); err != nil {
		t.Fatal(err)
	}
	load := testhaproxy.StartLoad(t, f.hap.URL, 8)
	begin := time.Now()
	load.WaitFor(t, begin, 300, time.Minute)
	var calls, firsts []time.Duration
	for i := 0; i < 20; i++ {
		to, other := "us-1", "eu-1"
		if i%2 == 1 {
			to, other = "eu-1", "us-1"
		}
		start := time.Now()
		if _, err := f.m.SetWeights(ctx, "edge", []v1.TrafficWeight{tw(to, 100), tw(other, 0)}); err != nil {
			t.Fatal(err)
		}
		done := time.Now()
		calls = append(calls, done.Sub(start))
		c := load.WaitFor(t, done, 200, time.Minute)
		if c.Answers[to] != c.OK || c.Errors != 0 {
			t.Fatalf("switch %d to %s: requests started after SetWeights returned: %s", i, to, c)
		}
		firsts = append(firsts, firstAnswer(load, to, start).Sub(start))
	}
	load.Stop()
	all := load.Since(begin)
	if all.Errors != 0 {
		t.Fatalf("requests lost over 20 switches: %s", all)
	}
	t.Logf("20 switches under load: %d requests, %d lost; SetWeights median %s max %s; first request on the new side after median %s max %s",
		all.OK, all.Errors, median(calls), slices.Max(calls), median(firsts), slices.Max(firsts))
}

// firstAnswer is the end time of the first request started after from that
// name answered.
func firstAnswer(l *testhaproxy.Load, name string, from time.Time) time.Time {
	first := time.Time{}
	for _, r := range l.Results(from) {
		if r.Answer == name && (first.IsZero() || r.End.Before(first)) {
			first = r.End
		}
	}
	return first
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}
