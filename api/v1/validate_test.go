package v1

import (
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// example returns the defaulted example of kind from testdata/examples.yaml.
func example[T any](t *testing.T, kind string) *T {
	t.Helper()
	data, err := os.ReadFile("testdata/examples.yaml")
	if err != nil {
		t.Fatal(err)
	}
	objs, err := LoadYAML("examples.yaml", data)
	if err != nil {
		t.Fatalf("examples: %v", err)
	}
	for _, o := range objs {
		if o.GetTypeMeta().Kind == kind {
			return any(o).(*T)
		}
	}
	t.Fatalf("no %s in examples", kind)
	return nil
}

type vcase[T any] struct {
	name   string
	mutate func(*T)
	want   []string // field paths with a problem; nil = valid
}

// paths runs Validate and returns the field paths it reports.
func paths(t *testing.T, o Object) []string {
	t.Helper()
	err := o.Validate()
	if err == nil {
		return nil
	}
	ve, ok := err.(*ValidationError)
	if !ok {
		t.Fatalf("Validate returned %T (%v), want *ValidationError", err, err)
	}
	if ve.Kind != o.GetTypeMeta().Kind && o.GetTypeMeta().Kind != "" && ve.Kind == "" {
		t.Errorf("ValidationError kind %q", ve.Kind)
	}
	var out []string
	for _, f := range ve.Fields {
		if f.Message == "" {
			t.Errorf("%s: empty message", f.Path)
		}
		out = append(out, f.Path)
	}
	return out
}

func runCases[T any](t *testing.T, kind string, cases []vcase[T]) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := example[T](t, kind)
			c.mutate(o)
			got := paths(t, any(o).(Object))
			want := slices.Clone(c.want)
			slices.Sort(want)
			slices.Sort(got)
			if d := cmp.Diff(want, got, cmpopts.EquateEmpty()); d != "" {
				t.Errorf("problem paths (-want +got):\n%s\nerror: %v", d, any(o).(Object).Validate())
			}
		})
	}
}

func TestValidateCluster(t *testing.T) {
	runCases(t, KindCluster, []vcase[Cluster]{
		{"valid", func(c *Cluster) {}, nil},
		{"name not a DNS label", func(c *Cluster) { c.Metadata.Name = "Prod_EU" }, []string{"metadata.name"}},
		{"name too long", func(c *Cluster) { c.Metadata.Name = strings.Repeat("a", 64) }, []string{"metadata.name"}},
		{"name 63 long", func(c *Cluster) { c.Metadata.Name = strings.Repeat("a", 63) }, nil},
		{"no name", func(c *Cluster) { c.Metadata.Name = "" }, []string{"metadata.name"}},
		{"bad labels", func(c *Cluster) {
			c.Metadata.Labels = map[string]string{"-x": "ok", "good": "a b", "example.com/ok": "v"}
		}, []string{"metadata.labels[-x]", "metadata.labels[good]"}},
		{"bad annotation key", func(c *Cluster) { c.Metadata.Annotations = map[string]string{"a b": "x"} },
			[]string{"metadata.annotations[a b]"}},
		{"wrong type meta", func(c *Cluster) { c.APIVersion, c.Kind = "v1", "Node" }, []string{"apiVersion", "kind"}},
		{"var not an identifier", func(c *Cluster) { c.Spec.Vars["2x"] = "y" }, []string{"spec.vars[2x]"}},
		{"traffic problems", func(c *Cluster) {
			c.Spec.Traffic = []ClusterTraffic{{Router: "", Backend: "", Capacity: -1}, {Router: "edge", Backend: "b"}, {Router: "edge", Backend: "c"}}
		}, []string{"spec.traffic[0].router", "spec.traffic[0].backend", "spec.traffic[0].capacity", "spec.traffic[2].router"}},
		{"status phase", func(c *Cluster) { c.Status.Phase = "Happy" }, []string{"status.phase"}},
	})
}

