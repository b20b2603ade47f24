package testprom_test

import (
	"context"
	"math"
	"testing"
	"time"

	"flotilla.dev/flotilla/internal/testprom"
)

// TestErrorRateReachesPrometheus checks the harness end to end: the error
// rate set for a cluster comes back from a real Prometheus through the
// ratio query the analysis templates use, and a gauge set by the test is
// scraped as is.
func TestErrorRateReachesPrometheus(t *testing.T) {
	p := testprom.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	p.SetErrorRate("eu-1", 0.25)
	p.SetErrorRate("us-1", 0)
	p.SetGauge("queue_depth", map[string]string{"cluster": "eu-1"}, 42)
	if err := p.WaitForScrapes(ctx, 4); err != nil {
		t.Fatal(err)
	}
	ratio := func(c string) float64 {
		t.Helper()
		v, err := p.Query(ctx, `sum(rate(http_requests_total{cluster="`+c+`",code=~"5.."}[5s])) / sum(rate(http_requests_total{cluster="`+c+`"}[5s]))`)
		if err != nil {
			t.Fatal(err)
		}
		if len(v) != 1 {
			t.Fatalf("error ratio of %s: got %d samples %v, want 1", c, len(v), v)
		}
		return v[0]
	}
	if got := ratio("eu-1"); math.Abs(got-0.25) > 0.01 {
		t.Errorf("error ratio of eu-1 = %v, want 0.25", got)
	}
	if got := ratio("us-1"); got != 0 {
		t.Errorf("error ratio of us-1 = %v, want 0", got)
	}
	v, err := p.Query(ctx, `queue_depth{cluster="eu-1"}`)
	if err != nil || len(v) != 1 || v[0] != 42 {
		t.Errorf("queue_depth = %v, %v; want [42]", v, err)
	}
	v, err = p.Query(ctx, `flotilla_test_error_rate{cluster="eu-1"}`)
	if err != nil || len(v) != 1 || v[0] != 0.25 {
		t.Errorf("flotilla_test_error_rate = %v, %v; want [0.25]", v, err)
	}
	// Raising the rate shows within a window of scrapes.
	p.SetErrorRate("us-1", 0.5)
	if err := p.WaitForScrapes(ctx, 7); err != nil {
		t.Fatal(err)
	}
	if got := ratio("us-1"); math.Abs(got-0.5) > 0.01 {
		t.Errorf("error ratio of us-1 after raising = %v, want 0.5", got)
	}
}
