package v1_test

import (
	"os"
	"path/filepath"
	"testing"

	v1 "flotilla.dev/flotilla/api/v1"
)

// The README tells people to apply examples/: every file there must load, default and validate.
func TestExamplesAreValid(t *testing.T) {
	files, err := filepath.Glob("../../examples/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples found (%v)", err)
	}
	kinds := map[string]int{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		objs, err := v1.LoadYAML(f, data)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		for _, o := range objs {
			kinds[o.GetTypeMeta().Kind]++
		}
	}
	for _, k := range []string{v1.KindCluster, v1.KindSource, v1.KindService, v1.KindRolloutStrategy, v1.KindAnalysisTemplate} {
		if kinds[k] == 0 {
			t.Errorf("examples have no %s", k)
		}
	}
}