func TestValidateSource(t *testing.T) {
	runCases(t, KindSource, []vcase[Source]{
		{"valid", func(s *Source) {}, nil},
		{"no git", func(s *Source) { s.Spec.Git = nil }, []string{"spec.git"}},
		{"no ref", func(s *Source) { s.Spec.Git.Ref = GitRef{} }, []string{"spec.git.ref"}},
		{"two refs", func(s *Source) { s.Spec.Git.Ref.Tag = "v1" }, []string{"spec.git.ref"}},
		{"semver", func(s *Source) { s.Spec.Git.Ref = GitRef{Semver: ">=1.2 <2"} }, nil},
		{"commit", func(s *Source) { s.Spec.Git.Ref = GitRef{Commit: "3f2a9c1"} }, nil},
		{"bad commit", func(s *Source) { s.Spec.Git.Ref = GitRef{Commit: "XYZ"} }, []string{"spec.git.ref.commit"}},
		{"bad branch", func(s *Source) { s.Spec.Git.Ref = GitRef{Branch: "a..b"} }, []string{"spec.git.ref.branch"}},
		{"bad tag", func(s *Source) { s.Spec.Git.Ref = GitRef{Tag: "v1 2"} }, []string{"spec.git.ref.tag"}},
		{"no url", func(s *Source) { s.Spec.Git.URL = "" }, []string{"spec.git.url"}},
		{"ftp url", func(s *Source) { s.Spec.Git.URL = "ftp://x/y.git" }, []string{"spec.git.url"}},
		{"https without host", func(s *Source) { s.Spec.Git.URL = "https:///x" }, []string{"spec.git.url"}},
		{"scp-like url", func(s *Source) { s.Spec.Git.URL = "git@github.com:shop/web.git" }, nil},
		{"file url", func(s *Source) { s.Spec.Git.URL = "file:///srv/git/shop" }, nil},
		{"interval not a duration", func(s *Source) { s.Spec.Git.Interval = "often" }, []string{"spec.git.interval"}},
		{"interval too short", func(s *Source) { s.Spec.Git.Interval = "1s" }, []string{"spec.git.interval"}},
		{"negative interval", func(s *Source) { s.Spec.Git.Interval = "-1m" }, []string{"spec.git.interval"}},
		{"bad secretRef", func(s *Source) { s.Spec.Git.SecretRef = "Shop Git" }, []string{"spec.git.secretRef"}},
	})
}

func TestValidateService(t *testing.T) {
	runCases(t, KindService, []vcase[Service]{
		{"valid", func(s *Service) {}, nil},
		{"no source", func(s *Service) { s.Spec.Source = ServiceSource{} }, []string{"spec.source.name"}},
		{"absolute path", func(s *Service) { s.Spec.Source.Path = "/etc" }, []string{"spec.source.path"}},
		{"escaping path", func(s *Service) { s.Spec.Source.Path = "deploy/../../x" }, []string{"spec.source.path"}},
		{"helm and kustomize", func(s *Service) { s.Spec.Kustomize = &KustomizeOptions{} }, []string{"spec"}},
		{"helm values a list", func(s *Service) { s.Spec.Helm.Values = json.RawMessage(`[1]`) }, []string{"spec.helm.values"}},
		{"helm values file escapes", func(s *Service) { s.Spec.Helm.ValuesFiles = []string{"", "../v.yaml"} },
			[]string{"spec.helm.valuesFiles[0]", "spec.helm.valuesFiles[1]"}},
		{"kustomize", func(s *Service) {
			s.Spec.Helm = nil
			s.Spec.Kustomize = &KustomizeOptions{Components: []string{"c/x"}, Substitutions: map[string]string{"ok": "1", "not ok": "2"}}
		}, []string{"spec.kustomize.substitutions[not ok]"}},
		{"no placement", func(s *Service) { s.Spec.Placement.ClusterSelector = nil }, []string{"spec.placement.clusterSelector"}},
		{"every cluster", func(s *Service) { s.Spec.Placement.ClusterSelector = &LabelSelector{} }, nil},
		{"bad selector", func(s *Service) {
			s.Spec.Placement.ClusterSelector = &LabelSelector{
				MatchLabels: map[string]string{"env": "p r o d"},
				MatchExpressions: []LabelSelectorRequirement{
					{Key: "ring", Operator: "In"},
					{Key: "canary", Operator: "Exists", Values: []string{"x"}},
					{Key: "tier", Operator: "Near", Values: []string{"x"}},
					{Key: "a b", Operator: "DoesNotExist"},
					{Key: "region", Operator: "NotIn", Values: []string{"eu", "us"}},
				}}
		}, []string{"spec.placement.clusterSelector.matchLabels[env]",
			"spec.placement.clusterSelector.matchExpressions[0].values",
			"spec.placement.clusterSelector.matchExpressions[1].values",
			"spec.placement.clusterSelector.matchExpressions[2].operator",
			"spec.placement.clusterSelector.matchExpressions[3].key"}},
		{"bad namespace and strategy", func(s *Service) { s.Spec.Namespace, s.Spec.Strategy = "Web", "web_canary" },
			[]string{"spec.namespace", "spec.strategy"}},
	})
}

