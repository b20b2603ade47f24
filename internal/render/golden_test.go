package render

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// testRepo opens testdata/repo as a confined repository checkout.
func testRepo(t testing.TB) *os.Root {
	t.Helper()
	root, err := os.OpenRoot(filepath.Join("testdata", "repo"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	return root
}

var prodEU = ClusterVars{
	Name:   "prod-eu-1",
	Labels: map[string]string{"region": "eu", "env": "prod"},
	Vars:   map[string]string{"replicas": "3"},
}

func TestGolden(t *testing.T) {
	repo := testRepo(t)
	tests := []struct {
		name string
		req  Request
	}{
		{"raw", Request{Path: "raw/app", Namespace: "app"}},
		{"kustomize", Request{Path: "kustomize/overlays/prod", Namespace: "web"}},
		{"helm", Request{Path: "helm/web", Namespace: "web", Helm: Helm{
			ValuesFiles: []string{"values-prod.yaml"},
			Values: map[string]any{
				"replicas": "{{ .Cluster.Vars.replicas }}",
				"region":   "{{ .Cluster.Labels.region }}",
			},
		}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := tt.req
			req.FS = repo.FS()
			req.Vars = Vars{Cluster: prodEU}
			b, err := Render(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", tt.name+".golden")
			got := append([]byte("# digest "+b.Digest()+"\n"), b.Bytes()...)
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(want, got) {
				t.Fatalf("%s differs (-want +got):\n%s", golden, cmp.Diff(string(want), string(got)))
			}
		})
	}
}
