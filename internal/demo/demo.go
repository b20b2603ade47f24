package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/client"
	"flotilla.dev/flotilla/internal/localfleet"
)

// Options configure a demo run.
type Options struct {
	// Dir holds everything the demo writes; it is cleared at start.
	Dir string
	// Listen is the control plane's address; when it is taken a free loopback port is used.
	Listen string
	// Flotilla is the flotilla binary that runs the server and the agents (default: this program).
	Flotilla string
	// Out receives the narration.
	Out io.Writer
	// ExitAfterScenario ends the run once the scenario is over, with an error if it went wrong.
	// Otherwise the demo keeps running until ctx ends.
	ExitAfterScenario bool
	// StepTimeout bounds each wait of the scenario (default 5 minutes).
	StepTimeout time.Duration
}

// demoCluster is one cluster of the demo fleet and the labels that place it in a wave.
type demoCluster struct {
	name   string
	labels map[string]string
}

var clusters = []demoCluster{
	{"eu-canary", map[string]string{"ring": "canary", "region": "eu"}},
	{"eu-west", map[string]string{"region": "eu"}},
	{"us-east", map[string]string{"region": "us"}},
	{"us-west", map[string]string{"region": "us"}},
}

// The sample application's versions: v1 is the first release, v2 a good change, v3 a bad one.
var (
	v1App = appVersion{Version: "v1", ErrorRate: "0.00", Message: "web v1: first release of the shop's front end"}
	v2App = appVersion{Version: "v2", ErrorRate: "0.00", Message: "web v2: faster product pages"}
	v3App = appVersion{Version: "v3", ErrorRate: "0.30", Message: "web v3: new checkout (has a bug: 30% of requests fail)"}
)

// demo is one run's state.
type demo struct {
	opts  Options
	n     *narrator
	procs []*proc
	fleet *localfleet.Fleet
	api   *client.Client
	url   string
	token string
	shop  *shop
	users *users
	repo  *repo
	prom  string
	edge  string // the HAProxy frontend users go through

	seenMu sync.Mutex
	seen   map[string]map[string]bool // version -> clusters that ever served it
}

// Run runs the demo until ctx ends (or, with ExitAfterScenario, until the scenario is over) and
// stops everything it started before returning.
func Run(ctx context.Context, opts Options) (err error) {
	if opts.Out == nil {
		opts.Out = os.Stdout
	}
	if opts.StepTimeout == 0 {
		opts.StepTimeout = 5 * time.Minute
	}
	if opts.Flotilla == "" {
		if opts.Flotilla, err = os.Executable(); err != nil {
			return fmt.Errorf("demo: find the flotilla binary: %w", err)
		}
	}
	if opts.Dir, err = filepath.Abs(opts.Dir); err != nil {
		return err
	}
	d := &demo{opts: opts, n: newNarrator(opts.Out), seen: map[string]map[string]bool{}}
	defer d.stopAll()
	if err := d.setUp(ctx); err != nil {
		return err
	}
	d.banner()
	err = d.scenario(ctx)
	if opts.ExitAfterScenario || ctx.Err() != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	if err != nil {
		d.n.say("the scenario did not go as expected: %v", err)
		d.n.say("everything keeps running so you can look; logs are in %s", opts.Dir)
	}
	d.n.say("the demo keeps running: commit to %s and watch the rollouts; Ctrl-C stops everything", d.repo.dir)
	<-ctx.Done()
	return nil
}

