package render

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"flotilla.dev/flotilla/internal/render/manifest"
	"flotilla.dev/flotilla/internal/render/repofs"
)

var kustomizationNames = []string{"kustomization.yaml", "kustomization.yml", "Kustomization"}

// kustomizationFile returns the path of dir's kustomization file, or "".
func kustomizationFile(f *repofs.FS, dir string) string {
	for _, n := range kustomizationNames {
		p := join(dir, n)
		if st, err := f.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	return ""
}

// buildKustomize checks every kustomization reachable from dir, then runs
// kustomize in-process on a filesystem that is the repository and nothing
// else.
func buildKustomize(f *repofs.FS, dir string, lim Limits) ([]*manifest.Source, error) {
	if err := checkKustomization(f, dir, map[string]bool{}, 0); err != nil {
		return nil, err
	}
	opts := krusty.MakeDefaultOptions()
	opts.LoadRestrictions = types.LoadRestrictionsRootOnly
	opts.PluginConfig = types.DisabledPluginConfig()
	k := krusty.MakeKustomizer(opts)
	m, err := k.Run(&kfs{f: f}, virtual(dir))
	if err != nil {
		return nil, fmt.Errorf("%s: kustomize: %w", dir, err)
	}
	out, err := m.AsYaml()
	if err != nil {
		return nil, fmt.Errorf("%s: kustomize: %w", dir, err)
	}
	return manifest.Parse("kustomize build "+dir, out)
}

// maxKustomizeDepth bounds the chain of kustomizations referring to others.
const maxKustomizeDepth = 32

// checkKustomization refuses, with file and line, every reference in a
// kustomization (and in the kustomizations it pulls in) that is absolute,
// remote or outside the repository, and Helm inflation. Kustomize would
// otherwise clone remote bases with the git command or fetch URLs itself.
func checkKustomization(f *repofs.FS, dir string, seen map[string]bool, depth int) error {
	if seen[dir] {
		return nil
	}
	seen[dir] = true
	if depth > maxKustomizeDepth {
		return fmt.Errorf("%s: kustomizations nested deeper than %d", dir, maxKustomizeDepth)
	}
	file := kustomizationFile(f, dir)
	if file == "" {
		return fmt.Errorf("%s: no kustomization file", dir)
	}
	data, err := f.ReadFile(file)
	if err != nil {
		return err
	}
	srcs, err := manifest.Parse(file, data)
	if err != nil {
		return err
	}
	if len(srcs) == 0 {
		return nil
	}
	root := srcs[0].Node()
	if root.Kind != yaml.MappingNode {
		return fmt.Errorf("%s:%d: kustomization is not a mapping", file, root.Line)
	}
	fail := func(n *yaml.Node, field string, err error) error {
		return fmt.Errorf("%s:%d: %s: %w", file, n.Line, field, err)
	}
	check := func(n *yaml.Node, field string, isDirOK bool) error {
		if n.Kind != yaml.ScalarNode {
			return fail(n, field, errors.New("want a path"))
		}
		ref := n.Value
		p, err := repofs.Resolve(dir, ref)
		if err != nil {
			return fail(n, field, err)
		}
		st, err := f.Stat(p)
		if err != nil {
			return fail(n, field, err)
		}
		if st.IsDir() {
			if !isDirOK {
				return fail(n, field, fmt.Errorf("%q is a directory", ref))
			}
			return checkKustomization(f, p, seen, depth+1)
		}
		return nil
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		key, val := root.Content[i].Value, root.Content[i+1]
		switch key {
		case "resources", "bases", "components":
			for _, e := range seq(val) {
				if err := check(e, key, true); err != nil {
					return err
				}
			}
		case "crds", "configurations":
			for _, e := range seq(val) {
				if err := check(e, key, false); err != nil {
					return err
				}
			}
		case "generators", "transformers", "validators":
			for _, e := range seq(val) {
				if e.Kind == yaml.ScalarNode && strings.Contains(e.Value, "\n") {
					continue // inline plugin configuration
				}
				if err := check(e, key, true); err != nil {
					return err
				}
			}
		case "patchesStrategicMerge":
			for _, e := range seq(val) {
				if e.Kind == yaml.ScalarNode && strings.Contains(e.Value, "\n") {
					continue // inline patch
				}
				if err := check(e, key, false); err != nil {
					return err
				}
			}
		case "patches", "patchesJson6902", "replacements":
			for _, e := range seq(val) {
				if p := field(e, "path"); p != nil {
					if err := check(p, key+".path", false); err != nil {
						return err
					}
				}
			}
		case "openapi":
			if p := field(val, "path"); p != nil {
				if err := check(p, "openapi.path", false); err != nil {
					return err
				}
			}
		case "configMapGenerator", "secretGenerator":
			for _, g := range seq(val) {
				for _, fe := range seq(field(g, "files")) {
					ref := fe
					if k, v, ok := strings.Cut(fe.Value, "="); ok && k != "" {
						ref = &yaml.Node{Kind: yaml.ScalarNode, Value: v, Line: fe.Line}
					}
					if err := check(ref, key+".files", false); err != nil {
						return err
					}
				}
				for _, fe := range seq(field(g, "envs")) {
					if err := check(fe, key+".envs", false); err != nil {
						return err
					}
				}
				if fe := field(g, "env"); fe != nil {
					if err := check(fe, key+".env", false); err != nil {
						return err
					}
				}
			}
		case "helmCharts", "helmGlobals", "helmChartInflationGenerator":
			return fail(val, key, fmt.Errorf("%w: Helm inflation through Kustomize; point the service at the chart instead", ErrUnsupported))
		}
	}
	return nil
}

func seq(n *yaml.Node) []*yaml.Node {
	if n == nil {
		return nil
	}
	if n.Kind == yaml.SequenceNode {
		return n.Content
	}
	return nil
}

func field(n *yaml.Node, name string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == name {
			return n.Content[i+1]
		}
	}
	return nil
}

