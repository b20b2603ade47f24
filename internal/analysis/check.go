package analysis

import (
	"errors"
	"fmt"
	"text/template"

	v1 "flotilla.dev/flotilla/api/v1"
)

// Check finds, without measuring anything, the errors of a template that
// v1 validation cannot see: conditions that do not compile or are not
// boolean, provider templates that do not parse, and JSON paths outside
// the supported subset. Errors are named by field path
// (spec.metrics[0].successCondition). The server can call it when a
// template is applied, so a broken template is refused then rather than
// found during a rollout.
func Check(spec v1.AnalysisTemplateSpec) error {
	var errs []error
	parse := func(p, text string) {
		if _, err := template.New(p).Option("missingkey=error").Parse(text); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p, err))
		}
	}
	for i, a := range spec.Args {
		if a.Value != nil {
			parse(fmt.Sprintf("spec.args[%d].value", i), *a.Value)
		}
	}
	for i, m := range spec.Metrics {
		p := fmt.Sprintf("spec.metrics[%d]", i)
		if _, err := compileConditions(m); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p, err))
		}
		switch pr := m.Provider; {
		case pr.Prometheus != nil:
			parse(p+".provider.prometheus.address", pr.Prometheus.Address)
			parse(p+".provider.prometheus.query", pr.Prometheus.Query)
		case pr.Webhook != nil:
			parse(p+".provider.webhook.url", pr.Webhook.URL)
			if _, err := parsePath(pr.Webhook.JSONPath); err != nil {
				errs = append(errs, fmt.Errorf("%s.provider.webhook.jsonPath: %w", p, err))
			}
		case pr.Job != nil:
			parse(p+".provider.job.template", string(pr.Job.Template))
		}
	}
	return errors.Join(errs...)
}
