package render

import (
	"fmt"
	"io/fs"
	"path"
	"strings"

	"flotilla.dev/flotilla/internal/render/manifest"
	"flotilla.dev/flotilla/internal/render/repofs"
)

// readRaw parses every *.yaml, *.yml and *.json file under dir,
// recursively, in lexical order. Names starting with "." are skipped (.git,
// CI files). Symbolic links to directories are not followed; links to
// files are read through the confined filesystem, so they work inside the
// repository and fail outside it.
func readRaw(f *repofs.FS, dir string) ([]*manifest.Source, error) {
	var docs []*manifest.Source
	var walk func(d string, depth int) error
	walk = func(d string, depth int) error {
		if depth > maxDirDepth {
			return fmt.Errorf("%s: directories nested deeper than %d", d, maxDirDepth)
		}
		ents, err := f.ReadDir(d)
		if err != nil {
			return err
		}
		for _, e := range ents {
			name := e.Name()
			if strings.HasPrefix(name, ".") {
				continue
			}
			p := join(d, name)
			if e.IsDir() {
				if err := walk(p, depth+1); err != nil {
					return err
				}
				continue
			}
			if !isManifestFile(name) || (!e.Type().IsRegular() && e.Type()&fs.ModeSymlink == 0) {
				continue
			}
			data, err := f.ReadFile(p)
			if err != nil {
				return err
			}
			srcs, err := manifest.Parse(p, data)
			if err != nil {
				return err
			}
			docs = append(docs, srcs...)
		}
		return nil
	}
	if err := walk(dir, 0); err != nil {
		return nil, err
	}
	return docs, nil
}

// maxDirDepth bounds directory recursion in plain-YAML paths.
const maxDirDepth = 32

func isManifestFile(name string) bool {
	switch path.Ext(name) {
	case ".yaml", ".yml", ".json":
		return true
	}
	return false
}