func TestValidateRolloutStrategy(t *testing.T) {
	rolling := func(s *RolloutStrategy) {
		s.Spec.Type = StrategyRolling
		s.Spec.Waves = s.Spec.Waves[1:]
	}
	runCases(t, KindRolloutStrategy, []vcase[RolloutStrategy]{
		{"valid", func(s *RolloutStrategy) {}, nil},
		{"valid rolling", rolling, nil},
		{"unknown type and policy", func(s *RolloutStrategy) { s.Spec.Type, s.Spec.OnFailure = "yolo", "cry" },
			[]string{"spec.type", "spec.onFailure", "spec.waves[0].steps"}},
		{"no waves", func(s *RolloutStrategy) { s.Spec.Waves = nil }, []string{"spec.waves"}},
		{"wave problems", func(s *RolloutStrategy) {
			w := &s.Spec.Waves[2]
			w.Name, w.Clusters, w.MaxParallel, w.MaxFailures, w.ProgressDeadline = "eu", nil, "0", -1, "soon"
		}, []string{"spec.waves[2].name", "spec.waves[2].clusters", "spec.waves[2].maxParallel",
			"spec.waves[2].maxFailures", "spec.waves[2].progressDeadline"}},
		{"maxParallel over 100%", func(s *RolloutStrategy) { s.Spec.Waves[2].MaxParallel = "150%" }, []string{"spec.waves[2].maxParallel"}},
		{"maxParallel garbage", func(s *RolloutStrategy) { s.Spec.Waves[2].MaxParallel = "some" }, []string{"spec.waves[2].maxParallel"}},
		{"steps outside the canary wave", func(s *RolloutStrategy) {
			s.Spec.Waves[1].Steps = []CanaryStep{{Weight: 10}}
		}, []string{"spec.waves[1].steps"}},
		{"steps in a rolling strategy", func(s *RolloutStrategy) {
			rolling(s)
			s.Spec.Waves[0].Steps = []CanaryStep{{Weight: 10}}
		}, []string{"spec.waves[0].steps"}},
		{"bad weights", func(s *RolloutStrategy) {
			s.Spec.Waves[0].Steps = []CanaryStep{{Weight: 0}, {Weight: 50}, {Weight: 40}, {Weight: 101, Bake: "x"}}
		}, []string{"spec.waves[0].steps[0].weight", "spec.waves[0].steps[2].weight", "spec.waves[0].steps[3].weight",
			"spec.waves[0].steps[3].bake"}},
		{"canary without steps", func(s *RolloutStrategy) { s.Spec.Waves[0].Steps = nil }, []string{"spec.waves[0].steps"}},
		{"drain without router", func(s *RolloutStrategy) { rolling(s); s.Spec.TrafficRouter = "" }, []string{"spec.trafficRouter"}},
		{"windows", func(s *RolloutStrategy) {
			s.Spec.Windows = []TimeWindow{{Allow: "Mon 09:00-10:00", Deny: "Sun"}, {}, {Allow: "Funday"},
				{Deny: "2026-13-01"}, {Allow: "09:00-17:00", TimeZone: "Mars/Olympus"}, {Allow: "Sat,Sun"}, {Deny: "22:00-06:00"}}
		}, []string{"spec.windows[0]", "spec.windows[1]", "spec.windows[2].allow", "spec.windows[3].deny", "spec.windows[4].timeZone"}},
		{"gates", func(s *RolloutStrategy) {
			s.Spec.Waves[1].Before = []Gate{{}, {Bake: "1m", Approval: &ApprovalGate{Roles: []string{"sre"}}},
				{Approval: &ApprovalGate{}}, {Analysis: &AnalysisRef{Args: map[string]string{"ok": "1", "no-t": "2"}}}}
		}, []string{"spec.waves[1].before[0]", "spec.waves[1].before[1]", "spec.waves[1].before[2].approval.roles",
			"spec.waves[1].before[3].analysis.template", "spec.waves[1].before[3].analysis.args[no-t]"}},
		{"valid blue/green", func(s *RolloutStrategy) {
			s.Spec.Type, s.Spec.Waves = StrategyBlueGreen, nil
			s.Spec.BlueGreen = &BlueGreenStrategy{Groups: BlueGreenGroups{
				Blue: &LabelSelector{MatchLabels: map[string]string{"color": "blue"}}, Green: &LabelSelector{MatchLabels: map[string]string{"color": "green"}}},
				Verify: []Gate{{Analysis: &AnalysisRef{Template: "smoke"}}}, Hold: "1h", AfterHold: AfterHoldUpdate}
		}, nil},
		{"blue/green problems", func(s *RolloutStrategy) {
			s.Spec.Type = StrategyBlueGreen
			s.Spec.TrafficRouter = ""
			s.Spec.BlueGreen = &BlueGreenStrategy{Hold: "forever", AfterHold: "delete"}
		}, []string{"spec.waves", "spec.blueGreen.groups.blue", "spec.blueGreen.groups.green", "spec.blueGreen.hold",
			"spec.blueGreen.afterHold", "spec.trafficRouter", "spec.waves[0].steps"}},
		{"blue/green block without the type", func(s *RolloutStrategy) { s.Spec.BlueGreen = &BlueGreenStrategy{} },
			[]string{"spec.blueGreen", "spec.blueGreen.groups.blue", "spec.blueGreen.groups.green"}},
		{"blue/green type without the block", func(s *RolloutStrategy) { s.Spec.Type, s.Spec.Waves = StrategyBlueGreen, nil },
			[]string{"spec.blueGreen"}},
	})
}

