package render

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"helm.sh/helm/v4/pkg/action"
	ci "helm.sh/helm/v4/pkg/chart"
	"helm.sh/helm/v4/pkg/chart/loader/archive"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/ignore"
	release "helm.sh/helm/v4/pkg/release/v1"

	"flotilla.dev/flotilla/internal/render/manifest"
	"flotilla.dev/flotilla/internal/render/repofs"
)

// helmBase is what a Helm render needs that does not depend on the
// cluster: the chart's files, read once, and the merged values files.
type helmBase struct {
	dir    string
	files  []*archive.BufferedFile
	values map[string]any
	name   string
}

// readChart reads the chart at dir through the confined filesystem, honours
// .helmignore, checks that dependencies are vendored and merges the values
// files.
func readChart(f *repofs.FS, dir string, spec Helm, lim Limits) (*helmBase, error) {
	var rules *ignore.Rules
	if data, err := f.ReadFile(join(dir, ignore.HelmIgnore)); err == nil {
		rules, err = ignore.Parse(strings.NewReader(string(data)))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", join(dir, ignore.HelmIgnore), err)
		}
	} else if !errors.Is(err, repofs.ErrNotExist) {
		return nil, err
	} else {
		rules = ignore.Empty()
	}
	rules.AddDefaults()

	b := &helmBase{dir: dir}
	var walk func(rel string, depth int) error
	walk = func(rel string, depth int) error {
		if depth > maxDirDepth {
			return fmt.Errorf("%s: directories nested deeper than %d", join(dir, rel), maxDirDepth)
		}
		full := dir
		if rel != "" {
			full = join(dir, rel)
		}
		ents, err := f.ReadDir(full)
		if err != nil {
			return err
		}
		for _, e := range ents {
			name := e.Name()
			r := name
			if rel != "" {
				r = rel + "/" + name
			}
			info, err := e.Info()
			if err != nil {
				return fmt.Errorf("%s: %w", join(dir, r), err)
			}
			if rules.Ignore(r, info) {
				continue
			}
			if e.IsDir() {
				if err := walk(r, depth+1); err != nil {
					return err
				}
				continue
			}
			data, err := f.ReadFile(join(dir, r))
			if err != nil {
				return err
			}
			b.files = append(b.files, &archive.BufferedFile{Name: r, Data: data})
		}
		return nil
	}
	if err := walk("", 0); err != nil {
		return nil, err
	}
	ch, err := loader.LoadFiles(b.files)
	if err != nil {
		return nil, fmt.Errorf("%s: chart: %w", dir, err)
	}
	if err := checkDependencies(ch); err != nil {
		return nil, fmt.Errorf("%s: %w", join(dir, "Chart.yaml"), err)
	}
	b.name = ch.Name()

	b.values = map[string]any{}
	for _, vf := range spec.ValuesFiles {
		p, err := repofs.Resolve(dir, vf)
		if err != nil {
			return nil, fmt.Errorf("helm values file: %w", err)
		}
		data, err := f.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("helm values file: %w", err)
		}
		docs, err := manifest.Decode(p, data, lim.decode())
		if err != nil {
			return nil, fmt.Errorf("helm values file: %w", err)
		}
		for _, d := range docs {
			b.values = loader.MergeMaps(b.values, d.Object)
		}
	}
	return b, nil
}

func checkDependencies(ch *chart.Chart) error {
	if ch.Metadata == nil {
		return nil
	}
	reqs := make([]ci.Dependency, 0, len(ch.Metadata.Dependencies))
	for _, d := range ch.Metadata.Dependencies {
		reqs = append(reqs, d)
	}
	if err := action.CheckDependencies(ch, reqs); err != nil {
		return fmt.Errorf("%w: %w", ErrChartDependency, err)
	}
	return nil
}

// render runs the chart for one cluster: the inline values are templated,
// merged over the values files, and the chart rendered client-side as
// `helm template --include-crds --skip-tests` does. The chart is loaded
// again from the buffered files because rendering mutates it.
func (b *helmBase) render(ctx context.Context, spec Helm, ns string, c ClusterVars) ([]*manifest.Source, error) {
	inline, err := templateValues(spec.Values, c)
	if err != nil {
		return nil, err
	}
	vals := loader.MergeMaps(b.values, inline)
	ch, err := loader.LoadFiles(b.files)
	if err != nil {
		return nil, fmt.Errorf("%s: chart: %w", b.dir, err)
	}
	cfg := action.NewConfiguration(action.ConfigurationSetLogger(slog.DiscardHandler))
	inst := action.NewInstall(cfg)
	inst.DryRunStrategy = action.DryRunClient
	inst.Replace = true
	inst.IncludeCRDs = true
	inst.ReleaseName = spec.ReleaseName
	if inst.ReleaseName == "" {
		inst.ReleaseName = b.name
	}
	inst.Namespace = spec.Namespace
	if inst.Namespace == "" {
		inst.Namespace = ns
	}
	if inst.Namespace == "" {
		inst.Namespace = "default"
	}
	out, err := inst.RunWithContext(ctx, ch, vals)
	if err != nil {
		return nil, fmt.Errorf("%s: helm: %w", b.dir, err)
	}
	rel, ok := out.(*release.Release)
	if !ok {
		return nil, fmt.Errorf("%s: helm: unexpected release type %T", b.dir, out)
	}
	var docs []*manifest.Source
	for _, part := range splitSources(rel.Manifest) {
		srcs, err := manifest.Parse(part.file, []byte(part.text))
		if err != nil {
			return nil, err
		}
		docs = append(docs, srcs...)
	}
	for _, h := range rel.Hooks {
		if isTestHook(h) {
			continue
		}
		srcs, err := manifest.Parse(h.Path+" (hook)", []byte(h.Manifest))
		if err != nil {
			return nil, err
		}
		docs = append(docs, srcs...)
	}
	return docs, nil
}

func isTestHook(h *release.Hook) bool {
	for _, e := range h.Events {
		if e == release.HookTest {
			return true
		}
	}
	return false
}

type sourcePart struct{ file, text string }

// splitSources splits a rendered Helm manifest at its "# Source:" comments
// so that errors name the template that produced a document.
func splitSources(m string) []sourcePart {
	var parts []sourcePart
	cur := sourcePart{file: "helm output"}
	var b strings.Builder
	flush := func() {
		if strings.TrimSpace(b.String()) != "" {
			cur.text = b.String()
			parts = append(parts, cur)
		}
		b.Reset()
	}
	for line := range strings.Lines(m) {
		if s, ok := strings.CutPrefix(line, "# Source: "); ok {
			flush()
			cur = sourcePart{file: strings.TrimSpace(s)}
			b.WriteString("\n") // keep line numbers relative to the template's output
			continue
		}
		b.WriteString(line)
	}
	flush()
	return parts
}
