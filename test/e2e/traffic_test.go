package e2e

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/client"
	"flotilla.dev/flotilla/internal/testfleet"
	"flotilla.dev/flotilla/internal/testhaproxy"
	"flotilla.dev/flotilla/internal/traffic/gatewayapi"
	"flotilla.dev/flotilla/internal/traffic/haproxy"
)

// releaseWatcher keeps the release a cluster runs, as the ConfigMap web-config the release applies
// there says, so the cluster's backend answers with it: the answer changes only once the agent
// has applied a new release.
type releaseWatcher struct {
	mu      sync.Mutex
	release string
}

func (w *releaseWatcher) get() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.release
}

func watchRelease(ctx context.Context, c *testfleet.Cluster, ns string) *releaseWatcher {
	w := &releaseWatcher{release: "none"}
	set := func(cm *corev1.ConfigMap) {
		w.mu.Lock()
		w.release = cm.Data["release"]
		w.mu.Unlock()
	}
	// A watch rather than a poll: the backend must answer with a new release within milliseconds
	// of its apply, since the rollout gives the cluster traffic as soon as the agent reports it.
	go func() {
		for ctx.Err() == nil {
			if cm, err := c.Client.CoreV1().ConfigMaps(ns).Get(ctx, "web-config", metav1.GetOptions{}); err == nil {
				set(cm)
			}
			wi, err := c.Client.CoreV1().ConfigMaps(ns).Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=web-config"})
			if err != nil {
				select {
				case <-ctx.Done():
				case <-time.After(50 * time.Millisecond):
				}
				continue
			}
			for ev := range wi.ResultChan() {
				if cm, ok := ev.Object.(*corev1.ConfigMap); ok && ev.Type != "DELETED" {
					set(cm)
				}
			}
			wi.Stop()
		}
	}()
	return w
}

