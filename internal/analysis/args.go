package analysis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"text/template"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/internal/store"
)

// ClusterData is what templates read as .Cluster.
type ClusterData struct {
	Name   string
	Labels map[string]string
	Vars   map[string]string
}

// TemplateData is the data of every template of a metric (Prometheus
// query, webhook URL, Job manifest) for one cluster: .Args, .Cluster
// (Name, Labels, Vars), .Service, .Release and .Rollout.
type TemplateData struct {
	Args    map[string]string
	Cluster ClusterData
	Service string
	Release string
	Rollout string
}

// resolveArgs merges the arguments given for one cluster with the
// template's declared defaults. Defaults are themselves templates over
// .Cluster, .Service and .Release, like the rollout strategy's argument
// values. A declared argument with neither value nor default, and a given
// argument the template does not declare, are errors naming it.
func resolveArgs(decl []v1.AnalysisArg, given map[string]string, base TemplateData) (map[string]string, error) {
	declared := make(map[string]bool, len(decl))
	out := make(map[string]string, len(decl))
	var errs []error
	for _, a := range decl {
		declared[a.Name] = true
		if v, ok := given[a.Name]; ok {
			out[a.Name] = v
			continue
		}
		if a.Value == nil {
			errs = append(errs, fmt.Errorf("argument %q is required and was not given", a.Name))
			continue
		}
		v, err := render("args."+a.Name, *a.Value, base)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out[a.Name] = v
	}
	for _, k := range sortedKeys(given) {
		if !declared[k] {
			errs = append(errs, fmt.Errorf("argument %q is not declared by the template", k))
		}
	}
	return out, errors.Join(errs...)
}

// render executes text as a Go template over data; a missing key is an
// error so that a typo in `.Args.nmae` cannot silently become "".
func render(name, text string, data TemplateData) (string, error) {
	if !strings.Contains(text, "{{") {
		return text, nil
	}
	t, err := template.New(name).Option("missingkey=error").Parse(text)
	if err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	var b strings.Builder
	if err := t.Execute(&b, data); err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	return b.String(), nil
}

// clusterData reads a cluster's labels and variables from the store; a
// cluster that is not (or no longer) stored has none.
func clusterData(ctx context.Context, st store.Store, name string) (ClusterData, error) {
	cd := ClusterData{Name: name, Labels: map[string]string{}, Vars: map[string]string{}}
	if st == nil {
		return cd, nil
	}
	obj, err := st.Get(ctx, v1.KindCluster, name)
	if errors.Is(err, store.ErrNotFound) {
		return cd, nil
	}
	if err != nil {
		return cd, fmt.Errorf("cluster %s: %w", name, err)
	}
	for k, v := range obj.Labels {
		cd.Labels[k] = v
	}
	var spec v1.ClusterSpec
	if len(obj.Spec) > 0 {
		if err := json.Unmarshal(obj.Spec, &spec); err != nil {
			return cd, fmt.Errorf("cluster %s: spec: %w", name, err)
		}
	}
	for k, v := range spec.Vars {
		cd.Vars[k] = v
	}
	return cd, nil
}
