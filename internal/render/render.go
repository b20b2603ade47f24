package render

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"flotilla.dev/flotilla/internal/render/manifest"
	"flotilla.dev/flotilla/internal/render/repofs"
)

// Type names a renderer.
type Type string

// Renderer types. TypeAuto picks one from what the path holds.
const (
	TypeAuto      Type = "auto"
	TypeRaw       Type = "raw"
	TypeKustomize Type = "kustomize"
	TypeHelm      Type = "helm"
)

// Default limits used when a Limits field is zero.
const (
	DefaultTimeout  = 30 * time.Second
	DefaultMaxDepth = manifest.DefaultMaxDepth
)

// Errors returned by rendering; callers branch on them with errors.Is. File
// and path errors from repofs (repofs.ErrEscapes, repofs.ErrOutside, ...) and
// decoding errors from manifest are wrapped as they are.
var (
	// ErrTimeout means the render ran longer than Limits.Timeout.
	ErrTimeout = errors.New("render timed out")
	// ErrEmpty means the render produced no objects; an empty release is never made.
	ErrEmpty = errors.New("render produced no objects")
	// ErrUnknownType means Request.Type is not one of the Type constants.
	ErrUnknownType = errors.New("unknown renderer type")
	// ErrVariable means a template or substitution names a variable the cluster does not have.
	ErrVariable = errors.New("undefined cluster variable")
	// ErrUnsupported means the input uses a feature Flotilla refuses (remote bases, Helm through Kustomize, ...).
	ErrUnsupported = errors.New("unsupported")
	// ErrChartDependency means a chart dependency is not vendored in charts/.
	ErrChartDependency = errors.New("chart dependency not vendored")
)

// Request says what to render: a path in a repository checkout, how, and
// for which cluster.
type Request struct {
	// FS is the repository checkout. Use os.Root.FS so that symbolic links
	// cannot leave the checkout; all paths below are relative to it.
	FS fs.FS
	// Commit identifies the checkout's content. It is part of the cache key;
	// when empty the Renderer does not cache across calls.
	Commit string
	// Path is the directory to render, relative to the repository root.
	Path string
	// Type is the renderer; "" means TypeAuto.
	Type Type
	// Helm holds Helm options, used only when the path is a chart.
	Helm Helm
	// Namespace is set on namespaced objects that have none.
	Namespace string
	// Vars are the target cluster's variables; RenderFleet sets them per cluster.
	Vars Vars
	// Limits bound the render.
	Limits Limits
}

// Helm holds the options of a Helm render.
type Helm struct {
	// ValuesFiles are values files relative to the chart directory, merged in order.
	ValuesFiles []string `json:"valuesFiles,omitempty"`
	// Values are inline values merged last. String leaves may be Go
	// text/template strings over Vars, such as "{{ .Cluster.Labels.region }}".
	Values map[string]any `json:"values,omitempty"`
	// ReleaseName is the Helm release name; empty means the chart's name.
	ReleaseName string `json:"releaseName,omitempty"`
	// Namespace is the release namespace; empty means Request.Namespace, then "default".
	Namespace string `json:"namespace,omitempty"`
}

// Vars are what templates and substitutions may refer to.
type Vars struct {
	Cluster ClusterVars
}

// ClusterVars are one cluster's name, labels and declared variables.
type ClusterVars struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels,omitempty"`
	Vars   map[string]string `json:"vars,omitempty"`
}

// Limits bound one render. Zero fields take defaults.
type Limits struct {
	// MaxFiles is the number of files read plus directories listed.
	MaxFiles int
	// MaxBytes is the total number of bytes read from the repository.
	MaxBytes int64
	// MaxDepth is the deepest nesting allowed in a manifest or values document.
	MaxDepth int
	// Timeout bounds the wall time of the cluster-independent build and,
	// separately, of each per-cluster render.
	Timeout time.Duration
}

func (l Limits) withDefaults() Limits {
	if l.MaxFiles <= 0 {
		l.MaxFiles = repofs.DefaultMaxFiles
	}
	if l.MaxBytes <= 0 {
		l.MaxBytes = repofs.DefaultMaxBytes
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultMaxDepth
	}
	if l.Timeout <= 0 {
		l.Timeout = DefaultTimeout
	}
	return l
}

func (l Limits) decode() manifest.Limits {
	return manifest.Limits{MaxDepth: l.MaxDepth}
}

// Detect returns the renderer for dir: TypeHelm if it holds Chart.yaml,
// TypeKustomize if it holds a kustomization file, else TypeRaw.
func Detect(fsys fs.FS, dir string) (Type, error) {
	dir, err := repofs.Clean(dir)
	if err != nil {
		return "", fmt.Errorf("render: path %w", err)
	}
	f := repofs.New(fsys, repofs.Limits{})
	return detect(f, dir)
}

func detect(f *repofs.FS, dir string) (Type, error) {
	if !f.IsDir(dir) {
		if _, err := f.Stat(dir); err != nil {
			return "", fmt.Errorf("render: path %w", err)
		}
		return "", fmt.Errorf("render: path %s: not a directory", dir)
	}
	if f.Exists(join(dir, "Chart.yaml")) {
		return TypeHelm, nil
	}
	if kustomizationFile(f, dir) != "" {
		return TypeKustomize, nil
	}
	return TypeRaw, nil
}

func join(dir, name string) string {
	if dir == "." {
		return name
	}
	return dir + "/" + name
}

// runBounded runs fn and returns its result, or ErrTimeout when ctx ends
// first. Rendering libraries do not take a context, so fn keeps running
// after a timeout until it returns; it can only use memory and the budgeted
// filesystem, and its result is dropped.
func runBounded[T any](ctx context.Context, what string, fn func() (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		var r result
		defer func() {
			if p := recover(); p != nil {
				r.err = fmt.Errorf("%s: renderer panicked: %v", what, p)
			}
			done <- r
		}()
		r.v, r.err = fn()
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-ctx.Done():
		var zero T
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return zero, fmt.Errorf("%s: %w", what, ErrTimeout)
		}
		return zero, fmt.Errorf("%s: %w", what, ctx.Err())
	}
}