func TestValidateAnalysisTemplate(t *testing.T) {
	runCases(t, KindAnalysisTemplate, []vcase[AnalysisTemplate]{
		{"valid", func(a *AnalysisTemplate) {}, nil},
		{"no metrics", func(a *AnalysisTemplate) { a.Spec.Metrics = nil }, []string{"spec.metrics"}},
		{"args", func(a *AnalysisTemplate) { a.Spec.Args = []AnalysisArg{{Name: "x"}, {Name: "x"}, {Name: "a-b"}} },
			[]string{"spec.args[1].name", "spec.args[2].name"}},
		{"metric numbers", func(a *AnalysisTemplate) {
			m := &a.Spec.Metrics[0]
			m.Count, m.FailureLimit, m.InconclusiveLimit = 0, -1, -2
		}, []string{"spec.metrics[0].count", "spec.metrics[0].failureLimit", "spec.metrics[0].inconclusiveLimit"}},
		{"count without interval", func(a *AnalysisTemplate) { a.Spec.Metrics[0].Interval = "" }, []string{"spec.metrics[0].interval"}},
		{"duplicate metric", func(a *AnalysisTemplate) { a.Spec.Metrics = append(a.Spec.Metrics, a.Spec.Metrics[0]) },
			[]string{"spec.metrics[1].name"}},
		{"no provider", func(a *AnalysisTemplate) { a.Spec.Metrics[0].Provider = MetricProvider{} }, []string{"spec.metrics[0].provider"}},
		{"two providers", func(a *AnalysisTemplate) { a.Spec.Metrics[0].Provider.Health = &HealthMetric{} },
			[]string{"spec.metrics[0].provider"}},
		{"prometheus fields", func(a *AnalysisTemplate) {
			a.Spec.Metrics[0].Provider.Prometheus = &PrometheusMetric{Address: "127.0.0.1:9090"}
		}, []string{"spec.metrics[0].provider.prometheus.address", "spec.metrics[0].provider.prometheus.query"}},
		{"no condition", func(a *AnalysisTemplate) { a.Spec.Metrics[0].SuccessCondition = "" }, []string{"spec.metrics[0]"}},
		{"webhook", func(a *AnalysisTemplate) {
			a.Spec.Metrics[0].Provider = MetricProvider{Webhook: &WebhookMetric{URL: "ftp://x"}}
		}, []string{"spec.metrics[0].provider.webhook.url"}},
		{"health needs no condition", func(a *AnalysisTemplate) {
			a.Spec.Metrics[0].Provider = MetricProvider{Health: &HealthMetric{}}
			a.Spec.Metrics[0].SuccessCondition = ""
		}, nil},
		{"job template not a mapping", func(a *AnalysisTemplate) {
			a.Spec.Metrics[0].Provider = MetricProvider{Job: &JobMetric{Template: json.RawMessage(`"job"`)}}
		}, []string{"spec.metrics[0].provider.job.template"}},
	})
}

