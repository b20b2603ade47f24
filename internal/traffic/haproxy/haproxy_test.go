package haproxy_test

import (
	"context"
	"errors"
	"math"
	"net"
	"strings"
	"testing"
	"time"

	"flotilla.dev/flotilla/internal/testhaproxy"
	"flotilla.dev/flotilla/internal/traffic/haproxy"
	"flotilla.dev/flotilla/internal/traffic/providertest"
)

// fixture is a real HAProxy in front of backends a and b.
type fixture struct {
	hap  *testhaproxy.HAProxy
	a, b *testhaproxy.Backend
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{a: testhaproxy.StartBackend(t, "a", nil), b: testhaproxy.StartBackend(t, "b", nil)}
	f.hap = testhaproxy.Start(t, testhaproxy.Config{Servers: []testhaproxy.Server{{Name: "a", Addr: f.a.Addr}, {Name: "b", Addr: f.b.Addr}}})
	return f
}

func (f *fixture) router(t *testing.T, api string) *haproxy.Router {
	t.Helper()
	r, err := haproxy.NewRouter(api, f.hap.Backend)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestClientAgainstHAProxy(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for _, api := range []string{f.hap.RuntimeAPI, f.hap.TCPRuntimeAPI} {
		t.Run(strings.SplitN(api, ":", 2)[0], func(t *testing.T) {
			c, err := haproxy.NewClient(api)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.SetWeight(ctx, "web", "a", 42); err != nil {
				t.Fatalf("SetWeight: %v", err)
			}
			states, err := c.ServersState(ctx, "web")
			if err != nil {
				t.Fatalf("ServersState: %v", err)
			}
			if len(states) != 2 || states[0].Name != "a" || states[0].Weight != 42 || states[1].Weight != 100 || states[0].InitialWeight != 100 {
				t.Fatalf("states %+v, want a at 42 and b at 100", states)
			}
			if err := c.SetState(ctx, "web", "a", haproxy.StateDrain); err != nil {
				t.Fatalf("SetState drain: %v", err)
			}
			states, _ = c.ServersState(ctx, "web")
			if !states[0].Draining() || states[0].Effective() != 0 || states[0].Weight != 42 {
				t.Fatalf("after drain a is %+v", states[0])
			}
			if err := c.SetState(ctx, "web", "a", haproxy.StateReady); err != nil {
				t.Fatalf("SetState ready: %v", err)
			}
			states, _ = c.ServersState(ctx, "web")
			if states[0].Draining() || states[0].Effective() != 42 {
				t.Fatalf("after ready a is %+v", states[0])
			}
		})
	}
	c, _ := haproxy.NewClient(f.hap.RuntimeAPI)
	for name, tc := range map[string]struct {
		err  error
		want string
	}{
		"unknown server":   {c.SetWeight(ctx, "web", "zz", 1), "No such server."},
		"unknown backend":  {c.SetWeight(ctx, "nope", "a", 1), "No such backend."},
		"state of nothing": {c.SetState(ctx, "web", "zz", haproxy.StateDrain), "No such server."},
	} {
		if !errors.Is(tc.err, haproxy.ErrUnexpectedAnswer) || !strings.Contains(tc.err.Error(), tc.want) {
			t.Errorf("%s: error %v, want ErrUnexpectedAnswer with %q", name, tc.err, tc.want)
		}
	}
	if _, err := c.ServersState(ctx, "nope"); !errors.Is(err, haproxy.ErrUnexpectedAnswer) || !strings.Contains(err.Error(), "Can't find backend") {
		t.Errorf("state of an unknown backend: %v", err)
	}
	// Refused before anything is sent.
	if err := c.SetWeight(ctx, "web", "a", 257); err == nil || !strings.Contains(err.Error(), "out of range") {
		t.Errorf("weight 257: %v", err)
	}
	if err := c.SetWeight(ctx, "web", "a weight 0; shutdown sessions server web/b", 1); err == nil {
		t.Error("a server name with spaces and ';' was sent")
	}
	if _, err := c.Exec(ctx, "show info\nset server web/a weight 0"); err == nil {
		t.Error("a two-line command was sent")
	}
	if out, err := c.Exec(ctx, "bogus"); err != nil || !strings.Contains(out, "Unknown command") {
		t.Errorf("Exec(bogus) = %q, %v", out, err)
	}
}

func TestClientTimeout(t *testing.T) {
	// A socket that accepts and never answers: the command must end with
	// the context, not hang.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	c, _ := haproxy.NewClient("tcp://" + ln.Addr().String())
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = c.ServersState(ctx, "web")
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 2*time.Second {
		t.Fatalf("error %v after %s, want the deadline within 2s", err, time.Since(start))
	}
	// Nothing listening: an immediate error naming the address.
	ln.Close()
	if err := (&haproxy.Router{Client: c, Backend: "web"}).Ping(context.Background()); err == nil || !strings.Contains(err.Error(), ln.Addr().String()) {
		t.Fatalf("Ping of a closed port: %v", err)
	}
}

func TestRouterSetWeightsReadBack(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	r := f.router(t, f.hap.RuntimeAPI)
	if err := r.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	for _, step := range []map[string]int{{"a": 0, "b": 256}, {"a": 13, "b": 243}, {"a": 256, "b": 0}, {"a": 128}} {
		if err := r.SetWeights(ctx, step); err != nil {
			t.Fatalf("SetWeights(%v): %v", step, err)
		}
		got, err := r.Weights(ctx, []string{"a", "b"})
		if err != nil {
			t.Fatal(err)
		}
		for k, w := range step {
			if got[k] != w {
				t.Fatalf("after SetWeights(%v) read back %v", step, got)
			}
		}
	}
	// b was left at 0 (drained) by the third step and untouched by the fourth.
	if got, _ := r.Weights(ctx, []string{"b"}); got["b"] != 0 {
		t.Fatalf("b read back %v, want 0 (untouched)", got)
	}
	// A missing server fails the whole change before any command.
	before, _ := r.Weights(ctx, []string{"a", "b"})
	if err := r.SetWeights(ctx, map[string]int{"a": 1, "b": 255, "zz": 5}); err == nil || !strings.Contains(err.Error(), `no server "zz"`) {
		t.Fatalf("SetWeights with an unknown server: %v", err)
	}
	after, _ := r.Weights(ctx, []string{"a", "b"})
	if after["a"] != before["a"] || after["b"] != before["b"] {
		t.Fatalf("a failed change was half applied: before %v after %v", before, after)
	}
	if _, err := r.Weights(ctx, []string{"zz"}); err == nil {
		t.Fatal("Weights of an unknown server: no error")
	}
}

func TestStaticAlgorithmRejectsWeights(t *testing.T) {
	a := testhaproxy.StartBackend(t, "a", nil)
	b := testhaproxy.StartBackend(t, "b", nil)
	// With map-based hashing HAProxy cannot change weights at run time.
	hap := testhaproxy.Start(t, testhaproxy.Config{Balance: "source\n  hash-type map-based",
		Servers: []testhaproxy.Server{{Name: "a", Addr: a.Addr}, {Name: "b", Addr: b.Addr}}})
	r, err := haproxy.NewRouter(hap.RuntimeAPI, hap.Backend)
	if err != nil {
		t.Fatal(err)
	}
	err = r.SetWeights(context.Background(), map[string]int{"a": 13, "b": 243})
	if !errors.Is(err, haproxy.ErrUnexpectedAnswer) || !strings.Contains(err.Error(), "static") {
		t.Fatalf("weights on a static algorithm: %v, want HAProxy's refusal", err)
	}
}

func TestMaintenanceIsLeftToTheOperator(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	r := f.router(t, f.hap.RuntimeAPI)
	if err := r.Client.SetState(ctx, "web", "a", haproxy.StateMaint); err != nil {
		t.Fatal(err)
	}
	err := r.SetWeights(ctx, map[string]int{"a": 50, "b": 50})
	if err == nil || !strings.Contains(err.Error(), "server web/a is in maintenance") {
		t.Fatalf("weight for a server in maintenance: %v", err)
	}
	// Weight 0 is accepted and the server stays in maintenance.
	if err := r.SetWeights(ctx, map[string]int{"a": 0, "b": 100}); err != nil {
		t.Fatal(err)
	}
	states, _ := r.Client.ServersState(ctx, "web")
	if !states[0].Maintenance() || states[0].Weight != 0 || states[1].Effective() != 100 {
		t.Fatalf("after weight 0: %+v", states)
	}
}

func TestDrainSendsNoNewTraffic(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	r := f.router(t, f.hap.TCPRuntimeAPI)
	if err := r.SetWeights(ctx, map[string]int{"a": 0, "b": 100}); err != nil {
		t.Fatal(err)
	}
	servedA := f.a.Served()
	load := testhaproxy.StartLoad(t, f.hap.URL, 4)
	c := load.WaitFor(t, time.Now(), 500, time.Minute)
	load.Stop()
	if c.Errors != 0 || c.Answers["a"] != 0 || f.a.Served() != servedA {
		t.Fatalf("while a drains: %s; a served %d more", c, f.a.Served()-servedA)
	}
	// Back to ready: a takes traffic again.
	if err := r.SetWeights(ctx, map[string]int{"a": 100}); err != nil {
		t.Fatal(err)
	}
	load = testhaproxy.StartLoad(t, f.hap.URL, 4)
	c = load.WaitFor(t, time.Now(), 200, time.Minute)
	load.Stop()
	if c.Errors != 0 || c.Answers["a"] < 50 {
		t.Fatalf("after ready: %s, want a to answer about half", c)
	}
}

func TestSharesFollowWeightsUnderLoad(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	r := f.router(t, f.hap.RuntimeAPI)
	load := testhaproxy.StartLoad(t, f.hap.URL, 8)
	for _, step := range [][2]int{{5, 95}, {25, 75}, {50, 50}} {
		if err := r.SetWeights(ctx, map[string]int{"a": step[0], "b": step[1]}); err != nil {
			t.Fatal(err)
		}
		from := time.Now()
		c := load.WaitFor(t, from, 1000, time.Minute)
		if c.Errors != 0 {
			t.Fatalf("step %v: %s", step, c)
		}
		if got := c.Share("a"); math.Abs(got-float64(step[0])) > 3 {
			t.Errorf("step %v: a answered %.1f%% of %d requests, want %d%% ± 3", step, got, c.OK, step[0])
		} else {
			t.Logf("step %v: a answered %.2f%% of %d requests", step, got, c.OK)
		}
	}
}

func TestSwitchUnderLoadLosesNoRequest(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	r := f.router(t, f.hap.RuntimeAPI)
	if err := r.SetWeights(ctx, map[string]int{"a": 0, "b": 100}); err != nil {
		t.Fatal(err)
	}
	load := testhaproxy.StartLoad(t, f.hap.URL, 8)
	start := time.Now()
	load.WaitFor(t, start, 500, time.Minute)
	// Switch back and forth several times under load.
	for i := 0; i < 6; i++ {
		to := map[string]int{"a": 100, "b": 0}
		if i%2 == 1 {
			to = map[string]int{"a": 0, "b": 100}
		}
		if err := r.SetWeights(ctx, to); err != nil {
			t.Fatal(err)
		}
		after := time.Now()
		c := load.WaitFor(t, after, 300, time.Minute)
		want := "a"
		if i%2 == 1 {
			want = "b"
		}
		if c.Answers[want] != c.OK {
			t.Errorf("switch %d: requests started after it: %s, want all from %s", i, c, want)
		}
	}
	load.Stop()
	all := load.Since(start)
	if all.Errors != 0 {
		t.Fatalf("requests lost during switches: %s", all)
	}
	t.Logf("%d requests over 6 switches, none lost", all.OK)
}

func TestConformance(t *testing.T) {
	f := newFixture(t)
	providertest.Run(t, f.router(t, f.hap.TCPRuntimeAPI), "a", "b")
}