func (d *demo) setUp(ctx context.Context) error {
	prom, err := exec.LookPath("prometheus")
	if err != nil {
		return errors.New("demo: Prometheus is needed for the canary's metric analysis and is not installed: " +
			"apt-get install -y prometheus (make demo installs it)")
	}
	if _, err := exec.LookPath("git"); err != nil {
		return errors.New("demo: git is needed for the sample repository: apt-get install -y git")
	}
	haproxy, err := lookHAProxy()
	if err != nil {
		return err
	}
	if err := os.RemoveAll(d.opts.Dir); err != nil {
		return err
	}
	for _, sub := range []string{"logs", "agents", "prometheus", "haproxy"} {
		if err := os.MkdirAll(filepath.Join(d.opts.Dir, sub), 0o755); err != nil {
			return err
		}
	}

	names := make([]string, len(clusters))
	for i, c := range clusters {
		names[i] = c.name
	}
	d.n.say("starting a local fleet of %d Kubernetes clusters (%s)", len(names), strings.Join(names, ", "))
	d.fleet, err = localfleet.Start(ctx, localfleet.StartOptions{Names: names, Dir: filepath.Join(d.opts.Dir, "fleet")})
	if err != nil {
		return fmt.Errorf("demo: local fleet: %w", err)
	}
	d.n.say("fleet ready in %s", time.Duration(d.fleet.ReadyNanos).Round(100*time.Millisecond))

	if err := d.startServer(ctx); err != nil {
		return err
	}
	d.n.say("control plane at %s (SQLite in %s)", d.url, d.opts.Dir)

	d.shop = newShop()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go d.shop.serveMetrics(ctx, ln)
	backends := map[string]string{}
	for _, c := range d.fleet.Clusters {
		bln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		backends[c.Name] = bln.Addr().String()
		go d.shop.serveBackend(ctx, c.Name, bln)
		go d.shop.follow(ctx, c.Name, c.Client)
	}
	go d.watchVersions(ctx)
	if err := d.startPrometheus(ctx, prom, ln.Addr().String()); err != nil {
		return err
	}
	d.n.say("Prometheus at %s scrapes the shop's request metrics from every cluster", d.prom)
	if err := d.startHAProxy(ctx, haproxy, backends); err != nil {
		return err
	}
	d.users = &users{answers: map[string]int{}}
	go d.users.run(ctx, d.edge, usersPerSecond)
	d.n.say("HAProxy at %s spreads %d user requests a second over the clusters' shop backends", d.edge, usersPerSecond)

	if err := d.registerAgents(ctx); err != nil {
		return err
	}
	if d.repo, err = newRepo(filepath.Join(d.opts.Dir, "repo")); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	if _, err := d.repo.commit(v1App); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	if _, err := d.api.ApplyYAML(ctx, []byte(d.objects())); err != nil {
		return fmt.Errorf("demo: apply the shop's objects: %w", err)
	}
	d.n.say("Git repository %s holds the shop's web service; source, service, canary strategy and analysis applied", d.repo.dir)
	go d.narrate(ctx)
	return nil
}

// startServer runs `flotilla server` on SQLite in the demo directory and waits until it answers.
func (d *demo) startServer(ctx context.Context) error {
	listen := d.opts.Listen
	if ln, err := net.Listen("tcp", listen); err == nil {
		listen = ln.Addr().String() // resolves port 0
		_ = ln.Close()
	} else {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		listen = ln.Addr().String()
		_ = ln.Close()
		d.n.say("%s is taken; the control plane listens on %s instead", d.opts.Listen, listen)
	}
	tokenFile := filepath.Join(d.opts.Dir, "admin.token")
	p, err := startProc("server", filepath.Join(d.opts.Dir, "logs", "server.log"), d.opts.Flotilla, "server",
		"--listen", listen, "--data-dir", d.opts.Dir, "--admin-token-file", tokenFile, "--allow-local-sources")
	if err != nil {
		return err
	}
	d.procs = append(d.procs, p)
	d.url = "http://" + listen
	if err := waitFor(ctx, 60*time.Second, "the control plane", p, func() error {
		resp, err := http.Get(d.url + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("readyz: %s", resp.Status)
		}
		tok, err := os.ReadFile(tokenFile)
		if err != nil {
			return err
		}
		d.token = strings.TrimSpace(string(tok))
		return nil
	}); err != nil {
		return err
	}
	d.api, err = client.New(client.Options{Server: d.url, Token: d.token})
	return err
}

// startPrometheus runs Prometheus scraping the load simulator every second.
func (d *demo) startPrometheus(ctx context.Context, bin, target string) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	dir := filepath.Join(d.opts.Dir, "prometheus")
	cfg := fmt.Sprintf("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n- job_name: shop\n  static_configs:\n  - targets: [%q]\n", target)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o644); err != nil {
		return err
	}
	p, err := startProc("prometheus", filepath.Join(d.opts.Dir, "logs", "prometheus.log"), bin,
		"--config.file="+filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--storage.tsdb.retention.time=2h")
	if err != nil {
		return err
	}
	d.procs = append(d.procs, p)
	d.prom = "http://" + addr
	return waitFor(ctx, 60*time.Second, "Prometheus", p, func() error {
		resp, err := http.Get(d.prom + "/-/ready")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("ready: %s", resp.Status)
		}
		return nil
	})
}