func TestValidateRelease(t *testing.T) {
	runCases(t, KindRelease, []vcase[Release]{
		{"valid", func(r *Release) {}, nil},
		{"short sha", func(r *Release) { r.Spec.Commit.SHA = "3f2a9c1" }, []string{"spec.commit.sha"}},
		{"no sha or service", func(r *Release) { r.Spec.Commit.SHA, r.Spec.Service = "", "" },
			[]string{"spec.commit.sha", "spec.service"}},
		{"nested service spec", func(r *Release) { r.Spec.ServiceSpec.Placement.ClusterSelector = nil },
			[]string{"spec.serviceSpec.placement.clusterSelector"}},
		{"bundles", func(r *Release) {
			r.Status.Bundles = append(r.Status.Bundles, ReleaseBundle{Digest: "md5:abc", Clusters: []string{"prod-eu-1", "Bad"}})
		}, []string{"status.bundles[1].digest", "status.bundles[1].clusters[0]", "status.bundles[1].clusters[1]"}},
		{"phase", func(r *Release) { r.Status.Phase = "Done" }, []string{"status.phase"}},
	})
}

func TestValidateRollout(t *testing.T) {
	runCases(t, KindRollout, []vcase[Rollout]{
		{"valid", func(r *Rollout) {}, nil},
		{"missing references", func(r *Rollout) { r.Spec.Service, r.Spec.Release = "", "" },
			[]string{"spec.service", "spec.release"}},
		{"strategy twice", func(r *Rollout) {
			r.Spec.StrategySpec = &RolloutStrategySpec{Type: StrategyRolling, OnFailure: OnFailurePause,
				Waves: []Wave{{Name: "all", Clusters: &LabelSelector{}}}}
		}, []string{"spec"}},
		{"inline strategy", func(r *Rollout) {
			r.Spec.Strategy = ""
			r.Spec.StrategySpec = &RolloutStrategySpec{Type: StrategyRolling, OnFailure: OnFailurePause,
				Waves: []Wave{{Name: "All", Clusters: &LabelSelector{}}}}
		}, []string{"spec.strategySpec.waves[0].name"}},
		{"status", func(r *Rollout) {
			r.Status.Phase, r.Status.CurrentWave = "Winning", -2
			r.Status.Clusters[0].Phase = "Meh"
			r.Status.Gates[0].Phase = ""
			r.Status.Traffic[0].Weight = 101
		}, []string{"status.phase", "status.currentWave", "status.clusters[0].phase", "status.gates[0].phase",
			"status.traffic[0].weight"}},
	})
}

func TestValidationErrorMessage(t *testing.T) {
	s := example[Service](t, KindService)
	s.Spec.Source.Name = ""
	s.Spec.Namespace = "Web"
	err := s.Validate()
	want := `Service web: spec.source.name: required; spec.namespace: "Web" is not a DNS label: ` +
		`a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')`
	if err == nil || err.Error() != want {
		t.Errorf("Error() =\n%v\nwant\n%s", err, want)
	}
	st := example[RolloutStrategy](t, KindRolloutStrategy)
	st.Spec.Waves[2].MaxParallel = "0"
	if got := st.Validate().Error(); got != `RolloutStrategy web-canary: spec.waves[2].maxParallel: must be greater than 0, got 0` {
		t.Errorf("maxParallel message: %s", got)
	}
}