// Given three clusters behind a real HAProxy, each serving an HTTP backend that answers with the
// cluster's name and the release it runs, and steady load through HAProxy: when a canary rollout
// of a new release runs, the canary gets no traffic while it is updated, then 5, 25 and 50
// percent of the requests (within 3 points over at least 1,000 requests per step); when it is
// aborted, every cluster goes back to the old release, and from then on no request is answered
// by the new one. No request fails during the whole rollout.
func TestCanaryTrafficStepsAndRollbackUnderLoad(t *testing.T) {
	strategy := `apiVersion: flotilla.dev/v1alpha1
kind: RolloutStrategy
metadata: {name: web-strategy}
spec:
  type: canary
  trafficRouter: edge
  onFailure: rollback
  waves:
  - name: canary
    clusters: {matchLabels: {ring: canary}}
    steps:
    - {weight: 5, bake: 15s}
    - {weight: 25, bake: 15s}
    - {weight: 50, bake: 10m}
  - name: rest
    clusters: {}
    maxParallel: "100%"
`
	x := newTrafficSetup(t, strategy, func(i int) []string {
		if i == 0 {
			return []string{"ring=canary"}
		}
		return []string{"ring=main"}
	})
	ctx, s, hap, load, ns, names := x.ctx, x.s, x.hap, x.load, x.ns, x.names
	canary := names[0]

	// The canary rollout of r2.
	begin := time.Now()
	s.release(t, "web-r2", []map[string]any{configMap(ns, "web-config", "r2")}, names, false)
	ro := &v1.Rollout{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindRollout},
		Metadata: v1.ObjectMeta{Name: "web-r2"}, Spec: v1.RolloutSpec{Service: "web", Release: "web-r2", Strategy: "web-strategy"}}
	if _, err := s.Admin.Create(ctx, ro); err != nil {
		t.Fatalf("create rollout: %v", err)
	}
	rt, err := haproxy.NewClient(hap.RuntimeAPI)
	if err != nil {
		t.Fatal(err)
	}
	// Sample the canary's weight in HAProxy every 10 ms to find when its first step took effect.
	samples := sampleWeight(ctx, rt, canary)
	for _, p := range []int{5, 25, 50} {
		var inForce time.Time
		eventually(t, 3*time.Minute, fmt.Sprintf("HAProxy gives the canary %d%%", p), func(ctx context.Context) error {
			w, err := effectiveWeights(ctx, rt)
			if err != nil {
				return err
			}
			if want := int(math.Round(float64(p) * 2.56)); w[canary] != want {
				return fmt.Errorf("canary weight %d, want %d (all %v; rollout: %s)", w[canary], want, w, rolloutSummary(ctx, s.Admin))
			}
			inForce = time.Now()
			return nil
		})
		c := load.WaitFor(t, inForce, 1000, time.Minute)
		share := c.Share(canary)
		if c.Errors != 0 || math.Abs(share-float64(p)) > 3 {
			t.Errorf("step %d%%: the canary answered %.2f%% of %d requests (%s)", p, share, c.OK, c)
		} else {
			t.Logf("step %d%%: the canary answered %.2f%% of %d requests", p, share, c.OK)
		}
		for body, n := range c.Bodies {
			if strings.HasPrefix(body, canary+" ") != (body == canary+" r2") {
				t.Errorf("step %d%%: %d answers %q: the canary must answer r2 and the others r1", p, n, body)
			}
		}
	}
	// The canary was drained while it was updated: no request answered while its weight was still
	// 0 (before the last poll that read 0 was sent) was answered with r2.
	isStep := func(w int) bool { return w == 13 }
	firstStep, drained := samples.waitFirst(isStep, 2*time.Second), samples.first(func(w int) bool { return w == 0 })
	if firstStep.IsZero() {
		t.Errorf("the canary's first traffic step (weight 13) was never seen in HAProxy")
	}
	if early := load.EndedBetween(begin, samples.heldBefore(isStep)); early.Bodies[canary+" r2"] != 0 {
		t.Errorf("the canary answered %d requests with r2 before its first traffic step took effect (%s); "+
			"rollout started %s, canary drained in HAProxy %s, first step %s", early.Bodies[canary+" r2"], early,
			begin.Format("15:04:05.000"), drained.Format("15:04:05.000"), firstStep.Format("15:04:05.000"))
	}

	t.Logf("rollout started %s, canary drained in HAProxy %s, first step in force %s", begin.Format("15:04:05.000"),
		drained.Format("15:04:05.000"), firstStep.Format("15:04:05.000"))

	// The applied weights are visible on the rollout and the router.
	got, err := s.Admin.Get(ctx, "rollouts", "web-r2")
	if err != nil {
		t.Fatal(err)
	}
	if st := got.(*v1.Rollout).Status; !strings.HasPrefix(st.TrafficMessage, "applied") {
		t.Errorf("rollout traffic message %q, want the weights applied", st.TrafficMessage)
	}
	if out := s.cli(t, "get", "trafficrouters"); !strings.Contains(out, canary+"=50") {
		t.Errorf("flotilla get trafficrouters does not show the canary at 50%%:\n%s", out)
	}
	if out := s.cli(t, "rollout", "status", "web-r2"); !strings.Contains(out, "Traffic (edge): ") || !strings.Contains(out, canary+"=50") ||
		!strings.Contains(out, ": applied ") {
		t.Errorf("flotilla rollout status does not show the weights applied:\n%s", out)
	}

	// Abort: traffic goes back, then every cluster goes back to r1.
	aborted := time.Now()
	if _, err := s.Admin.RolloutAction(ctx, "web-r2", "abort", ""); err != nil {
		t.Fatalf("abort: %v", err)
	}
	eventually(t, 2*time.Minute, "the rollout is aborted and the canary answers r1 again", func(ctx context.Context) error {
		o, err := s.Admin.Get(ctx, "rollouts", "web-r2")
		if err != nil {
			return err
		}
		if ph := o.(*v1.Rollout).Status.Phase; ph != v1.RolloutAborted {
			return fmt.Errorf("rollout phase %s", ph)
		}
		c := load.Since(time.Now().Add(-300 * time.Millisecond))
		if c.Bodies[canary+" r1"] == 0 || c.Bodies[canary+" r2"] != 0 {
			return fmt.Errorf("answers %v", c.Bodies)
		}
		return nil
	})
	restored := time.Now()
	after := load.WaitFor(t, restored, 1000, time.Minute)
	load.Stop()
	for body, n := range after.Bodies {
		if strings.HasSuffix(body, " r2") {
			t.Errorf("after the rollback %d requests were answered %q", n, body)
		}
	}
	during := load.Between(aborted, restored)
	// The aborted canary lost its traffic before it went back to r1 and got it back only once it
	// was: no request started after it was drained again (plus 50 ms for the sampling) got r2.
	redrained := samples.firstAfter(aborted, func(w int) bool { return w == 0 })
	if redrained.IsZero() {
		t.Errorf("the canary was not drained after the abort")
	} else if late := load.Between(redrained.Add(50*time.Millisecond), restored); late.Bodies[canary+" r2"] != 0 {
		t.Errorf("%d requests answered by r2 after the canary was drained for the rollback (%s)", late.Bodies[canary+" r2"], late)
	}
	t.Logf("abort: canary drained %s after it", redrained.Sub(aborted).Round(time.Millisecond))
	all := load.Since(begin)
	if all.Errors != 0 {
		t.Errorf("requests lost during the rollout and its rollback: %s", all)
	}
	t.Logf("rollout and rollback: %d requests, %d lost; between abort and the canary back on r1 (%s): %d of %d answered by r2",
		all.OK, all.Errors, restored.Sub(aborted).Round(time.Millisecond), during.Bodies[canary+" r2"], during.OK)
}

