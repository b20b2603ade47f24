package v1

import (
	"bytes"
	"encoding/json"
	"net/url"
)

// AnalysisTemplate describes how to judge a release on a cluster: metrics
// measured a number of times, each result checked by a condition.
type AnalysisTemplate struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta             `json:"metadata"`
	Spec     AnalysisTemplateSpec   `json:"spec"`
	Status   AnalysisTemplateStatus `json:"status,omitempty"`
}

// AnalysisTemplateSpec lists the template's arguments and metrics.
type AnalysisTemplateSpec struct {
	Args    []AnalysisArg `json:"args,omitempty"`
	Metrics []Metric      `json:"metrics"`
}

// AnalysisArg declares an argument, read as {{ .Args.name }}; without a
// Value the caller must supply it.
type AnalysisArg struct {
	Name  string  `json:"name"`
	Value *string `json:"value,omitempty"`
}

// Metric is one measurement repeated Count times, Interval apart. A result
// failing FailureCondition (or not meeting SuccessCondition) is a failure;
// more than FailureLimit failures fail the analysis; more than
// InconclusiveLimit inconclusive results pause it for a person. Conditions
// are CEL expressions over `result`.
type Metric struct {
	Name              string         `json:"name"`
	Interval          Duration       `json:"interval,omitempty"`
	Count             int            `json:"count,omitempty"`
	FailureLimit      int            `json:"failureLimit,omitempty"`
	InconclusiveLimit int            `json:"inconclusiveLimit,omitempty"`
	SuccessCondition  string         `json:"successCondition,omitempty"`
	FailureCondition  string         `json:"failureCondition,omitempty"`
	Provider          MetricProvider `json:"provider"`
	// InitialDelay postpones the first measurement, for example until a
	// rate window holds data from after a traffic step.
	InitialDelay Duration `json:"initialDelay,omitempty"`
}

// MetricProvider says where a metric's result comes from; exactly one field
// is set.
type MetricProvider struct {
	Prometheus *PrometheusMetric `json:"prometheus,omitempty"`
	Webhook    *WebhookMetric    `json:"webhook,omitempty"`
	Health     *HealthMetric     `json:"health,omitempty"`
	Job        *JobMetric        `json:"job,omitempty"`
}

// PrometheusMetric runs an instant PromQL query (a Go template).
type PrometheusMetric struct {
	Address string `json:"address"`
	Query   string `json:"query"`
}

// WebhookMetric GETs URL and takes the value at JSONPath as the result.
type WebhookMetric struct {
	URL      string `json:"url"`
	JSONPath string `json:"jsonPath,omitempty"`
}

// HealthMetric uses the health the agent reports for the service's objects.
type HealthMetric struct{}

// JobMetric runs a Kubernetes Job in the cluster; it succeeds if the Job
// does. Template is the Job manifest.
type JobMetric struct {
	Template json.RawMessage `json:"template"`
}

// AnalysisTemplateStatus is empty for now; it keeps the object's shape.
type AnalysisTemplateStatus struct {
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
}

// GetTypeMeta implements Object.
func (a *AnalysisTemplate) GetTypeMeta() *TypeMeta { return &a.TypeMeta }

// GetMetadata implements Object.
func (a *AnalysisTemplate) GetMetadata() *ObjectMeta { return &a.Metadata }

// Default implements Object.
func (a *AnalysisTemplate) Default() {
	a.TypeMeta.setDefaults(KindAnalysisTemplate)
	for i := range a.Spec.Metrics {
		if a.Spec.Metrics[i].Count == 0 {
			a.Spec.Metrics[i].Count = 1
		}
	}
}

// Validate implements Object.
func (a *AnalysisTemplate) Validate() error {
	v := newValidator(KindAnalysisTemplate, &a.Metadata)
	a.TypeMeta.validate(v, KindAnalysisTemplate)
	a.Metadata.validate(v)
	args := map[string]bool{}
	for i, arg := range a.Spec.Args {
		p := index("spec.args", i)
		if !identifierRE.MatchString(arg.Name) {
			v.add(p+".name", "%q is not an identifier", arg.Name)
		} else if args[arg.Name] {
			v.add(p+".name", "duplicate argument %q", arg.Name)
		}
		args[arg.Name] = true
	}
	if len(a.Spec.Metrics) == 0 {
		v.add("spec.metrics", "must have at least one metric")
	}
	names := map[string]bool{}
	for i, m := range a.Spec.Metrics {
		p := index("spec.metrics", i)
		v.dnsLabel(p+".name", m.Name)
		if m.Name != "" && names[m.Name] {
			v.add(p+".name", "duplicate metric %q", m.Name)
		}
		names[m.Name] = true
		v.duration(p+".interval", m.Interval, m.Count > 1)
		v.duration(p+".initialDelay", m.InitialDelay, false)
		if m.Count < 1 {
			v.add(p+".count", "must be greater than 0, got %d", m.Count)
		}
		v.nonNegative(p+".failureLimit", m.FailureLimit)
		v.nonNegative(p+".inconclusiveLimit", m.InconclusiveLimit)
		m.Provider.validate(v, p+".provider")
		if m.Provider.Health == nil && m.Provider.Job == nil && m.SuccessCondition == "" && m.FailureCondition == "" {
			v.add(p, "needs a successCondition or a failureCondition")
		}
	}
	return v.err()
}

func (mp MetricProvider) validate(v *validator, p string) {
	set := 0
	if pr := mp.Prometheus; pr != nil {
		set++
		httpURL(v, p+".prometheus.address", pr.Address)
		if pr.Query == "" {
			v.add(p+".prometheus.query", "required")
		}
	}
	if w := mp.Webhook; w != nil {
		set++
		httpURL(v, p+".webhook.url", w.URL)
	}
	if mp.Health != nil {
		set++
	}
	if j := mp.Job; j != nil {
		set++
		t := bytes.TrimSpace(j.Template)
		if len(t) == 0 || t[0] != '{' {
			v.add(p+".job.template", "must be a Job manifest (a mapping)")
		}
	}
	if set != 1 {
		v.add(p, "must set exactly one of prometheus, webhook, health or job, has %d", set)
	}
}

// httpURL requires an absolute http or https URL.
func httpURL(v *validator, p, raw string) {
	if raw == "" {
		v.add(p, "required")
		return
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		v.add(p, "%q is not an http or https URL", raw)
	}
}