func TestDefaults(t *testing.T) {
	svc := &Service{Metadata: ObjectMeta{Name: "web"}}
	svc.Default()
	if svc.APIVersion != APIVersion || svc.Kind != KindService || svc.Spec.Namespace != "web" ||
		svc.Spec.Sync.Prune == nil || !*svc.Spec.Sync.Prune || svc.Spec.Sync.SelfHeal == nil || *svc.Spec.Sync.SelfHeal {
		t.Errorf("Service defaults: %+v", svc)
	}
	off := &Service{Spec: ServiceSpec{Sync: SyncPolicy{Prune: boolPtr(false)}}}
	off.Default()
	if *off.Spec.Sync.Prune {
		t.Errorf("an explicit prune: false was overwritten")
	}
	st := &RolloutStrategy{Spec: RolloutStrategySpec{Waves: []Wave{{Name: "a"}}, Windows: []TimeWindow{{Allow: "Mon"}}}}
	st.Default()
	if st.Spec.Type != StrategyRolling || st.Spec.OnFailure != OnFailureRollback || st.Spec.Waves[0].MaxParallel != "1" ||
		st.Spec.Waves[0].ProgressDeadline != "10m" || st.Spec.Windows[0].TimeZone != "UTC" {
		t.Errorf("RolloutStrategy defaults: %+v", st.Spec)
	}
	bg := &RolloutStrategy{Spec: RolloutStrategySpec{BlueGreen: &BlueGreenStrategy{}}}
	bg.Default()
	if bg.Spec.Type != StrategyBlueGreen || bg.Spec.BlueGreen.AfterHold != AfterHoldUpdate {
		t.Errorf("blue/green defaults: %+v", bg.Spec)
	}
	src := &Source{Spec: SourceSpec{Git: &GitSource{}}}
	src.Default()
	if src.Spec.Git.Interval != "1m" {
		t.Errorf("Source interval default %q", src.Spec.Git.Interval)
	}
	ro := &Rollout{}
	ro.Default()
	if ro.Status.Phase != RolloutPending || ro.Status.CurrentWave != -1 || ro.Status.CurrentStep != -1 {
		t.Errorf("Rollout status defaults: %+v", ro.Status)
	}
	at := &AnalysisTemplate{Spec: AnalysisTemplateSpec{Metrics: []Metric{{Name: "m"}}}}
	at.Default()
	if at.Spec.Metrics[0].Count != 1 {
		t.Errorf("metric count default %d", at.Spec.Metrics[0].Count)
	}
	cl := &Cluster{Spec: ClusterSpec{Traffic: []ClusterTraffic{{Router: "edge"}}}}
	cl.Default()
	if cl.Spec.Traffic[0].Capacity != DefaultCapacity {
		t.Errorf("capacity default %d", cl.Spec.Traffic[0].Capacity)
	}
}

// TestDefaultIdempotent defaults every example twice and expects no change
// the second time.
func TestDefaultIdempotent(t *testing.T) {
	data, err := os.ReadFile("testdata/examples.yaml")
	if err != nil {
		t.Fatal(err)
	}
	objs, err := DecodeYAML("examples.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != len(Kinds()) {
		t.Fatalf("examples hold %d objects, want one per kind (%d)", len(objs), len(Kinds()))
	}
	for _, o := range objs {
		o.Default()
		once, _ := json.Marshal(o)
		o.Default()
		twice, _ := json.Marshal(o)
		if d := cmp.Diff(string(once), string(twice)); d != "" {
			t.Errorf("%s: second Default changed (-once +twice):\n%s", o.GetTypeMeta().Kind, d)
		}
	}
}

func TestLookupKind(t *testing.T) {
	for _, k := range Kinds() {
		for _, name := range append([]string{k.Kind, strings.ToLower(k.Kind), k.Plural, strings.ToUpper(k.Plural)}, k.ShortNames...) {
			got, ok := LookupKind(name)
			if !ok || got.Kind != k.Kind {
				t.Errorf("LookupKind(%q) = %q, %v; want %q", name, got.Kind, ok, k.Kind)
			}
		}
		o := k.New()
		o.Default()
		if o.GetTypeMeta().Kind != k.Kind || o.GetTypeMeta().APIVersion != APIVersion {
			t.Errorf("%s: New().Default() gives type meta %+v", k.Kind, *o.GetTypeMeta())
		}
	}
	if _, ok := LookupKind("deployment"); ok {
		t.Errorf("LookupKind(deployment) found a kind")
	}
}