// trafficSetup is three clusters of the fleet with agents, each serving an HTTP backend that
// answers with the cluster's name and the release it runs, a real HAProxy in front (backend web,
// a server per cluster), the router edge, a service web with the strategy web-strategy, every
// cluster on release web-r1, and steady load through HAProxy.
type trafficSetup struct {
	ctx   context.Context
	s     *server
	hap   *testhaproxy.HAProxy
	load  *testhaproxy.Load
	ns    string
	names []string
}

func newTrafficSetup(t *testing.T, strategy string, labels func(i int) []string) *trafficSetup {
	t.Helper()
	testhaproxy.Binary(t)
	f := testfleet.Get(t)
	if len(f.Clusters) < 3 {
		t.Fatalf("need 3 clusters, the fleet has %d", len(f.Clusters))
	}
	clusters := f.Clusters[:3]
	x := &trafficSetup{ns: f.Namespace(t), s: startServer(t)}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	x.ctx = ctx
	var servers []testhaproxy.Server
	for _, c := range clusters {
		w := watchRelease(ctx, c, x.ns)
		b := testhaproxy.StartBackend(t, c.Name, w.get)
		servers = append(servers, testhaproxy.Server{Name: c.Name, Addr: b.Addr})
		x.names = append(x.names, c.Name)
	}
	x.hap = testhaproxy.Start(t, testhaproxy.Config{Backend: "web", Servers: servers})
	for i, c := range clusters {
		x.s.registerAndRunAgent(t, c.Name, c.Kubeconfig, append([]string{"env=e2e"}, labels(i)...)...)
		patch := fmt.Sprintf(`{"spec":{"traffic":[{"router":"edge","backend":%q}]}}`, c.Name)
		if _, err := x.s.Admin.Patch(ctx, "clusters", c.Name, []byte(patch)); err != nil {
			t.Fatalf("cluster %s: traffic: %v", c.Name, err)
		}
	}
	objs := `apiVersion: flotilla.dev/v1alpha1
kind: TrafficRouter
metadata: {name: edge}
spec:
  haproxy: {runtimeAPI: "` + x.hap.RuntimeAPI + `", backend: web}
---
` + strategy + `---
apiVersion: flotilla.dev/v1alpha1
kind: Service
metadata: {name: web}
spec:
  source: {name: shop, path: deploy/web}
  namespace: ` + x.ns + `
  placement: {clusterSelector: {matchLabels: {env: e2e}}}
  strategy: web-strategy
`
	loaded, err := v1.LoadYAML("objects.yaml", []byte(objs))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := x.s.Admin.Apply(ctx, loaded); err != nil {
		t.Fatalf("apply router, strategy and service: %v", err)
	}
	x.s.release(t, "web-r1", []map[string]any{configMap(x.ns, "web-config", "r1")}, x.names, false)
	if _, err := x.s.Admin.Assign(ctx, v1.AssignRequest{Service: "web", Release: "web-r1", Clusters: x.names}); err != nil {
		t.Fatalf("assign web-r1: %v", err)
	}
	x.load = testhaproxy.StartLoad(t, x.hap.URL, 8)
	eventually(t, 90*time.Second, "every cluster answers with r1", func(ctx context.Context) error {
		c := x.load.Since(time.Now().Add(-500 * time.Millisecond))
		for _, n := range x.names {
			if c.Bodies[n+" r1"] == 0 {
				return fmt.Errorf("no answer %q yet (%s)", n+" r1", c)
			}
		}
		return nil
	})
	return x
}