// registerAgents creates each Cluster with its labels and runs its agent with a bootstrap token.
func (d *demo) registerAgents(ctx context.Context) error {
	// The agent-only binary next to flotilla, when built, is what clusters run: a third of the memory.
	agentBin := d.opts.Flotilla
	if p := filepath.Join(filepath.Dir(d.opts.Flotilla), "flotilla-agent"); fileExists(p) {
		agentBin = p
	}
	for _, c := range d.fleet.Clusters {
		var labels map[string]string
		for _, dc := range clusters {
			if dc.name == c.Name {
				labels = dc.labels
			}
		}
		obj := &v1.Cluster{Metadata: v1.ObjectMeta{Name: c.Name, Labels: labels},
			Spec: v1.ClusterSpec{Traffic: []v1.ClusterTraffic{{Router: "edge", Backend: c.Name, Capacity: 100}}}}
		obj.Default()
		if _, err := d.api.Create(ctx, obj); err != nil {
			return fmt.Errorf("demo: register cluster %s: %w", c.Name, err)
		}
		tok, err := d.api.CreateBootstrapToken(ctx, c.Name, 10*time.Minute)
		if err != nil {
			return fmt.Errorf("demo: bootstrap token for %s: %w", c.Name, err)
		}
		p, err := startProc("agent "+c.Name, filepath.Join(d.opts.Dir, "logs", "agent-"+c.Name+".log"), agentBin, "agent",
			"--server", d.url, "--token", tok.Token, "--kubeconfig", c.Kubeconfig,
			"--state-dir", filepath.Join(d.opts.Dir, "agents", c.Name), "--observe-interval", "5s")
		if err != nil {
			return err
		}
		d.procs = append(d.procs, p)
		d.n.say("cluster %s registered (%s); its agent connects out to the control plane", c.Name, labelString(labels))
	}
	return nil
}

// objects is the shop's configuration in the control plane: where its manifests are, how they
// roll out and what makes a release bad.
func (d *demo) objects() string {
	return fmt.Sprintf(`apiVersion: flotilla.dev/v1alpha1
kind: Source
metadata: {name: shop}
spec:
  git:
    url: file://%s
    ref: {branch: main}
    interval: 10s
---
apiVersion: flotilla.dev/v1alpha1
kind: AnalysisTemplate
metadata: {name: error-rate}
spec:
  metrics:
  - name: error-rate
    interval: 5s
    count: 4
    failureLimit: 0
    inconclusiveLimit: 2
    successCondition: "result < 0.05"
    provider:
      prometheus:
        address: %s
        query: |
          (sum(rate(demo_http_requests_total{cluster="{{ .Cluster.Name }}",code="500"}[15s])) or vector(0))
          / sum(rate(demo_http_requests_total{cluster="{{ .Cluster.Name }}"}[15s]))
---
apiVersion: flotilla.dev/v1alpha1
kind: TrafficRouter
metadata: {name: edge}
spec:
  haproxy: {runtimeAPI: "unix://%s", backend: web}
---
apiVersion: flotilla.dev/v1alpha1
kind: RolloutStrategy
metadata: {name: web-canary}
spec:
  type: canary
  trafficRouter: edge
  onFailure: rollback
  waves:
  - name: canary
    clusters: {matchLabels: {ring: canary}}
    steps:
    - {weight: 10, analysis: [{template: error-rate}]}
    - {weight: 40, analysis: [{template: error-rate}]}
  - name: eu
    clusters: {matchLabels: {region: eu}}
  - name: us
    clusters: {matchLabels: {region: us}}
    maxParallel: 1
---
apiVersion: flotilla.dev/v1alpha1
kind: Service
metadata: {name: web, labels: {team: storefront}}
spec:
  source: {name: shop, path: deploy/web}
  namespace: shop
  placement: {clusterSelector: {}}
  sync: {prune: true, selfHeal: true}
  strategy: web-canary
`, d.repo.dir, d.prom, d.haproxySocket())
}