// kfs presents the repository to kustomize as a read-only filesystem whose
// root "/" is the repository root. Writes fail; every read goes through the
// confined, budgeted repofs.FS.
type kfs struct {
	f *repofs.FS
}

var _ filesys.FileSystem = (*kfs)(nil)

var errReadOnly = errors.New("repository is read-only")

// rel maps a kustomize path to a repository path.
func (k *kfs) rel(p string) string {
	p = filepath.ToSlash(filepath.Clean("/" + p))
	p = strings.TrimPrefix(p, "/")
	if p == "" {
		return "."
	}
	return p
}

func (k *kfs) Create(string) (filesys.File, error) { return nil, errReadOnly }
func (k *kfs) Mkdir(string) error                  { return errReadOnly }
func (k *kfs) MkdirAll(string) error               { return errReadOnly }
func (k *kfs) RemoveAll(string) error              { return errReadOnly }
func (k *kfs) WriteFile(string, []byte) error      { return errReadOnly }

func (k *kfs) Open(p string) (filesys.File, error) {
	data, err := k.f.ReadFile(k.rel(p))
	if err != nil {
		return nil, err
	}
	return &kfile{Reader: bytes.NewReader(data), name: path.Base(k.rel(p)), size: int64(len(data))}, nil
}

func (k *kfs) IsDir(p string) bool { return k.f.IsDir(k.rel(p)) }

func (k *kfs) ReadDir(p string) ([]string, error) {
	ents, err := k.f.ReadDir(k.rel(p))
	if err != nil {
		return nil, err
	}
	names := make([]string, len(ents))
	for i, e := range ents {
		names[i] = e.Name()
	}
	return names, nil
}

func (k *kfs) CleanedAbs(p string) (filesys.ConfirmedDir, string, error) {
	abs := filepath.Clean("/" + p)
	if k.IsDir(abs) {
		return filesys.ConfirmedDir(abs), "", nil
	}
	d, file := filepath.Split(abs)
	d = filepath.Clean(d)
	if !k.IsDir(d) {
		return "", "", fmt.Errorf("%s: %w", k.rel(d), repofs.ErrNotExist)
	}
	return filesys.ConfirmedDir(d), file, nil
}

func (k *kfs) Exists(p string) bool { return k.f.Exists(k.rel(p)) }

func (k *kfs) Glob(pattern string) ([]string, error) {
	dir, pat := path.Split(filepath.ToSlash(filepath.Clean("/" + pattern)))
	ents, err := k.f.ReadDir(k.rel(dir))
	if err != nil {
		if errors.Is(err, repofs.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if ok, err := path.Match(pat, e.Name()); err != nil {
			return nil, err
		} else if ok {
			out = append(out, path.Join(dir, e.Name()))
		}
	}
	return out, nil
}

func (k *kfs) ReadFile(p string) ([]byte, error) { return k.f.ReadFile(k.rel(p)) }

func (k *kfs) Walk(p string, fn filepath.WalkFunc) error {
	root := k.rel(p)
	var walk func(rel string) error
	walk = func(rel string) error {
		st, err := k.f.Stat(rel)
		abs := virtual(rel)
		if err != nil {
			return fn(abs, nil, err)
		}
		if err := fn(abs, st, nil); err != nil {
			if errors.Is(err, filepath.SkipDir) && st.IsDir() {
				return nil
			}
			return err
		}
		if !st.IsDir() {
			return nil
		}
		ents, err := k.f.ReadDir(rel)
		if err != nil {
			return err
		}
		for _, e := range ents {
			if err := walk(join(rel, e.Name())); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(root)
}

// virtual maps a repository path to kustomize's view, rooted at "/".
func virtual(rel string) string {
	if rel == "." {
		return "/"
	}
	return "/" + rel
}

// kfile is a file opened for reading through kfs.
type kfile struct {
	*bytes.Reader
	name string
	size int64
}

func (f *kfile) Write([]byte) (int, error) { return 0, errReadOnly }
func (f *kfile) Close() error              { return nil }
func (f *kfile) Stat() (os.FileInfo, error) {
	return fileInfo{name: f.name, size: f.size}, nil
}

type fileInfo struct {
	name string
	size int64
}

func (i fileInfo) Name() string       { return i.name }
func (i fileInfo) Size() int64        { return i.size }
func (i fileInfo) Mode() fs.FileMode  { return 0o444 }
func (i fileInfo) ModTime() time.Time { return time.Time{} }
func (i fileInfo) IsDir() bool        { return false }
func (i fileInfo) Sys() any           { return nil }

var _ io.ReadWriteCloser = (*kfile)(nil)