// startRollout releases r2 and starts its rollout with web-strategy.
func (x *trafficSetup) startRollout(t *testing.T) {
	t.Helper()
	x.s.release(t, "web-r2", []map[string]any{configMap(x.ns, "web-config", "r2")}, x.names, false)
	ro := &v1.Rollout{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindRollout},
		Metadata: v1.ObjectMeta{Name: "web-r2"}, Spec: v1.RolloutSpec{Service: "web", Release: "web-r2", Strategy: "web-strategy"}}
	if _, err := x.s.Admin.Create(x.ctx, ro); err != nil {
		t.Fatalf("create rollout: %v", err)
	}
}

// waitPhase waits for the rollout to reach phase.
func (x *trafficSetup) waitPhase(t *testing.T, phase v1.RolloutPhase, limit time.Duration) {
	t.Helper()
	eventually(t, limit, "rollout "+string(phase), func(ctx context.Context) error {
		o, err := x.s.Admin.Get(ctx, "rollouts", "web-r2")
		if err != nil {
			return err
		}
		if st := o.(*v1.Rollout).Status; st.Phase != phase {
			return fmt.Errorf("phase %s wave %q: %s; traffic: %s", st.Phase, st.CurrentWaveName, st.Message, st.TrafficMessage)
		}
		return nil
	})
}

// Given blue (one cluster) live and green (two clusters) idle behind a real HAProxy, and steady
// load: when a blue/green rollout of r2 runs, green is updated while it gets no traffic, traffic
// switches to green at once (every request started after the switch is answered by green with
// r2), and when the rollout is rolled back during its hold, green goes back to r1 and from then on
// no request is answered by r2. No request fails at any point.
func TestBlueGreenSwitchAndSwitchBackUnderLoad(t *testing.T) {
	strategy := `apiVersion: flotilla.dev/v1alpha1
kind: RolloutStrategy
metadata: {name: web-strategy}
spec:
  type: blueGreen
  trafficRouter: edge
  blueGreen:
    groups: {blue: {matchLabels: {color: blue}}, green: {matchLabels: {color: green}}}
    verify: [{bake: 3s}]
    hold: 10m
    afterHold: keep
`
	x := newTrafficSetup(t, strategy, func(i int) []string {
		if i == 0 {
			return []string{"color=blue"}
		}
		return []string{"color=green"}
	})
	blue, green := x.names[0], x.names[1:]
	// The operator's state before the rollout: blue live, green idle.
	rt, err := haproxy.NewClient(x.hap.RuntimeAPI)
	if err != nil {
		t.Fatal(err)
	}
	r := &haproxy.Router{Client: rt, Backend: "web"}
	if err := r.SetWeights(x.ctx, map[string]int{blue: 256, green[0]: 0, green[1]: 0}); err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	raised := sampleWeight(x.ctx, rt, green[0])
	x.startRollout(t)
	var switched time.Time
	// Green is idle in the router, so green must be the group updated first and switched to.
	eventually(t, 2*time.Minute, "traffic switched to green", func(ctx context.Context) error {
		w, err := effectiveWeights(ctx, rt)
		if err != nil {
			return err
		}
		if w[blue] != 0 || w[green[0]] == 0 || w[green[1]] == 0 {
			return fmt.Errorf("HAProxy weights %v (rollout: %s)", w, rolloutSummary(ctx, x.s.Admin))
		}
		switched = time.Now()
		return nil
	})
	// No request answered while green still had no weight (before the last poll that read 0 was
	// sent) reached green. A switch raises green before it lowers blue, so the time the switch
	// was seen complete is later. The check above may see the raise before the sampler's next
	// poll does: give it a moment.
	up := func(w int) bool { return w > 0 }
	greenUp := raised.waitFirst(up, 2*time.Second)
	if greenUp.IsZero() {
		t.Fatalf("green cluster %s was never seen with weight", green[0])
	}
	before := x.load.EndedBetween(begin, raised.heldBefore(up))
	for _, g := range green {
		if n := before.Bodies[g+" r1"] + before.Bodies[g+" r2"]; n != 0 {
			t.Errorf("green cluster %s answered %d requests before the switch (%s)", g, n, before)
		}
	}
	t.Logf("blue/green: green got traffic %s after the rollout started; switch seen complete %s later",
		greenUp.Sub(begin).Round(time.Millisecond), switched.Sub(greenUp).Round(time.Millisecond))
	afterSwitch := x.load.WaitFor(t, switched, 1000, time.Minute)
	for body, n := range afterSwitch.Bodies {
		if !strings.HasSuffix(body, " r2") || strings.HasPrefix(body, blue+" ") {
			t.Errorf("after the switch %d requests were answered %q, want green with r2 only", n, body)
		}
	}
	// Switch back during the hold.
	rolledBack := time.Now()
	if _, err := x.s.Admin.RolloutAction(x.ctx, "web-r2", "rollback", ""); err != nil {
		t.Fatalf("rollback: %v", err)
	}
	x.waitPhase(t, v1.RolloutRolledBack, 2*time.Minute)
	var restored time.Time
	eventually(t, time.Minute, "no answer with r2", func(ctx context.Context) error {
		c := x.load.Since(time.Now().Add(-300 * time.Millisecond))
		if c.OK == 0 || len(c.Bodies) == 0 {
			return fmt.Errorf("no answers")
		}
		for body := range c.Bodies {
			if strings.HasSuffix(body, " r2") {
				return fmt.Errorf("answers %v", c.Bodies)
			}
		}
		restored = time.Now()
		return nil
	})
	after := x.load.WaitFor(t, restored, 1000, time.Minute)
	x.load.Stop()
	for body, n := range after.Bodies {
		if strings.HasSuffix(body, " r2") {
			t.Errorf("after the rollback %d requests were answered %q", n, body)
		}
	}
	all := x.load.Since(begin)
	if all.Errors != 0 {
		t.Errorf("requests lost during the switch and the switch back: %s", all)
	}
	w, _ := effectiveWeights(x.ctx, rt)
	during := x.load.Between(rolledBack, restored)
	t.Logf("blue/green: %d requests, %d lost; after the rollback HAProxy weighs %v; between rollback and no more r2 (%s) %d of %d answered by r2",
		all.OK, all.Errors, w, restored.Sub(rolledBack).Round(time.Millisecond), during.Bodies[green[0]+" r2"]+during.Bodies[green[1]+" r2"], during.OK)
}

