package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/internal/source"
	"flotilla.dev/flotilla/internal/source/gittest"
	"flotilla.dev/flotilla/internal/testfleet"
)

func sourceManifest(ns, release string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
  namespace: %s
data:
  release: %s
  cluster: ${cluster.name}
`, ns, release)
}

// Given a Git repository served over HTTP, a server that may fetch from loopback, and agents for
// all but one cluster of the local fleet, when a Source and a Service without a strategy are
// applied, then the head commit is released and every cluster runs it, rendered with its own
// name; when the last cluster joins, it gets that release, rendered for it; when a new commit is
// pushed and the source's webhook is called, then a new release is cut and every agent applies it
// and reports it. The CLI shows the source's commit, previews the service and diffs
// the two releases.
func TestNewCommitIsReleasedAndApplied(t *testing.T) {
	f := testfleet.Get(t)
	ns := f.Namespace(t)
	repo := gittest.NewRepo(t, "shop.git")
	repo.Commit(t, "Add web", map[string]string{"deploy/web/cm.yaml": sourceManifest(ns, "r1")})
	git := gittest.Serve(t, repo.Root)

	secrets := t.TempDir()
	if err := os.MkdirAll(filepath.Join(secrets, "shop-hook"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(secrets, "shop-hook", source.SecretFileWebhook), []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, "--allow-local-sources", "--secrets-dir", secrets)
	// The last cluster joins after the first release: placement gives it the current release.
	early, late := f.Clusters[:len(f.Clusters)-1], f.Clusters[len(f.Clusters)-1]
	for _, c := range early {
		s.registerAndRunAgent(t, c.Name, c.Kubeconfig, "env=e2e")
	}
	objects := fmt.Sprintf(`apiVersion: flotilla.dev/v1alpha1
kind: Source
metadata: {name: shop}
spec:
  git: {url: %q, ref: {branch: main}, interval: 10m, webhookSecretRef: shop-hook}
---
apiVersion: flotilla.dev/v1alpha1
kind: Service
metadata: {name: web}
spec:
  source: {name: shop, path: deploy/web}
  namespace: %s
  placement: {clusterSelector: {matchLabels: {env: e2e}}}
`, git.RepoURL(repo), ns)
	file := filepath.Join(t.TempDir(), "web.yaml")
	if err := os.WriteFile(file, []byte(objects), 0o644); err != nil {
		t.Fatal(err)
	}
	s.cli(t, "apply", "-f", file)

	first := s.waitRelease(t, "")
	for _, c := range early {
		s.waitApplied(t, c, ns, first, "r1")
	}
	if first.Status.BundleFor(late.Name) != "" {
		t.Fatalf("the first release has a bundle for %s, which had not joined", late.Name)
	}
	s.registerAndRunAgent(t, late.Name, late.Kubeconfig, "env=e2e")
	eventually(t, 60*time.Second, "the first release is rendered for "+late.Name, func(ctx context.Context) error {
		o, err := s.Admin.Get(ctx, "releases", first.Metadata.Name)
		if err != nil {
			return err
		}
		if first = o.(*v1.Release); first.Status.BundleFor(late.Name) == "" {
			return fmt.Errorf("no bundle for %s yet", late.Name)
		}
		return nil
	})
	s.waitApplied(t, late, ns, first, "r1")
	if out := s.cli(t, "get", "sources"); !strings.Contains(out, first.Spec.Commit.SHA[:12]) || !strings.Contains(out, "FETCHED") {
		t.Errorf("get sources does not show the commit %s:\n%s", first.Spec.Commit.SHA[:12], out)
	}

	second := repo.Commit(t, "Release r2", map[string]string{"deploy/web/cm.yaml": sourceManifest(ns, "r2")})
	body := []byte(fmt.Sprintf(`{"ref":"refs/heads/main","after":%q}`, second))
	req, err := http.NewRequest("POST", s.URL+"/api/v1/sources/shop/webhook", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(source.GitHubSignatureHeader, source.SignGitHub([]byte("s3cret"), body))
	req.Header.Set(source.GitHubEventHeader, "push")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("webhook: %s", resp.Status)
	}
	rel := s.waitRelease(t, first.Metadata.Name)
	if rel.Spec.Commit.SHA != second || rel.Spec.Commit.Message != "Release r2" {
		t.Errorf("release of %+v, want %s", rel.Spec.Commit, second)
	}
	// The wide listing says when the source's webhook was last called.
	if out := s.cli(t, "get", "sources", "-o", "wide"); columnAt(out, "shop", "WEBHOOK") == "<none>" || columnAt(out, "shop", "WEBHOOK") == "" {
		t.Errorf("get sources -o wide does not show the webhook call:\n%s", out)
	}
	for _, c := range f.Clusters {
		s.waitApplied(t, c, ns, rel, "r2")
	}

	c0 := f.Clusters[0].Name
	if out := s.cli(t, "service", "preview", "web", "--cluster", c0); !strings.Contains(out, "cluster: "+c0) || !strings.Contains(out, "release: r2") {
		t.Errorf("service preview:\n%s", out)
	}
	if out := s.cli(t, "release", "diff", first.Metadata.Name, rel.Metadata.Name, "--cluster", c0); !strings.Contains(out, "-  release: r1") || !strings.Contains(out, "+  release: r2") {
		t.Errorf("release diff:\n%s", out)
	}
	if out := s.cli(t, "release", "create", "web", "--ref", second); !strings.Contains(out, rel.Metadata.Name+" exists already") {
		t.Errorf("release create of the released commit:\n%s", out)
	}
}

// waitRelease waits for the service web to have a latest release other than old and returns it.
func (s *server) waitRelease(t *testing.T, old string) *v1.Release {
	t.Helper()
	var rel *v1.Release
	eventually(t, 60*time.Second, "a new release of web", func(ctx context.Context) error {
		o, err := s.Admin.Get(ctx, "services", "web")
		if err != nil {
			return err
		}
		svc := o.(*v1.Service)
		name := svc.Status.LatestRelease
		if name == "" || name == old || svc.Status.CurrentRelease != name {
			return fmt.Errorf("latest %q current %q; conditions %+v", name, svc.Status.CurrentRelease, svc.Status.Conditions)
		}
		r, err := s.Admin.Get(ctx, "releases", name)
		if err != nil {
			return err
		}
		rel = r.(*v1.Release)
		return nil
	})
	return rel
}

// waitApplied waits for cluster c to run release rel: its ConfigMap says release and names the
// cluster, and its agent reports the release's bundle applied and healthy.
func (s *server) waitApplied(t *testing.T, c *testfleet.Cluster, ns string, rel *v1.Release, release string) {
	t.Helper()
	eventually(t, 90*time.Second, c.Name+" runs "+rel.Metadata.Name, func(ctx context.Context) error {
		cm, err := c.Client.CoreV1().ConfigMaps(ns).Get(ctx, "web-config", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if cm.Data["release"] != release || cm.Data["cluster"] != c.Name {
			return fmt.Errorf("configmap data %v, want release %s for cluster %s", cm.Data, release, c.Name)
		}
		return reportSays(ctx, s, c.Name, rel.Metadata.Name, rel.Status.BundleFor(c.Name))
	})
}

// columnAt is the cell of an aligned table's column header in the row whose first cell is name.
func columnAt(table, name, header string) string {
	lines := strings.Split(table, "\n")
	at := strings.Index(lines[0], header)
	if at < 0 {
		return ""
	}
	for _, l := range lines[1:] {
		if f := strings.Fields(l); len(f) > 0 && f[0] == name && len(l) > at {
			cell, _, _ := strings.Cut(l[at:], "  ")
			return strings.TrimSpace(cell)
		}
	}
	return ""
}
