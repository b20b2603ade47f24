package testhaproxy

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Backend is a small HTTP server that answers every request with its name
// (and whatever Answer adds) and counts the requests it served.
type Backend struct {
	Name string
	// Addr is host:port, for Server.Addr.
	Addr   string
	served atomic.Int64
	srv    *httptest.Server
}

// StartBackend starts a backend answering "name" (and, when answer is not
// nil, " " + answer()) until the test ends.
func StartBackend(t testing.TB, name string, answer func() string) *Backend {
	t.Helper()
	b := &Backend{Name: name}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.served.Add(1)
		body := name
		if answer != nil {
			body += " " + answer()
		}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, body+"\n")
	}))
	b.Addr = strings.TrimPrefix(b.srv.URL, "http://")
	t.Cleanup(b.srv.Close)
	return b
}

// Served is how many requests the backend answered.
func (b *Backend) Served() int64 { return b.served.Load() }

// Result is one request of a Load.
type Result struct {
	Start, End time.Time
	// Answer is the first word of the body (the backend's name) and Body
	// the whole trimmed body; Err is set instead when the request failed
	// or the status was not 200.
	Answer string
	Body   string
	Err    string
}

// Load sends requests to a URL from a fixed number of workers, each
// waiting for its answer before the next request, until Stop.
type Load struct {
	url     string
	client  *http.Client
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	mu      sync.Mutex
	results []Result
}

// StartLoad starts workers sending GET url. Stop it (the test's cleanup
// does so too).
func StartLoad(t testing.TB, url string, workers int) *Load {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	tr := &http.Transport{MaxIdleConnsPerHost: workers, MaxConnsPerHost: workers, IdleConnTimeout: 30 * time.Second}
	l := &Load{url: url, cancel: cancel, client: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
	for i := 0; i < workers; i++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for ctx.Err() == nil {
				l.one(ctx)
			}
		}()
	}
	t.Cleanup(func() { l.Stop(); tr.CloseIdleConnections() })
	return l
}

func (l *Load) one(ctx context.Context) {
	r := Result{Start: time.Now()}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, l.url, nil)
	if err != nil {
		r.Err = err.Error()
	} else if resp, err := l.client.Do(req); err != nil {
		if ctx.Err() != nil {
			return // stopped, not lost
		}
		r.Err = err.Error()
	} else {
		body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		switch {
		case err != nil && ctx.Err() != nil:
			return
		case err != nil:
			r.Err = err.Error()
		case resp.StatusCode != http.StatusOK:
			r.Err = fmt.Sprintf("status %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
		default:
			r.Body = strings.TrimSpace(string(body))
			r.Answer, _, _ = strings.Cut(r.Body, " ")
		}
	}
	r.End = time.Now()
	l.mu.Lock()
	l.results = append(l.results, r)
	l.mu.Unlock()
}

// Stop ends the load and waits for the workers.
func (l *Load) Stop() {
	l.cancel()
	l.wg.Wait()
}

// Counts summarises the requests of a period.
type Counts struct {
	// Answers counts successful requests by the backend that answered.
	Answers map[string]int
	// Bodies counts successful requests by their whole body.
	Bodies map[string]int
	OK     int
	Errors int
	// FirstErrors holds up to five error messages.
	FirstErrors []string
}

// Share is the percentage of successful answers that came from name.
func (c Counts) Share(name string) float64 {
	if c.OK == 0 {
		return 0
	}
	return 100 * float64(c.Answers[name]) / float64(c.OK)
}

// String renders the counts compactly for failure messages.
func (c Counts) String() string {
	return fmt.Sprintf("ok=%d errors=%d answers=%v first errors=%q", c.OK, c.Errors, c.Answers, c.FirstErrors)
}

// Results returns the finished requests that started at or after from.
func (l *Load) Results(from time.Time) []Result {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Result
	for _, r := range l.results {
		if !r.Start.Before(from) {
			out = append(out, r)
		}
	}
	return out
}

// Since counts the finished requests that started at or after from.
func (l *Load) Since(from time.Time) Counts {
	return l.Between(from, time.Time{})
}

// Between counts the finished requests that started at or after from and
// before until (no upper bound when until is zero).
func (l *Load) Between(from, until time.Time) Counts {
	return l.count(func(r Result) bool {
		return !r.Start.Before(from) && (until.IsZero() || r.Start.Before(until))
	})
}

// EndedBetween counts the requests that started at or after from and were
// answered before until: all of them were routed before until, whatever
// their latency.
func (l *Load) EndedBetween(from, until time.Time) Counts {
	return l.count(func(r Result) bool { return !r.Start.Before(from) && r.End.Before(until) })
}

func (l *Load) count(in func(Result) bool) Counts {
	c := Counts{Answers: map[string]int{}, Bodies: map[string]int{}}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range l.results {
		if !in(r) {
			continue
		}
		if r.Err != "" {
			c.Errors++
			if len(c.FirstErrors) < 5 {
				c.FirstErrors = append(c.FirstErrors, r.Err)
			}
			continue
		}
		c.OK++
		c.Answers[r.Answer]++
		c.Bodies[r.Body]++
	}
	return c
}

// WaitFor waits until at least n requests started at or after from have
// finished, and returns their counts; it fails t after timeout.
func (l *Load) WaitFor(t testing.TB, from time.Time, n int, timeout time.Duration) Counts {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		c := l.Since(from)
		if c.OK+c.Errors >= n {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("load: only %d of %d requests finished in %s (%s)", c.OK+c.Errors, n, timeout, c)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