func (d *demo) banner() {
	fmt.Fprintf(d.opts.Out, `
  Flotilla demo is up.
    dashboard:  %s/ui/ (sign in with the token below)
    login token: %s
    CLI:        export FLOTILLA_SERVER=%s FLOTILLA_TOKEN=%s
                ./bin/flotilla get clusters; ./bin/flotilla get rollouts
    repository: %s (commit here to cut a release)
    logs:       %s/logs

`, d.url, d.token, d.url, d.token, d.repo.dir, d.opts.Dir)
}

// scenario runs the story: v1 reaches the fleet, v2 passes the canary and goes everywhere, v3
// fails the canary's analysis and is rolled back by itself.
func (d *demo) scenario(ctx context.Context) error {
	d.n.say("step 1: the first release of web (v1) rolls out through the canary")
	if _, err := d.expectRollout(ctx, "", v1.RolloutSucceeded); err != nil {
		return err
	}
	if err := d.expectServing(ctx, "v1", nil); err != nil {
		return err
	}
	d.n.say("step 2: a good change (v2) is committed; the canary's error rate stays low, so every wave follows")
	if err := d.commitAndExpect(ctx, v2App, v1.RolloutSucceeded); err != nil {
		return err
	}
	if err := d.expectServing(ctx, "v2", nil); err != nil {
		return err
	}
	d.n.say("step 3: a bad change (v3) is committed; 30%% of its requests fail")
	start, startTotal := d.users.snapshot(), d.users.total.Load()
	if err := d.commitAndExpect(ctx, v3App, v1.RolloutRolledBack); err != nil {
		return err
	}
	if err := d.expectServing(ctx, "v2", nil); err != nil {
		return err
	}
	d.seenMu.Lock()
	bad := sortedSet(d.seen["v3"])
	d.seenMu.Unlock()
	for _, c := range bad {
		if c != "eu-canary" {
			return fmt.Errorf("v3 reached %s, outside the canary wave (it reached %s)", c, strings.Join(bad, ", "))
		}
	}
	d.n.say("done: v3 reached only %s, failed its analysis there and was rolled back by itself; every cluster serves v2",
		strings.Join(bad, ", "))
	// What users saw: answers from v3 only while it ran on the canary, none once it was rolled back.
	before := countVersion(d.users.snapshot(), "v3")
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(5 * time.Second):
	}
	answers := d.users.snapshot()
	after := countVersion(answers, "v3")
	d.n.say("users: since v3 was committed, %d of %d requests were answered by v3 and %d failed, all before the rollback",
		after, d.users.total.Load()-startTotal, answers["error"]-start["error"])
	if after != before {
		return fmt.Errorf("users were still answered by v3 after the rollback (%d more answers)", after-before)
	}
	return nil
}

func (d *demo) commitAndExpect(ctx context.Context, v appVersion, want v1.RolloutPhase) error {
	svc, err := d.service(ctx)
	if err != nil {
		return err
	}
	sha, err := d.repo.commit(v)
	if err != nil {
		return err
	}
	d.n.say("committed %s %q", short(sha), v.Message)
	_, err = d.expectRollout(ctx, svc.Status.LatestRelease, want)
	return err
}