// weightSamples are the times a server's effective weight was seen to change.
type weightSamples struct {
	mu     sync.Mutex
	times  []time.Time
	values []int
	// held[i] is when the poll before the one that saw values[i] was sent: the weight before
	// values[i] was certainly still in force then.
	held []time.Time
}

func sampleWeight(ctx context.Context, c *haproxy.Client, server string) *weightSamples {
	s := &weightSamples{}
	go func() {
		last := -1
		var prevSent time.Time
		for ctx.Err() == nil {
			sent := time.Now()
			w, err := effectiveWeights(ctx, c)
			if err == nil && w[server] != last {
				last = w[server]
				s.mu.Lock()
				s.times, s.values, s.held = append(s.times, time.Now()), append(s.values, last), append(s.held, prevSent)
				s.mu.Unlock()
			}
			if err == nil {
				prevSent = sent
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	return s
}

// firstAfter is when a weight matching ok was first seen after t; the zero time if never.
func (s *weightSamples) firstAfter(t time.Time, ok func(int) bool) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, v := range s.values {
		if s.times[i].After(t) && ok(v) {
			return s.times[i]
		}
	}
	return time.Time{}
}

// first is when a weight matching ok was first seen; the zero time if never.
func (s *weightSamples) first(ok func(int) bool) time.Time {
	return s.atFirst(ok, s.times)
}

// heldBefore is, for the first sample matching ok, when the weight before it was last seen still in
// force (the send time of the poll before); the zero time if no sample matches.
func (s *weightSamples) heldBefore(ok func(int) bool) time.Time {
	return s.atFirst(ok, s.held)
}

// atFirst is the element of times (s.times or s.held) of the first sample matching ok.
func (s *weightSamples) atFirst(ok func(int) bool, times []time.Time) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, v := range s.values {
		if ok(v) {
			return times[i]
		}
	}
	return time.Time{}
}

// waitFirst is first, waiting up to d for a matching sample: a check made on its own poll can see a
// weight before the sampler's next poll records it.
func (s *weightSamples) waitFirst(ok func(int) bool, d time.Duration) time.Time {
	deadline := time.Now().Add(d)
	for {
		if t := s.first(ok); !t.IsZero() || time.Now().After(deadline) {
			return t
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func effectiveWeights(ctx context.Context, c *haproxy.Client) (map[string]int, error) {
	states, err := c.ServersState(ctx, "web")
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, s := range states {
		out[s.Name] = s.Effective()
	}
	return out, nil
}

func rolloutSummary(ctx context.Context, c *client.Client) string {
	o, err := c.Get(ctx, "rollouts", "web-r2")
	if err != nil {
		return err.Error()
	}
	st := o.(*v1.Rollout).Status
	return fmt.Sprintf("phase %s wave %q step %d message %q traffic %q", st.Phase, st.CurrentWaveName, st.CurrentStep, st.Message, st.TrafficMessage)
}

// Given an HTTPRoute on an edge cluster of the fleet whose rule splits traffic over one
// backendRef per cluster, and a gatewayAPI TrafficRouter for it (the server reaches the edge
// cluster with a kubeconfig from --traffic-kubeconfig-dir): when a canary rollout runs, the
// route's weights follow its steps, 5, 25 and 50 percent for the canary, and once the rollout
// succeeds every cluster is back at its planned weight.
func TestGatewayAPIRouteFollowsCanarySteps(t *testing.T) {
	f := testfleet.Get(t)
	if len(f.Clusters) < 3 {
		t.Fatalf("need 3 clusters, the fleet has %d", len(f.Clusters))
	}
	clusters := f.Clusters[:3]
	edge := clusters[0]
	ns := f.Namespace(t)
	installHTTPRouteCRD(t, edge)
	route := `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web, namespace: ` + ns + `}
spec:
  parentRefs: [{name: edge}]
  rules:
  - backendRefs:
    - {name: ` + clusters[0].Name + `, port: 80}
    - {name: ` + clusters[1].Name + `, port: 80}
    - {name: ` + clusters[2].Name + `, port: 80}
`
	var obj map[string]any
	if err := yaml.Unmarshal([]byte(route), &obj); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	routes := edge.Dynamic.Resource(gatewayapi.GVR).Namespace(ns)
	if _, err := routes.Create(ctx, &unstructured.Unstructured{Object: obj}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create HTTPRoute: %v", err)
	}

	// The server reaches the edge cluster through a kubeconfig named after it.
	kubeconfigs := t.TempDir()
	data, err := os.ReadFile(edge.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(kubeconfigs, edge.Name), data, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("FLOTILLA_TRAFFIC_KUBECONFIG_DIR", kubeconfigs)
	s := startServer(t)

	var names []string
	for i, c := range clusters {
		ring := "main"
		if i == 1 {
			ring = "canary"
		}
		s.registerAndRunAgent(t, c.Name, c.Kubeconfig, "env=e2e", "ring="+ring)
		patch := fmt.Sprintf(`{"spec":{"traffic":[{"router":"gw","backend":%q}]}}`, c.Name)
		if _, err := s.Admin.Patch(ctx, "clusters", c.Name, []byte(patch)); err != nil {
			t.Fatalf("cluster %s: traffic: %v", c.Name, err)
		}
		names = append(names, c.Name)
	}
	canary := clusters[1].Name
	objs := `apiVersion: flotilla.dev/v1alpha1
kind: TrafficRouter
metadata: {name: gw}
spec:
  gatewayAPI: {cluster: ` + edge.Name + `, httpRoute: {namespace: ` + ns + `, name: web}}
---
apiVersion: flotilla.dev/v1alpha1
kind: RolloutStrategy
metadata: {name: web-canary}
spec:
  type: canary
  trafficRouter: gw
  waves:
  - name: canary
    clusters: {matchLabels: {ring: canary}}
    steps:
    - {weight: 5, bake: 4s}
    - {weight: 25, bake: 4s}
    - {weight: 50, bake: 4s}
  - name: rest
    clusters: {}
    maxParallel: "100%"
---
apiVersion: flotilla.dev/v1alpha1
kind: Service
metadata: {name: web}
spec:
  source: {name: shop, path: deploy/web}
  namespace: ` + ns + `
  placement: {clusterSelector: {matchLabels: {env: e2e}}}
  strategy: web-canary
`
	loaded, err := v1.LoadYAML("objects.yaml", []byte(objs))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Admin.Apply(ctx, loaded); err != nil {
		t.Fatalf("apply router, strategy and service: %v", err)
	}
	s.release(t, "web-r1", []map[string]any{configMap(ns, "web-config", "r1")}, names, false)
	if _, err := s.Admin.Assign(ctx, v1.AssignRequest{Service: "web", Release: "web-r1", Clusters: names}); err != nil {
		t.Fatalf("assign web-r1: %v", err)
	}
	for _, c := range clusters {
		eventually(t, 90*time.Second, c.Name+" runs web-r1", func(ctx context.Context) error { return configMapSays(ctx, c, ns, "r1") })
	}

	// Record every distinct set of weights the route goes through.
	var mu sync.Mutex
	var seen []map[string]int64
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		for sctx.Err() == nil {
			if u, err := routes.Get(sctx, "web", metav1.GetOptions{}); err == nil {
				w := routeWeights(u)
				mu.Lock()
				if len(seen) == 0 || fmt.Sprint(seen[len(seen)-1]) != fmt.Sprint(w) {
					seen = append(seen, w)
				}
				mu.Unlock()
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()

	s.release(t, "web-r2", []map[string]any{configMap(ns, "web-config", "r2")}, names, false)
	ro := &v1.Rollout{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindRollout},
		Metadata: v1.ObjectMeta{Name: "web-r2"}, Spec: v1.RolloutSpec{Service: "web", Release: "web-r2", Strategy: "web-canary"}}
	if _, err := s.Admin.Create(ctx, ro); err != nil {
		t.Fatalf("create rollout: %v", err)
	}
	eventually(t, 3*time.Minute, "the rollout succeeds", func(ctx context.Context) error {
		o, err := s.Admin.Get(ctx, "rollouts", "web-r2")
		if err != nil {
			return err
		}
		if st := o.(*v1.Rollout).Status; st.Phase != v1.RolloutSucceeded {
			return fmt.Errorf("phase %s wave %q step %d: %s; traffic: %s", st.Phase, st.CurrentWaveName, st.CurrentStep, st.Message, st.TrafficMessage)
		}
		return nil
	})
	// The transition to Succeeded is stored before its traffic action runs: wait for the route to
	// be seen back at its planned weights (checked below) before reading the whole sequence.
	eventually(t, 30*time.Second, "the route seen back at its planned weights", func(context.Context) error {
		mu.Lock()
		defer mu.Unlock()
		if len(seen) == 0 || seen[len(seen)-1][canary] != 1 {
			return fmt.Errorf("weights seen %v", seen)
		}
		return nil
	})
	stop()
	mu.Lock()
	defer mu.Unlock()
	// The canary's weight over time, and the others' at each step.
	var canarySteps []int64
	for _, w := range seen {
		if len(canarySteps) == 0 || canarySteps[len(canarySteps)-1] != w[canary] {
			canarySteps = append(canarySteps, w[canary])
		}
	}
	t.Logf("HTTPRoute weights seen: %v", seen)
	// The API's default weight 1, drained, three steps, then the weight read from the route at
	// planning (1) again.
	want := []int64{1, 0, 5, 25, 50, 1}
	if fmt.Sprint(canarySteps) != fmt.Sprint(want) {
		t.Errorf("canary weights in the HTTPRoute went %v, want %v", canarySteps, want)
	}
	for _, w := range seen {
		var total int64
		for _, n := range names {
			total += w[n]
		}
		switch c := w[canary]; c {
		case 5, 25, 50:
			if total != 100 {
				t.Errorf("at the canary's %d%% the route's weights are %v, want a total of 100", c, w)
			}
		}
	}
	if last := seen[len(seen)-1]; last[names[0]] != 1 || last[names[1]] != 1 || last[names[2]] != 1 {
		t.Errorf("after the rollout the route weighs %v, want every cluster back at the 1 it had", last)
	}
}

// installHTTPRouteCRD installs the standard-channel HTTPRoute CRD of the gateway-api module version
// in go.mod (read from the module cache, so it matches the Go types) and waits until it serves.
func installHTTPRouteCRD(t *testing.T, c *testfleet.Cluster) {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "sigs.k8s.io/gateway-api").Output()
	if err != nil {
		t.Fatalf("find the gateway-api module: %v", err)
	}
	data, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(out)), "config", "crd", "standard", "gateway.networking.k8s.io_httproutes.yaml"))
	if err != nil {
		t.Fatalf("HTTPRoute CRD: %v", err)
	}
	var obj map[string]any
	if err := yaml.Unmarshal(data, &obj); err != nil {
		t.Fatal(err)
	}
	crds := c.Dynamic.Resource(schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"})
	if _, err := crds.Create(context.Background(), &unstructured.Unstructured{Object: obj}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("cluster %s: create the HTTPRoute CRD: %v", c.Name, err)
	}
	eventually(t, time.Minute, "the HTTPRoute CRD serves", func(ctx context.Context) error {
		_, err := c.Dynamic.Resource(gatewayapi.GVR).Namespace("default").List(ctx, metav1.ListOptions{})
		return err
	})
}

// routeWeights reads the weight of each backendRef of the route's first rule (1, the API's default,
// when unset).
func routeWeights(u *unstructured.Unstructured) map[string]int64 {
	out := map[string]int64{}
	rules, _, _ := unstructured.NestedSlice(u.Object, "spec", "rules")
	if len(rules) == 0 {
		return out
	}
	refs, _ := rules[0].(map[string]any)["backendRefs"].([]any)
	for _, x := range refs {
		m, _ := x.(map[string]any)
		w, ok := m["weight"].(int64)
		if !ok {
			w = 1
		}
		out[fmt.Sprint(m["name"])] = w
	}
	return out
}

// Given a canary rollout holding its 50% step behind a real HAProxy: when the server stops, someone
// changes the weights by hand, and a new server starts on the same database, then the new server's
// runner re-asserts the weights the rollout expects.
func TestRestartedServerReassertsWeights(t *testing.T) {
	strategy := `apiVersion: flotilla.dev/v1alpha1
kind: RolloutStrategy
metadata: {name: web-strategy}
spec:
  type: canary
  trafficRouter: edge
  waves:
  - name: canary
    clusters: {matchLabels: {ring: canary}}
    steps:
    - {weight: 50, bake: 10m}
  - name: rest
    clusters: {}
`
	x := newTrafficSetup(t, strategy, func(i int) []string {
		if i == 0 {
			return []string{"ring=canary"}
		}
		return []string{"ring=main"}
	})
	canary, others := x.names[0], x.names[1:]
	rt, err := haproxy.NewClient(x.hap.RuntimeAPI)
	if err != nil {
		t.Fatal(err)
	}
	expected := func(ctx context.Context) error {
		w, err := effectiveWeights(ctx, rt)
		if err != nil {
			return err
		}
		if w[canary] != 128 || w[others[0]] != 64 || w[others[1]] != 64 {
			return fmt.Errorf("HAProxy weights %v, want %s at 128 and the others at 64", w, canary)
		}
		return nil
	}
	x.startRollout(t)
	eventually(t, 2*time.Minute, "the canary holds 50%", expected)

	// Stop the server, then change the weights by hand.
	dir := x.s.DataDir
	x.s.Proc.Signal(t, syscall.SIGTERM, 30*time.Second)
	r := &haproxy.Router{Client: rt, Backend: "web"}
	if err := r.SetWeights(x.ctx, map[string]int{canary: 10, others[0]: 200, others[1]: 200}); err != nil {
		t.Fatal(err)
	}
	// A new server on the same database takes the runner over and puts the weights back.
	restarted := time.Now()
	p := start(t, "flotilla server (restarted)", "server", "--listen", "127.0.0.1:0", "--data-dir", dir)
	eventually(t, time.Minute, "the restarted server re-asserts the weights", expected)
	t.Logf("weights re-asserted %s after the new server was started", time.Since(restarted).Round(time.Millisecond))
	if !strings.Contains(p.Output(), "rollout runner leads") {
		t.Errorf("the restarted server does not say it leads the runner:\n%s", p.Output())
	}
}
