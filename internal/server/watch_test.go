package server_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/client"
)

// collector gathers watch events delivered to a callback.
type collector struct {
	mu  sync.Mutex
	evs []v1.Event
}

func (c *collector) add(ev v1.Event) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.evs = append(c.evs, ev)
	return nil
}

func (c *collector) seqs() []int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]int64, len(c.evs))
	for i, e := range c.evs {
		out[i] = e.Seq
	}
	return out
}

// waitFor polls until the collector holds n events or the deadline passes.
func (c *collector) waitFor(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if len(c.seqs()) >= n {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("got %d events, want %d: %v", len(c.seqs()), n, c.seqs())
}

var watchCount = regexp.MustCompile(`flotilla_http_requests_total\{code="200",route="GET /api/v1/watch"\} (\d+)`)

func seqRange(from, to int64) []int64 {
	var out []int64
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

// TestWatchResumesWithoutGapsOrDuplicates breaks the stream while changes keep coming and checks
// that the client sees every event exactly once, in order, after reconnecting.
func TestWatchResumesWithoutGapsOrDuplicates(t *testing.T) {
	onEveryBackend(t, testWatchResumesWithoutGapsOrDuplicates)
}

func testWatchResumesWithoutGapsOrDuplicates(t *testing.T, newEnv envMaker) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var got collector
	done := make(chan error, 1)
	go func() {
		done <- e.viewer.Watch(ctx, client.WatchOptions{RetryDelay: 20 * time.Millisecond}, got.add)
	}()

	if _, err := e.deploy.Apply(ctx, fleetList(t)); err != nil {
		t.Fatal(err)
	}
	got.waitFor(t, 7)

	// A writer keeps going, through a second listener, while every connection of the watcher's
	// listener is cut, several times.
	other := httptest.NewServer(e.srv.Handler())
	defer other.Close()
	writer, err := client.New(client.Options{Server: other.URL, Token: e.secrets["deployer"]})
	if err != nil {
		t.Fatal(err)
	}
	writes := make(chan error, 1)
	go func() {
		for i := range 40 {
			if _, err := writer.Patch(ctx, "cluster", "prod-eu-1", fmt.Appendf(nil, `{"metadata":{"labels":{"i":"%d"}}}`, i)); err != nil {
				writes <- err
				return
			}
		}
		writes <- nil
	}()
	for range 5 {
		time.Sleep(15 * time.Millisecond)
		e.ts.CloseClientConnections()
	}
	if err := <-writes; err != nil {
		t.Fatalf("writer: %v", err)
	}
	if _, err := e.deploy.Delete(ctx, "service", "web", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	latest, err := e.store.LatestSeq(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The set-up's token events are audit-only: object watches never carry them.
	got.waitFor(t, int(latest-e.baseSeq))
	if diff := cmp.Diff(seqRange(e.baseSeq+1, latest), got.seqs()); diff != "" {
		t.Errorf("event sequence numbers (-want +got):\n%s", diff)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Watch returned %v after cancel, want context.Canceled", err)
	}
	// The stream really was cut and resumed: the server answered several watch requests. A
	// handler finishes after its client has gone, so wait for the count to get there.
	finished := 0
	for deadline := time.Now().Add(10 * time.Second); finished < 2 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		_, metrics := e.raw("GET", "/metrics", "", "", nil)
		if m := watchCount.FindStringSubmatch(string(metrics)); m != nil {
			finished, _ = strconv.Atoi(m[1])
		}
	}
	if finished < 2 {
		t.Errorf("watch requests finished = %d, want several (the connection was cut 5 times)", finished)
	}
	last := got.evs[len(got.evs)-1]
	if last.Type != v1.EventDeleted || last.Kind != v1.KindService || len(last.Object) == 0 {
		t.Errorf("last event = %s %s (object %d bytes), want Deleted Service with its last state", last.Type, last.Kind, len(last.Object))
	}
}

func TestWatchFiltersKindsAndStartsAfter(t *testing.T) {
	onEveryBackend(t, testWatchFiltersKindsAndStartsAfter)
}

func testWatchFiltersKindsAndStartsAfter(t *testing.T, newEnv envMaker) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := e.deploy.Apply(ctx, fleetList(t)); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := e.deploy.Patch(ctx, "svc", "web", fmt.Appendf(nil, `{"metadata":{"labels":{"i":"%d"}}}`, i)); err != nil {
			t.Fatal(err)
		}
	}
	var svc collector
	go func() { _ = e.viewer.Watch(ctx, client.WatchOptions{Kinds: []string{"svc"}, After: 0}, svc.add) }()
	svc.waitFor(t, 4)
	time.Sleep(150 * time.Millisecond) // past a heartbeat: nothing else may arrive
	for _, ev := range svc.evs {
		if ev.Kind != v1.KindService {
			t.Errorf("watch of services delivered a %s", ev.Kind)
		}
	}
	if n := len(svc.seqs()); n != 4 {
		t.Errorf("watch of services delivered %d events, want 4 (created + 3 patches)", n)
	}

	var later collector
	// One event per kind from the apply, then the three patches: start after the first patch.
	first := e.baseSeq + int64(len(v1.Kinds())) + 1
	go func() { _ = e.viewer.Watch(ctx, client.WatchOptions{After: first}, later.add) }()
	later.waitFor(t, 2)
	if diff := cmp.Diff([]int64{first + 1, first + 2}, later.seqs()); diff != "" {
		t.Errorf("watch after the first patch event (-want +got):\n%s", diff)
	}
}

