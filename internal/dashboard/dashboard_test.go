package dashboard

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/internal/auth"
)

// noBackend satisfies Backend for tests of logic that never reads through it.
type noBackend struct{ Backend }

func newTest(t *testing.T, now time.Time) *Dashboard {
	t.Helper()
	d, err := New(Options{Backend: noBackend{}, Roles: auth.DefaultRoles([]string{"clusters", "services", "rollouts"}),
		SessionKey: []byte(strings.Repeat("k", 32)), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestSessionCookieRejectsTamperingAndExpiry(t *testing.T) {
	now := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	d := newTest(t, now)
	value := d.encodeSession(session{Hash: "abc", Expires: now.Add(time.Hour), Nonce: "n1"})
	req := func(v string) *http.Request {
		r := httptest.NewRequest("GET", "/ui/", nil)
		r.AddCookie(&http.Cookie{Name: sessionCookie, Value: v})
		return r
	}
	s, err := d.readSession(req(value))
	if err != nil || s.Hash != "abc" || s.Nonce != "n1" {
		t.Fatalf("readSession = %+v, %v", s, err)
	}
	forged := d.encodeSession(session{Hash: "other", Expires: now.Add(time.Hour), Nonce: "n1"})
	mixed := strings.Split(forged, ".")[0] + "." + strings.Split(value, ".")[1]
	for name, v := range map[string]string{"another payload under this MAC": mixed, "no MAC": strings.Split(value, ".")[0], "garbage": "x.y"} {
		if _, err := d.readSession(req(v)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	other, _ := New(Options{Backend: noBackend{}, SessionKey: []byte(strings.Repeat("z", 32)), Now: d.opts.Now})
	if _, err := other.readSession(req(value)); err == nil {
		t.Error("a cookie signed with another key was accepted")
	}
	later := newTest(t, now.Add(2*time.Hour))
	if _, err := later.readSession(req(value)); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("expired session: %v", err)
	}
	if d.csrfToken(s) == d.csrfToken(&session{Nonce: "n2"}) {
		t.Error("two sessions share a CSRF token")
	}
}

func TestSafeNext(t *testing.T) {
	for next, want := range map[string]bool{"/ui/": true, "/ui/rollouts/web-1": true, "/ui/?selector=a%3Db": true,
		"//evil.example/ui/": false, "https://evil.example": false, "/ui//evil.example": false, `/ui/\\evil`: false,
		"/api/v1/tokens": false, "/ui/login": false, "/ui/events": false, "": false, "javascript:alert(1)": false} {
		if got := safeNext(next); got != want {
			t.Errorf("safeNext(%q) = %v, want %v", next, got, want)
		}
	}
}

func TestMetricChartEscapesAndDrawsTheThreshold(t *testing.T) {
	v1v, v2v, th := 0.002, 0.02, 0.01
	m := v1.MetricResult{Name: `<script>x</script>`, Threshold: &th, Measurements: []v1.Measurement{
		{Time: time.Unix(0, 0), Value: &v1v, Phase: v1.MeasurementSuccessful},
		{Time: time.Unix(10, 0), Value: &v2v, Phase: `"><script>`, Message: `</title><script>alert(1)</script>`}}}
	svg := string(metricChart(m))
	if strings.Contains(svg, "<script>") {
		t.Errorf("chart contains markup from the metric:\n%s", svg)
	}
	if !strings.Contains(svg, `class="threshold"`) || !strings.Contains(svg, "threshold 0.01") || strings.Count(svg, "<circle") != 2 {
		t.Errorf("chart lacks the threshold line or a measurement:\n%s", svg)
	}
	if !strings.Contains(string(metricChart(v1.MetricResult{Name: "m"})), "no numeric measurement yet") {
		t.Error("an empty chart does not say so")
	}
}

// retryBackend answers RolloutRetryable from a map of rollout names, as the runner's record would.
type retryBackend struct {
	Backend
	retryable map[string]bool
}

func (b retryBackend) RolloutRetryable(_ context.Context, name string) (bool, error) {
	return b.retryable[name], nil
}

func TestButtonsFollowRolesAndPhase(t *testing.T) {
	d := newTest(t, time.Now())
	// halted and failed are retryable by their records; paused (by a person) and succeeded are
	// not, and neither is lying, whose record would take a retry but whose status has ended well.
	d.opts.Backend = retryBackend{retryable: map[string]bool{"halted": true, "failed": true, "rolledback": true, "lying": true}}
	ro := func(name string, phase v1.RolloutPhase) *v1.Rollout {
		return &v1.Rollout{Metadata: v1.ObjectMeta{Name: name}, Status: v1.RolloutStatus{Phase: phase}}
	}
	waiting := &v1.Rollout{Status: v1.RolloutStatus{Phase: v1.RolloutWaitingApproval, WaitingFor: &v1.PendingApproval{Gate: "g", Roles: []string{"deployer"}}}}
	for _, c := range []struct {
		role string
		ro   *v1.Rollout
		want string
	}{
		{"viewer", waiting, ""},
		{"deployer", waiting, "approve promote pause abort rollback"},
		{"admin", waiting, "promote pause abort rollback"}, // not one of the gate's roles
		{"deployer", ro("paused", v1.RolloutPaused), "promote resume abort rollback"},
		{"deployer", ro("halted", v1.RolloutPaused), "promote resume retry abort rollback"},
		{"viewer", ro("halted", v1.RolloutPaused), ""},
		{"deployer", ro("ok", v1.RolloutSucceeded), ""},
		{"deployer", ro("lying", v1.RolloutSucceeded), ""},
		{"deployer", ro("failed", v1.RolloutFailed), "retry"},
		{"deployer", ro("rolledback", v1.RolloutRolledBack), "retry"},
		{"viewer", ro("rolledback", v1.RolloutRolledBack), ""},
		{"deployer", ro("old", v1.RolloutRolledBack), ""}, // no record, or one that disagrees
	} {
		b, err := d.buttons(context.Background(), &auth.Principal{Name: "x", Kind: auth.KindToken, Roles: []string{c.role}}, c.ro)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(b, " "); got != c.want {
			t.Errorf("%s on %s %s: %q, want %q", c.role, c.ro.Metadata.Name, c.ro.Status.Phase, got, c.want)
		}
	}
}

func TestSourceRef(t *testing.T) {
	for want, ref := range map[string]v1.GitRef{"main": {Branch: "main"}, "tag:v1.2": {Tag: "v1.2"}, "semver:>=1 <2": {Semver: ">=1 <2"}, "commit:abc": {Commit: "abc"}} {
		if got := sourceRef(&v1.Source{Spec: v1.SourceSpec{Git: &v1.GitSource{Ref: ref}}}); got != want {
			t.Errorf("sourceRef(%+v) = %q, want %q", ref, got, want)
		}
	}
	if got := sourceRef(&v1.Source{}); got != "" {
		t.Errorf("sourceRef of a source without git = %q", got)
	}
}

// strategyBackend serves services and named strategies from maps.
type strategyBackend struct {
	Backend
	services   map[string]string // service -> its strategy
	strategies map[string]v1.StrategyType
}

func (b strategyBackend) Service(_ context.Context, name string) (*v1.Service, error) {
	return &v1.Service{Metadata: v1.ObjectMeta{Name: name}, Spec: v1.ServiceSpec{Strategy: b.services[name]}}, nil
}

func (b strategyBackend) Strategy(_ context.Context, name string) (*v1.RolloutStrategySpec, error) {
	t, ok := b.strategies[name]
	if !ok {
		return nil, errors.New("not found")
	}
	return &v1.RolloutStrategySpec{Type: t, Waves: []v1.Wave{{Name: "w-" + name}}}, nil
}

// The rollout page names the strategy the runner plans by: inline, else the rollout's, else the
// service's, else all at once.
func TestStrategyOfFollowsThePlanner(t *testing.T) {
	d := newTest(t, time.Now())
	d.opts.Backend = strategyBackend{services: map[string]string{"named": "waves", "gone": "deleted"},
		strategies: map[string]v1.StrategyType{"waves": v1.StrategyRolling, "bg": v1.StrategyBlueGreen}}
	spec := func(service, strategy string, inline *v1.RolloutStrategySpec) *v1.Rollout {
		return &v1.Rollout{Spec: v1.RolloutSpec{Service: service, Strategy: strategy, StrategySpec: inline}}
	}
	for _, c := range []struct {
		ro    *v1.Rollout
		want  strategyView
		waves int
	}{
		{spec("named", "bg", &v1.RolloutStrategySpec{Type: v1.StrategyCanary}), strategyView{Type: "canary", From: "inline"}, 0},
		{spec("named", "bg", nil), strategyView{Type: "blueGreen", Name: "bg", From: "rollout"}, 1},
		{spec("named", "", nil), strategyView{Type: "rolling", Name: "waves", From: "service"}, 1},
		{spec("gone", "", nil), strategyView{Name: "deleted", From: "service", Missing: true}, -1},
		{spec("plain", "", nil), strategyView{Type: "rolling"}, -1},
	} {
		got, sp := d.strategyOf(context.Background(), c.ro)
		if got != c.want {
			t.Errorf("%+v: %+v, want %+v", c.ro.Spec, got, c.want)
		}
		if (sp == nil) != (c.waves < 0) || sp != nil && len(sp.Waves) != c.waves {
			t.Errorf("%+v: spec %+v", c.ro.Spec, sp)
		}
	}
}
