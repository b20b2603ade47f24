package analysis

import (
	"fmt"
	"strings"
	"text/template"

	v1 "flotilla.dev/flotilla/api/v1"
)

// Check finds, without measuring anything, the errors of a template that
// v1 validation cannot see: conditions that do not compile or are not
// boolean, provider templates that do not parse, and JSON paths outside
// the supported subset. It returns nil or a *v1.ValidationError (Kind
// AnalysisTemplate, Name left to the caller) with one field per problem,
// named by path (spec.metrics[0].successCondition), so the server answers
// it like any validation error. The server calls it when a template is
// created, updated or applied, so a broken template is refused then rather
// than found during a rollout.
func Check(spec v1.AnalysisTemplateSpec) error {
	var fields []v1.FieldError
	add := func(path string, err error) {
		fields = append(fields, v1.FieldError{Path: path, Message: err.Error()})
	}
	parse := func(p, text string) {
		if _, err := template.New(p).Option("missingkey=error").Parse(text); err != nil {
			// "template: <path>:1: unclosed action" already names the field.
			msg, _ := strings.CutPrefix(err.Error(), "template: "+p+":")
			fields = append(fields, v1.FieldError{Path: p, Message: "template line " + msg})
		}
	}
	for i, a := range spec.Args {
		if a.Value != nil {
			parse(fmt.Sprintf("spec.args[%d].value", i), *a.Value)
		}
	}
	for i, m := range spec.Metrics {
		p := fmt.Sprintf("spec.metrics[%d]", i)
		// Each condition on its own, so the error names the field; a metric
		// without any is v1 validation's to report.
		if m.SuccessCondition != "" {
			if _, err := compileCondition(m.SuccessCondition); err != nil {
				add(p+".successCondition", fmt.Errorf("%q: %w", m.SuccessCondition, err))
			}
		}
		if m.FailureCondition != "" {
			if _, err := compileCondition(m.FailureCondition); err != nil {
				add(p+".failureCondition", fmt.Errorf("%q: %w", m.FailureCondition, err))
			}
		}
		switch pr := m.Provider; {
		case pr.Prometheus != nil:
			parse(p+".provider.prometheus.address", pr.Prometheus.Address)
			parse(p+".provider.prometheus.query", pr.Prometheus.Query)
		case pr.Webhook != nil:
			parse(p+".provider.webhook.url", pr.Webhook.URL)
			if _, err := parsePath(pr.Webhook.JSONPath); err != nil {
				add(p+".provider.webhook.jsonPath", err)
			}
		case pr.Job != nil:
			parse(p+".provider.job.template", string(pr.Job.Template))
		}
	}
	if len(fields) == 0 {
		return nil
	}
	return &v1.ValidationError{Kind: v1.KindAnalysisTemplate, Fields: fields}
}