// readSSE opens a raw watch stream and returns the first n non-comment event ids, and whether a
// heartbeat comment was seen.
func readSSE(t *testing.T, e *env, path string, header http.Header, n int) ([]string, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", e.ts.URL+path, nil)
	if header != nil {
		req.Header = header.Clone()
	}
	req.Header.Set("Authorization", "Bearer "+e.secrets["viewer"])
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "text/event-stream" {
		t.Fatalf("watch: %d %s", resp.StatusCode, ct)
	}
	var ids []string
	heartbeat := false
	sc := bufio.NewScanner(resp.Body)
	for (n == 0 || len(ids) < n) && sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, ": heartbeat") {
			heartbeat = true
			if n == 0 {
				break
			}
		}
		if id, ok := strings.CutPrefix(line, "id: "); ok {
			ids = append(ids, id)
		}
	}
	return ids, heartbeat
}

func TestWatchLastEventIDAndHeartbeat(t *testing.T) {
	e := newEnv(t)
	if _, err := e.deploy.Apply(context.Background(), fleetList(t)); err != nil {
		t.Fatal(err)
	}
	ids, _ := readSSE(t, e, "/api/v1/watch?after=1", http.Header{"Last-Event-Id": {"4"}}, 3)
	if diff := cmp.Diff([]string{"5", "6", "7"}, ids); diff != "" {
		t.Errorf("Last-Event-ID 4 must win over after=1 (-want +got):\n%s", diff)
	}
	ids, _ = readSSE(t, e, "/api/v1/watch?after=5", nil, 2)
	if diff := cmp.Diff([]string{"6", "7"}, ids); diff != "" {
		t.Errorf("after=5 (-want +got):\n%s", diff)
	}
	if _, hb := readSSE(t, e, "/api/v1/watch?after=7", nil, 0); !hb {
		t.Error("an idle stream sent no heartbeat")
	}
}

func TestWatchEndsOnShutdown(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", e.ts.URL+"/api/v1/watch", nil)
	req.Header.Set("Authorization", "Bearer "+e.secrets["viewer"])
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	ended := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
		}
		close(ended)
	}()
	e.srv.StopStreams()
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the watch stream did not end after StopStreams")
	}
}
