// Package render turns a path in a repository checkout into canonical
// bundles (package bundle), one per distinct set of cluster variables.
//
// # Renderers
//
// The renderer is chosen by Request.Type or, for TypeAuto, by what the path
// holds: a Chart.yaml makes it a Helm chart, a kustomization.yaml,
// kustomization.yml or Kustomization file a Kustomize directory, anything
// else plain YAML (every *.yaml, *.yml and *.json file below the path,
// recursively and in lexical order, multi-document; names starting with "."
// are skipped; kind: List is expanded).
//
//   - Kustomize runs in-process (sigs.k8s.io/kustomize/api/krusty) on a
//     read-only filesystem whose root is the repository. Before the build
//     every kustomization reachable from the path is checked: references
//     that are absolute, remote (URLs, scp-like, github.com/...) or that
//     climb out of the repository are refused with the file and line, as is
//     Helm inflation through Kustomize. Plugins are disabled.
//   - Helm runs in-process (helm.sh/helm/v4, client-side, as `helm template
//     --include-crds --skip-tests`): the chart's files are read through the
//     same confined filesystem, .helmignore is honoured, dependencies must be
//     vendored in charts/, values files are relative to the chart directory
//     and must stay in the repository. Hooks other than test hooks are kept
//     as ordinary objects (Flotilla applies a bundle, it has no hook
//     phases); NOTES.txt is dropped.
//
// # Per-cluster variables
//
// One syntax per place where a cluster is named:
//
//   - Helm inline values (Helm.Values): string leaves are Go text/template
//     strings over {{ .Cluster.Name }}, {{ .Cluster.Labels.KEY }} and
//     {{ .Cluster.Vars.KEY }}; a missing key is an error. Values files are
//     not templated (they are the chart author's, and may hold "{{" for tpl).
//   - Plain YAML and Kustomize output: ${cluster.name},
//     ${cluster.labels.KEY} and ${cluster.vars.KEY} in string scalars,
//     substituted after parsing, so a value can never inject YAML structure.
//     An unquoted scalar that is substituted is typed again ("replicas:
//     ${cluster.vars.replicas}" becomes a number); a quoted one stays a
//     string. $${cluster.name} is the literal text. Other ${...} forms are
//     left alone. A variable the cluster lacks is an error.
//
// # Sharing renders
//
// A render has a cluster-independent build (reading files, running
// Kustomize, loading the chart) and a per-cluster step. The build records
// which variables the input refers to; a cluster's effective variables are
// its variables projected on those references. Renderer caches builds by
// (commit, path, spec) and bundles by (commit, path, spec, digest of the
// effective variables), so clusters whose effective variables are equal
// share one render: RenderFleet over 10,000 clusters with 10 distinct
// effective variable sets performs 10 renders. Caching across calls needs
// Request.Commit; the caller guarantees that one commit means one content.
//
// # Limits and errors
//
// Limits bound files opened, bytes read, document nesting and wall time; a
// render never returns an empty bundle (ErrEmpty). Errors name the file and,
// where there is one, the line ("deploy/app.yaml:12: ..."). Renders that
// time out return ErrTimeout at once; the Kustomize and Helm libraries take
// no context, so the abandoned work finishes in the background, bounded by
// the file and byte budgets, and its result is dropped.
package render
