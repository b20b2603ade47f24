package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/client"
	"flotilla.dev/flotilla/internal/store/postgres/pgtest"
	"flotilla.dev/flotilla/internal/testfleet"
)

// startReplica starts one `flotilla server` replica on the PostgreSQL database dsn. The first
// replica creates the admin token and writes it to tokenFile; the others find the store has one
// and read the file.
func startReplica(t *testing.T, dsn, tokenFile string) *server {
	t.Helper()
	// A shorter leadership lease than the default 15 s: failover sooner, and the setting checked.
	return startServer(t, "--db", dsn, "--leader-lease-ttl", "8s", "--admin-token-file", tokenFile)
}

// rolloutAudit returns the audit trail of a rollout's transitions: event time, events fed and
// actions taken.
type auditStep struct {
	Time    time.Time
	Events  []string
	Actions []string
}

func rolloutAudit(t *testing.T, s *server, rollout string) []auditStep {
	t.Helper()
	evs, err := s.Admin.Audit(context.Background(), client.AuditOptions{Kind: "RolloutAudit", Name: rollout, Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	var out []auditStep
	for _, ev := range evs.Items {
		var o struct {
			Spec struct {
				Events  []string `json:"events"`
				Actions []string `json:"actions"`
			} `json:"spec"`
		}
		if err := json.Unmarshal(ev.Object, &o); err != nil {
			t.Fatal(err)
		}
		out = append(out, auditStep{Time: ev.Time, Events: o.Spec.Events, Actions: o.Spec.Actions})
	}
	return out
}

// Given two server replicas on one PostgreSQL database, A leading (rollout runner and source
// controller) and every agent connected to B, then an assignment made through A wakes a long poll
// held by B within a second (LISTEN/NOTIFY); when A is killed with SIGKILL in the middle of a
// rolling rollout, B takes both leaderships once A's leases expire, the rollout completes, and
// its audit trail shows each cluster assigned the release exactly once and no action repeated.
func TestHAFailoverOnPostgres(t *testing.T) {
	f := testfleet.Get(t)
	if len(f.Clusters) < 3 {
		t.Fatalf("need 3 clusters, the fleet has %d", len(f.Clusters))
	}
	dsn := pgtest.NewDatabase(t)
	ns := f.Namespace(t)
	ctx := context.Background()
	tokenFile := filepath.Join(t.TempDir(), "admin.token")

	a := startReplica(t, dsn, tokenFile)
	a.Proc.WaitOutput(t, `msg="rollout runner leads"`, 30*time.Second)
	a.Proc.WaitOutput(t, `msg="source and release controller leads"`, 30*time.Second)
	for _, leads := range []string{"rollout runner leads", "source and release controller leads"} {
		if !regexp.MustCompile(`msg="` + leads + `" .*ttl=8s`).MatchString(a.Proc.Output()) {
			t.Errorf("%q is not logged with the lease of --leader-lease-ttl 8s:\n%s", leads, a.Proc.Output())
		}
	}
	b := startReplica(t, dsn, tokenFile)

	clusters := f.Clusters[:3]
	var names []string
	for i, c := range clusters {
		names = append(names, c.Name)
		tok := b.register(t, c.Name, "env=e2e", fmt.Sprintf("order=%d", i))
		runAgentWith(t, b, c, tok, "--state-dir", t.TempDir())
	}
	loaded, err := v1.LoadYAML("ha.yaml", []byte(`apiVersion: flotilla.dev/v1alpha1
kind: RolloutStrategy
metadata: {name: one-by-one}
spec:
  type: rolling
  waves:
  - name: first
    clusters: {matchLabels: {order: "0"}}
    after: [{bake: 8s}]
  - name: second
    clusters: {matchLabels: {order: "1"}}
    after: [{bake: 4s}]
  - name: third
    clusters: {matchLabels: {order: "2"}}
---
apiVersion: flotilla.dev/v1alpha1
kind: Service
metadata: {name: web}
spec:
  source: {name: shop, path: deploy/web}
  namespace: `+ns+`
  placement: {clusterSelector: {matchLabels: {env: e2e}}}
  strategy: one-by-one
`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Admin.Apply(ctx, loaded); err != nil {
		t.Fatalf("apply: %v", err)
	}
	a.releaseOf(t, "web", "web-r1", []map[string]any{configMap(ns, "web-config", "web-r1")}, names, false)
	if _, err := a.Admin.Assign(ctx, v1.AssignRequest{Service: "web", Release: "web-r1", Clusters: names}); err != nil {
		t.Fatalf("assign web-r1: %v", err)
	}
	for _, c := range clusters {
		eventually(t, 2*time.Minute, c.Name+" applies web-r1", func(ctx context.Context) error { return configMapSays(ctx, c, ns, "web-r1") })
	}

	// Wake-up across replicas: a long poll held by B answers an assignment made through A.
	probeTok := b.register(t, "ha-probe", "probe=yes")
	anon, err := client.New(client.Options{Server: b.URL})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := anon.Register(ctx, v1.RegisterRequest{Token: probeTok})
	if err != nil {
		t.Fatalf("register probe: %v", err)
	}
	probe, err := client.New(client.Options{Server: b.URL, Token: reg.Credential})
	if err != nil {
		t.Fatal(err)
	}
	ds, err := probe.Desired(ctx, client.DesiredOptions{})
	if err != nil {
		t.Fatalf("probe desired: %v", err)
	}
	a.releaseOf(t, "web", "web-probe", []map[string]any{configMap(ns, "web-config", "web-probe")}, []string{"ha-probe"}, false)
	type answer struct {
		at  time.Time
		ds  *v1.DesiredState
		err error
	}
	woke := make(chan answer, 1)
	go func() {
		d, err := probe.Desired(ctx, client.DesiredOptions{After: ds.Digest, Wait: 20 * time.Second})
		woke <- answer{time.Now(), d, err}
	}()
	time.Sleep(500 * time.Millisecond) // the poll is held by B by now
	assigned := time.Now()
	if _, err := a.Admin.Assign(ctx, v1.AssignRequest{Service: "web", Release: "web-probe", Clusters: []string{"ha-probe"}}); err != nil {
		t.Fatalf("assign through A: %v", err)
	}
	ans := <-woke
	switch {
	case ans.err != nil:
		t.Fatalf("long poll on B: %v", ans.err)
	case ans.ds == nil || len(ans.ds.Assignments) != 1 || ans.ds.Assignments[0].Release != "web-probe":
		t.Fatalf("long poll on B answered %+v, want the assignment of web-probe", ans.ds)
	case ans.at.Sub(assigned) > time.Second:
		t.Errorf("the long poll on B answered %v after the assignment through A; want within 1s", ans.at.Sub(assigned))
	}
	t.Logf("assignment through A to long poll on B answered: %v", ans.at.Sub(assigned).Round(time.Millisecond))

	// A rollout driven by A, whose leader is killed in the first wave's bake.
	a.releaseOf(t, "web", "web-r2", []map[string]any{configMap(ns, "web-config", "web-r2")}, names, false)
	ro := &v1.Rollout{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindRollout},
		Metadata: v1.ObjectMeta{Name: "web-r2"}, Spec: v1.RolloutSpec{Service: "web", Release: "web-r2"}}
	if _, err := a.Admin.Create(ctx, ro); err != nil {
		t.Fatalf("create rollout: %v", err)
	}
	// The kill falls in the first wave's 8 s bake: B takes the timer over, due about when B leads.
	eventually(t, 2*time.Minute, "the first wave is healthy and baking", func(ctx context.Context) error {
		o, err := b.Admin.Get(ctx, "rollouts", "web-r2")
		if err != nil {
			return err
		}
		st := o.(*v1.Rollout).Status
		for _, c := range st.Clusters {
			if c.Name == names[0] && st.CurrentWave == 0 && c.Release == "web-r2" && c.Phase == v1.ClusterRolloutHealthy {
				return nil
			}
		}
		return fmt.Errorf("phase %s wave %d: %s", st.Phase, st.CurrentWave, clustersLine(st))
	})
	if strings.Contains(b.Proc.Output(), `msg="rollout runner leads"`) {
		t.Fatalf("B led the rollout runner before A was killed")
	}
	killed := time.Now()
	a.Proc.Kill(t)
	led := b.Proc.WaitOutput(t, `msg="rollout runner leads"`, 40*time.Second)
	b.Proc.WaitOutput(t, `msg="source and release controller leads"`, 40*time.Second)
	var st v1.RolloutStatus
	eventually(t, 2*time.Minute, "rollout web-r2 succeeds on B", func(ctx context.Context) error {
		o, err := b.Admin.Get(ctx, "rollouts", "web-r2")
		if err != nil {
			return err
		}
		st = o.(*v1.Rollout).Status
		if st.Phase != v1.RolloutSucceeded {
			return fmt.Errorf("phase %s (%s) wave %d: %s", st.Phase, st.Message, st.CurrentWave, clustersLine(st))
		}
		return nil
	})
	trail := rolloutAudit(t, b, "web-r2")
	var assignedTo, actions []string
	var resumed time.Time
	for _, s := range trail {
		if resumed.IsZero() && s.Time.After(killed) {
			resumed = s.Time
		}
		for _, act := range s.Actions {
			actions = append(actions, act)
			if rest, ok := strings.CutPrefix(act, "assign web-r2 "); ok {
				assignedTo = append(assignedTo, strings.Split(rest, ",")...)
			}
		}
	}
	slices.Sort(assignedTo)
	if !slices.Equal(assignedTo, names) {
		t.Errorf("assignments of web-r2: %v; want each cluster exactly once: %v", assignedTo, names)
	}
	seen := map[string]bool{}
	for _, act := range actions {
		if seen[act] {
			t.Errorf("action %q was taken twice", act)
		}
		seen[act] = true
	}
	t.Logf("killed %s; the rollout's audit trail:", killed.Format("15:04:05.000"))
	for _, s := range trail {
		t.Logf("  %s events %v actions %v", s.Time.Format("15:04:05.000"), s.Events, s.Actions)
	}
	if resumed.IsZero() {
		t.Fatalf("no transition after the kill")
	}
	t.Logf("leader killed -> B leads: %v; -> first transition by B: %v", led.Sub(killed).Round(time.Millisecond), resumed.Sub(killed).Round(time.Millisecond))
	for _, c := range clusters {
		eventually(t, time.Minute, c.Name+" applies web-r2", func(ctx context.Context) error { return configMapSays(ctx, c, ns, "web-r2") })
	}
}
