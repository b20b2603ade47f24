package client

import (
	"net/http"
	"testing"
	"time"

	v1 "flotilla.dev/flotilla/api/v1"
)

func TestBackoffFullJitter(t *testing.T) {
	var ceilings []time.Duration
	b := Backoff{Base: 100 * time.Millisecond, Max: time.Second, Rand: func(n int64) int64 {
		ceilings = append(ceilings, time.Duration(n))
		return n - 1
	}}
	for range 6 {
		b.Next()
	}
	want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, time.Second, time.Second}
	for i := range want {
		if ceilings[i] != want[i] {
			t.Fatalf("ceilings = %v, want %v", ceilings, want)
		}
	}
	b.Reset()
	if b.Next(); ceilings[len(ceilings)-1] != 100*time.Millisecond {
		t.Errorf("after Reset the ceiling is %v, want the base", ceilings[len(ceilings)-1])
	}
	var real Backoff
	for range 100 {
		if d := real.Next(); d < 0 || d >= time.Minute {
			t.Fatalf("default backoff gave %v", d)
		}
	}
}

func TestBackoffHonoursRetryAfter(t *testing.T) {
	err := &APIError{Status: v1.Status{Code: http.StatusTooManyRequests}, RetryAfter: 7 * time.Second}
	b := Backoff{Rand: func(n int64) int64 { return n / 2 }}
	if d := b.Delay(err); d != 7*time.Second+500*time.Millisecond {
		t.Errorf("Delay = %v, want Retry-After plus jitter", d)
	}
	if !IsTooManyRequests(err) || RetryAfter(err) != 7*time.Second {
		t.Errorf("IsTooManyRequests/RetryAfter do not read the error")
	}
	if d := b.Delay(&APIError{Status: v1.Status{Code: 500}}); d >= time.Minute {
		t.Errorf("Delay without Retry-After = %v", d)
	}
}
