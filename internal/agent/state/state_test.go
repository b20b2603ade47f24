package state

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/internal/bundle"
	"flotilla.dev/flotilla/internal/testfleet"
)

func TestMain(m *testing.M) { os.Exit(testfleet.Main(m)) }

func testBundle(t *testing.T, name string) *bundle.Bundle {
	t.Helper()
	b, err := bundle.New([]map[string]any{{"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": name, "namespace": "web"}, "data": map[string]any{"k": "v"}}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func testSnapshot(b *bundle.Bundle) *Snapshot {
	return &Snapshot{
		Desired: &v1.DesiredState{Cluster: "eu-1", Digest: "sha256:" + strings.Repeat("ab", 32),
			Assignments: []v1.Assignment{{Service: "web", Release: "web-r1", Bundle: b.Digest(), Options: &v1.AssignmentOptions{SelfHeal: true}}}},
		Offline: &v1.OfflinePeriod{Since: time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC), Corrections: 2,
			Events: []v1.AgentEvent{{Time: time.Date(2026, 11, 26, 9, 1, 0, 0, time.UTC), Reason: v1.EventDriftCorrected, Service: "web", Object: "ConfigMap/web/a"}}},
		Pending: &v1.AgentStatusReport{Seq: 42, Health: v1.HealthHealthy},
		Seq:     42,
		SavedAt: time.Date(2026, 11, 26, 9, 2, 0, 0, time.UTC),
	}
}

// roundTrip checks a store against the Store contract: empty at first, then exactly what was
// saved, bundles verified and retained as asked.
func roundTrip(t *testing.T, ctx context.Context, s Store) {
	t.Helper()
	if got, err := s.Load(ctx); got != nil || err != nil {
		t.Fatalf("Load of an empty store = %v, %v; want nil, nil", got, err)
	}
	if got, err := s.Credential(ctx); got != "" || err != nil {
		t.Fatalf("Credential of an empty store = %q, %v", got, err)
	}
	b1, b2 := testBundle(t, "a"), testBundle(t, "b")
	if data, err := s.Bundle(ctx, b1.Digest()); data != nil || err != nil {
		t.Fatalf("Bundle before PutBundle = %q, %v", data, err)
	}
	if err := s.PutBundle(ctx, b1.Digest(), b2.Bytes()); !errors.Is(err, ErrCorrupt) {
		t.Errorf("PutBundle with bytes of another digest = %v, want ErrCorrupt", err)
	}
	for _, b := range []*bundle.Bundle{b1, b2} {
		if err := s.PutBundle(ctx, b.Digest(), b.Bytes()); err != nil {
			t.Fatalf("PutBundle: %v", err)
		}
	}
	want := testSnapshot(b1)
	if err := s.Save(ctx, want); err != nil {
		t.Fatalf("Save: %v", err)
	}
	got, err := s.Load(ctx)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Load (-saved +loaded):\n%s", diff)
	}
	data, err := s.Bundle(ctx, b1.Digest())
	if err != nil || string(data) != string(b1.Bytes()) {
		t.Errorf("Bundle = %q, %v; want the stored bytes", data, err)
	}
	if err := s.RetainBundles(ctx, []string{b1.Digest()}); err != nil {
		t.Fatalf("RetainBundles: %v", err)
	}
	if data, err := s.Bundle(ctx, b2.Digest()); data != nil || err != nil {
		t.Errorf("Bundle not retained = %q, %v; want it removed", data, err)
	}
	if data, _ := s.Bundle(ctx, b1.Digest()); data == nil {
		t.Errorf("retained bundle is gone")
	}
	if err := s.SaveCredential(ctx, "fla_secret"); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Credential(ctx); got != "fla_secret" || err != nil {
		t.Errorf("Credential = %q, %v", got, err)
	}
}

func TestDirKeepsStateAndRefusesTamperedFiles(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	d := NewDir(dir)
	roundTrip(t, ctx, d)

	// A hand edit of the snapshot, or of a bundle, is refused rather than enforced.
	path := filepath.Join(dir, "state.json")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(data), "web-r1", "web-r9", 1)
	if edited == string(data) {
		t.Fatalf("state.json does not name the release:\n%s", data)
	}
	if err := os.WriteFile(path, []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Load(ctx); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), path) {
		t.Errorf("Load of an edited snapshot = %v, want ErrCorrupt naming %s", err, path)
	}
	b := testBundle(t, "a")
	bpath := filepath.Join(dir, "bundles", strings.TrimPrefix(b.Digest(), "sha256:")+".jsonl")
	if err := os.WriteFile(bpath, []byte(strings.Replace(string(b.Bytes()), `"v"`, `"x"`, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Bundle(ctx, b.Digest()); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Bundle of an edited file = %v, want ErrCorrupt", err)
	}
	if _, err := d.Bundle(ctx, "sha256:nothex"); err == nil {
		t.Errorf("Bundle of a malformed digest: no error")
	}
	if err := os.WriteFile(path, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Load(ctx); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Load of a truncated snapshot = %v, want ErrCorrupt", err)
	}
}

func TestSecretsKeepStateInTheCluster(t *testing.T) {
	f := testfleet.Get(t)
	c := f.Clusters[0]
	ns := f.Namespace(t)
	ctx := context.Background()
	s, err := NewSecrets(c.Config, ns)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, ctx, s)

	sec, err := c.Client.CoreV1().Secrets(ns).Get(ctx, SecretState, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if sec.Labels[LabelState] != "state" || sec.Labels["app.kubernetes.io/managed-by"] != "" {
		t.Errorf("state Secret labels = %v; want %s=state and not Flotilla's managed-by label", sec.Labels, LabelState)
	}
	// A snapshot whose content was changed behind the store's back is refused.
	snap := testSnapshot(testBundle(t, "a"))
	data, err := Encode(snap)
	if err != nil {
		t.Fatal(err)
	}
	tampered := strings.Replace(string(data), "web-r1", "web-r9", 1)
	if err := s.write(ctx, SecretState, "state", keyState, []byte(tampered), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(ctx); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Load of a tampered Secret = %v, want ErrCorrupt", err)
	}
	// A bundle too large for a Secret is refused with a clear error, nothing written.
	big := make([]byte, 2<<20) // random bytes do not compress
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range big {
		big[i] = byte(rng.Uint32())
	}
	if err := s.write(ctx, "too-big", "bundle", keyBundle, big, nil); !errors.Is(err, ErrTooLarge) {
		t.Errorf("write of %d bytes = %v, want ErrTooLarge", len(big), err)
	}
	if _, err := c.Client.CoreV1().Secrets(ns).Get(ctx, "too-big", metav1.GetOptions{}); err == nil {
		t.Errorf("a refused Secret was written")
	}
}
