package cli

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/client"
)

// errNothingWritten marks apply failures after which the store is unchanged.
var errNothingWritten = errors.New("nothing was written")

func newApplyCmd(g *globals) *cobra.Command {
	var files []string
	cmd := &cobra.Command{
		Use:   "apply -f FILE|DIR|-",
		Short: "Create or update the objects in YAML files, all or nothing",
		Long: `Create or update every object in the given files: a file, a directory (searched recursively for
.yaml, .yml and .json files) or - for standard input. Files may hold several YAML documents.

Every object is checked first and every problem is reported; the objects are then written in one
transaction, so either all of them are written or, on any error, none is.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(files) == 0 {
				return fmt.Errorf("apply needs -f FILE, -f DIR or -f -")
			}
			objs, origins, err := loadObjects(files, g.streams.In)
			if err != nil {
				return fmt.Errorf("%w\n%w", err, errNothingWritten)
			}
			if len(objs) == 0 {
				return fmt.Errorf("no objects found in %s", strings.Join(files, ", "))
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			res, err := c.Apply(cmd.Context(), objs)
			if err != nil {
				return applyError(err, origins)
			}
			for _, r := range res.Items {
				fmt.Fprintf(g.streams.Out, "%s/%s %s\n", strings.ToLower(r.Kind), r.Name, r.Action)
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVarP(&files, "filename", "f", nil, "file, directory or - (repeatable)")
	_ = cmd.MarkFlagFilename("filename", "yaml", "yml", "json")
	return cmd
}

// loadObjects reads, decodes, defaults and validates every object of the given paths, reporting the
// problems of all files at once. origins[i] says where objs[i] came from.
func loadObjects(paths []string, stdin io.Reader) (objs []v1.Object, origins []string, err error) {
	var errs []error
	for _, p := range paths {
		var files []string
		if p == "-" {
			files = []string{"-"}
		} else {
			fi, err := os.Stat(p)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if fi.IsDir() {
				err := filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
					if err != nil {
						return err
					}
					switch strings.ToLower(filepath.Ext(path)) {
					case ".yaml", ".yml", ".json":
						if !d.IsDir() {
							files = append(files, path)
						}
					}
					return nil
				})
				if err != nil {
					errs = append(errs, err)
					continue
				}
				sort.Strings(files)
			} else {
				files = []string{p}
			}
		}
		for _, f := range files {
			var data []byte
			var err error
			source := f
			if f == "-" {
				source = "<stdin>"
				data, err = io.ReadAll(stdin)
			} else {
				data, err = os.ReadFile(f)
			}
			if err != nil {
				errs = append(errs, err)
				continue
			}
			got, err := v1.LoadYAML(source, data)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			for i, o := range got {
				objs = append(objs, o)
				origins = append(origins, fmt.Sprintf("%s: document %d", source, i+1))
			}
		}
	}
	if len(errs) > 0 {
		return nil, nil, errors.Join(errs...)
	}
	return objs, origins, nil
}

var itemPath = regexp.MustCompile(`^items\[(\d+)\]\.?`)

// applyError rewrites the server's per-item field paths into the files and documents they came
// from, and says that nothing was written.
func applyError(err error, origins []string) error {
	st, ok := client.StatusOf(err)
	if !ok {
		return fmt.Errorf("apply: %w (the server may or may not have written the objects; run apply again)", err)
	}
	var b strings.Builder
	b.WriteString(st.Message)
	for _, f := range st.Fields {
		path := f.Path
		if m := itemPath.FindStringSubmatch(path); m != nil {
			if i, _ := strconv.Atoi(m[1]); i < len(origins) {
				path = origins[i] + ": " + strings.TrimPrefix(path, m[0])
			}
		}
		fmt.Fprintf(&b, "\n  %s: %s", path, f.Message)
	}
	msg := b.String()
	if !strings.Contains(msg, errNothingWritten.Error()) {
		return fmt.Errorf("%s\n%w", msg, errNothingWritten)
	}
	return errors.New(msg)
}