// expectRollout waits for a release newer than after, then for its rollout to end, and checks
// that it ended in want.
func (d *demo) expectRollout(ctx context.Context, after string, want v1.RolloutPhase) (*v1.Rollout, error) {
	var release string
	err := d.wait(ctx, "a new release of web", func() error {
		svc, err := d.service(ctx)
		if err != nil {
			return err
		}
		if svc.Status.LatestRelease == "" || svc.Status.LatestRelease == after {
			return errors.New("no new release yet")
		}
		release = svc.Status.LatestRelease
		return nil
	})
	if err != nil {
		return nil, err
	}
	var ro *v1.Rollout
	err = d.wait(ctx, "the rollout of "+release+" to finish", func() error {
		objs, err := d.api.ListAll(ctx, v1.KindRollout, client.ListOptions{})
		if err != nil {
			return err
		}
		for _, o := range objs {
			r := o.(*v1.Rollout)
			if r.Spec.Release == release {
				ro = r
			}
		}
		if ro == nil {
			return errors.New("no rollout yet")
		}
		if !ro.Status.Phase.Terminal() {
			return fmt.Errorf("rollout %s is %s", ro.Metadata.Name, ro.Status.Phase)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if ro.Status.Phase != want {
		return ro, fmt.Errorf("rollout %s ended %s (%s), want %s", ro.Metadata.Name, ro.Status.Phase, ro.Status.Message, want)
	}
	return ro, nil
}

// expectServing waits until every cluster serves version.
func (d *demo) expectServing(ctx context.Context, version string, _ []string) error {
	return d.wait(ctx, "every cluster to serve "+version, func() error {
		vs := d.shop.versions()
		var off []string
		for _, c := range clusters {
			if vs[c.name] != version {
				off = append(off, c.name+"="+orNone(vs[c.name]))
			}
		}
		if len(off) > 0 {
			return errors.New(strings.Join(off, ", "))
		}
		return nil
	})
}

// watchVersions records which clusters ever served which version.
func (d *demo) watchVersions(ctx context.Context) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for c, v := range d.shop.versions() {
			if v == "" {
				continue
			}
			d.seenMu.Lock()
			if d.seen[v] == nil {
				d.seen[v] = map[string]bool{}
			}
			d.seen[v][c] = true
			d.seenMu.Unlock()
		}
	}
}

// narrate follows the control plane's event stream and tells what happens.
func (d *demo) narrate(ctx context.Context) {
	_ = d.api.Watch(ctx, client.WatchOptions{Kinds: []string{v1.KindSource, v1.KindRelease, v1.KindRollout}}, func(ev v1.Event) error {
		if len(ev.Object) == 0 || ev.Type == "Deleted" {
			return nil
		}
		switch ev.Kind {
		case v1.KindSource:
			var s v1.Source
			if json.Unmarshal(ev.Object, &s) == nil {
				d.n.source(&s)
			}
		case v1.KindRelease:
			var r v1.Release
			if json.Unmarshal(ev.Object, &r) == nil {
				d.n.release(&r)
			}
		case v1.KindRollout:
			var r v1.Rollout
			if json.Unmarshal(ev.Object, &r) == nil {
				d.n.rollout(&r)
			}
		}
		return nil
	})
}

func (d *demo) service(ctx context.Context) (*v1.Service, error) {
	o, err := d.api.Get(ctx, v1.KindService, "web")
	if err != nil {
		return nil, err
	}
	return o.(*v1.Service), nil
}

// wait polls cond every half second until it holds, the step times out or a child process died.
func (d *demo) wait(ctx context.Context, what string, cond func() error) error {
	deadline := time.Now().Add(d.opts.StepTimeout)
	var last error
	for {
		if last = cond(); last == nil {
			return nil
		}
		for _, p := range d.procs {
			if !p.alive() {
				return fmt.Errorf("waiting for %s: %s exited; see %s", what, p.name, p.log)
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("waiting for %s: still not so after %s: %v", what, d.opts.StepTimeout, last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// stopAll stops the child processes in reverse order, then the fleet.
func (d *demo) stopAll() {
	fmt.Fprintln(d.opts.Out, "stopping: agents, Prometheus, control plane, fleet")
	for i := len(d.procs) - 1; i >= 0; i-- {
		if err := d.procs[i].stop(15 * time.Second); err != nil {
			fmt.Fprintln(d.opts.Out, "  "+err.Error())
		}
	}
	if d.fleet != nil {
		if err := d.fleet.Stop(); err != nil {
			fmt.Fprintln(d.opts.Out, "  fleet: "+err.Error())
		}
	}
	fmt.Fprintln(d.opts.Out, "stopped; nothing is left running")
}

func waitFor(ctx context.Context, limit time.Duration, what string, p *proc, cond func() error) error {
	deadline := time.Now().Add(limit)
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if !p.alive() {
			return fmt.Errorf("demo: %s exited during start-up; see %s", what, p.log)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("demo: %s not ready after %s: %v (see %s)", what, limit, err, p.log)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// countVersion sums the answers given by version (keys are "cluster version").
func countVersion(answers map[string]int, version string) int {
	n := 0
	for k, v := range answers {
		if strings.HasSuffix(k, " "+version) {
			n += v
		}
	}
	return n
}

func labelString(m map[string]string) string {
	var parts []string
	for k, v := range m {
		parts = append(parts, k+"="+v)
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

func sortedSet(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
