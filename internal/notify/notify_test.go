package notify_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"flotilla.dev/flotilla/internal/notify"
	"flotilla.dev/flotilla/internal/traffic/webhook"
)

var sample = notify.Notification{Rollout: "r2", Service: "web", Release: "r2", Phase: "Succeeded",
	Message: "rollout of r2 ended Succeeded", Time: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC),
	DashboardPath: notify.DashboardPath("r2")}

// hook is a test web hook that answers with the statuses given, then 200,
// and keeps what it received.
type hook struct {
	mu       sync.Mutex
	statuses []int
	bodies   [][]byte
	headers  []http.Header
	srv      *httptest.Server
}

func newHook(t *testing.T, statuses ...int) *hook {
	t.Helper()
	h := &hook{statuses: statuses}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body) // the test checks the signature
		h.mu.Lock()
		defer h.mu.Unlock()
		h.bodies = append(h.bodies, body)
		h.headers = append(h.headers, r.Header.Clone())
		code := http.StatusOK
		if len(h.statuses) > 0 {
			code, h.statuses = h.statuses[0], h.statuses[1:]
		}
		w.WriteHeader(code)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hook) received() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.bodies)
}

// start runs a notifier over opts and returns the channel of its delivery
// results.
func start(t *testing.T, opts notify.Options) (*notify.Notifier, <-chan notify.Result) {
	t.Helper()
	results := make(chan notify.Result, 16)
	opts.Report = func(r notify.Result) { results <- r }
	if opts.Backoff == 0 {
		opts.Backoff = 10 * time.Millisecond
	}
	n, err := notify.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); n.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return n, results
}

func wait(t *testing.T, results <-chan notify.Result) notify.Result {
	t.Helper()
	select {
	case r := <-results:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery result after 10s")
		return notify.Result{}
	}
}

func TestSignedJSONBody(t *testing.T) {
	h := newHook(t)
	key := []byte("s3cret")
	n, results := start(t, notify.Options{URLs: []string{h.srv.URL + "/hook/T0KEN"}, Key: key})
	if !n.Notify(sample) {
		t.Fatal("Notify dropped the first notification")
	}
	r := wait(t, results)
	if r.Err != nil || r.Attempts != 1 {
		t.Fatalf("result %+v; want sent at the first attempt", r)
	}
	if strings.Contains(r.Hook, "T0KEN") {
		t.Errorf("result names the hook %q; want its path left out", r.Hook)
	}
	// The traffic webhook's Verify accepts the request as it was sent.
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(string(h.bodies[0])))
	req.Header = h.headers[0]
	body, err := webhook.Verify(req, key, time.Now(), time.Minute)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	var got notify.Notification
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(sample, got); diff != "" {
		t.Errorf("body (-want +got):\n%s", diff)
	}
	req = httptest.NewRequest(http.MethodPost, "/", strings.NewReader(string(h.bodies[0])))
	req.Header = h.headers[0]
	if _, err := webhook.Verify(req, []byte("other"), time.Now(), time.Minute); err == nil {
		t.Error("verify with another key passed; want ErrBadSignature")
	}
}

func TestRetriesServerErrorsThenSends(t *testing.T) {
	h := newHook(t, http.StatusServiceUnavailable, http.StatusServiceUnavailable)
	n, results := start(t, notify.Options{URLs: []string{h.srv.URL}})
	n.Notify(sample)
	r := wait(t, results)
	if r.Err != nil || r.Attempts != 3 || h.received() != 3 {
		t.Fatalf("result %+v after %d requests; want sent at the third attempt", r, h.received())
	}
	if s := n.Stats(); s != (notify.Stats{Sent: 1}) {
		t.Errorf("stats %+v; want one sent", s)
	}
}

func TestGivesUpAfterAttempts(t *testing.T) {
	h := newHook(t, 500, 500, 500, 500)
	n, results := start(t, notify.Options{URLs: []string{h.srv.URL}, Attempts: 3})
	n.Notify(sample)
	r := wait(t, results)
	if r.Err == nil || r.Attempts != 3 || !strings.Contains(r.Err.Error(), "500") {
		t.Fatalf("result %+v; want failed after 3 attempts with the status", r)
	}
}

func TestClientErrorIsNotRetried(t *testing.T) {
	h := newHook(t, http.StatusBadRequest)
	n, results := start(t, notify.Options{URLs: []string{h.srv.URL + "/services/T0KEN"}})
	n.Notify(sample)
	r := wait(t, results)
	if r.Err == nil || r.Attempts != 1 {
		t.Fatalf("result %+v; want failed at the first attempt", r)
	}
	if strings.Contains(r.Err.Error(), "T0KEN") || !strings.Contains(r.Err.Error(), "400") {
		t.Errorf("error %q; want the status, and the hook named without its path", r.Err)
	}
	time.Sleep(50 * time.Millisecond) // a retry would come after 10ms
	if h.received() != 1 {
		t.Errorf("hook received %d requests; want 1", h.received())
	}
	if s := n.Stats(); s != (notify.Stats{Failed: 1}) {
		t.Errorf("stats %+v; want one failed", s)
	}
}

func TestFullQueueDropsAndCounts(t *testing.T) {
	// No sender runs, so the queue only fills.
	n, err := notify.New(notify.Options{URLs: []string{"http://127.0.0.1:1"}, QueueSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	var queued []bool
	for range 4 {
		queued = append(queued, n.Notify(sample))
	}
	if want := []bool{true, true, false, false}; !cmp.Equal(queued, want) {
		t.Errorf("Notify returned %v; want %v", queued, want)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(n)
	// prometheus/testutil would add a module to go.mod; Gather reads the same values.
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "flotilla_notifications_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			got[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
		}
	}
	if want := map[string]float64{"sent": 0, "failed": 0, "dropped": 2}; !cmp.Equal(got, want) {
		t.Errorf("flotilla_notifications_total %v; want %v", got, want)
	}
}

func TestSlackFormat(t *testing.T) {
	h := newHook(t)
	n, results := start(t, notify.Options{URLs: []string{h.srv.URL}, Format: notify.FormatSlack})
	n.Notify(sample)
	if r := wait(t, results); r.Err != nil {
		t.Fatal(r.Err)
	}
	var got map[string]any
	if err := json.Unmarshal(h.bodies[0], &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"text": "Rollout r2 (web to r2) is Succeeded: rollout of r2 ended Succeeded (/ui/rollouts/r2)"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("slack body (-want +got):\n%s", diff)
	}
}

func TestNewRefusesBadOptions(t *testing.T) {
	for name, o := range map[string]notify.Options{
		"no URL":     {},
		"not http":   {URLs: []string{"ftp://x"}},
		"bad format": {URLs: []string{"http://x"}, Format: "xml"},
	} {
		if _, err := notify.New(o); err == nil {
			t.Errorf("%s: New succeeded; want an error", name)
		}
	}
}

func TestUnreachableHookIsRetriedAndNotNamedInFull(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL + "/services/T0KEN"
	srv.Close() // nothing listens there now
	n, results := start(t, notify.Options{URLs: []string{url}, Attempts: 2})
	n.Notify(sample)
	r := wait(t, results)
	if r.Err == nil || r.Attempts != 2 {
		t.Fatalf("result %+v; want failed after 2 attempts", r)
	}
	if strings.Contains(r.Err.Error(), "T0KEN") {
		t.Errorf("error %q names the hook's path; want scheme and host only", r.Err)
	}
}
