package testfleet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"flotilla.dev/flotilla/internal/localfleet"
)

// Environment variables read by the harness.
const (
	// EnvNoFleet, set to 1, makes tests that need the fleet skip (refused when CI=true).
	EnvNoFleet = "FLOTILLA_TEST_NO_FLEET"
	// EnvBinary names the flotilla-devfleet binary; the default is bin/flotilla-devfleet in the repository.
	EnvBinary = localfleet.EnvBinary
	// EnvClusters sets how many clusters the shared fleet has (default 3).
	EnvClusters = "FLOTILLA_TEST_CLUSTERS"
)

// Cluster is one cluster of a running fleet with ready-made clients.
type Cluster = localfleet.Cluster

// Fleet is a running local fleet.
type Fleet struct {
	*localfleet.Fleet
}

var (
	shared     *Fleet
	sharedErr  error
	sharedOnce sync.Once
)

// Main runs the tests of a package that uses the fleet and stops the fleet afterwards. Use it as
// `func TestMain(m *testing.M) { os.Exit(testfleet.Main(m)) }`.
func Main(m *testing.M) int {
	code := m.Run()
	if shared != nil {
		if err := shared.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "testfleet: stop:", err)
		}
	}
	return code
}

// Get returns the shared fleet, starting it on first use. It fails t when the fleet cannot start.
func Get(t testing.TB) *Fleet {
	t.Helper()
	if os.Getenv(EnvNoFleet) == "1" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s=1 is not honoured in CI: the local fleet is required there", EnvNoFleet)
		}
		t.Skipf("local fleet disabled by %s=1", EnvNoFleet)
	}
	sharedOnce.Do(func() {
		n := 3
		if v := os.Getenv(EnvClusters); v != "" {
			if _, err := fmt.Sscan(v, &n); err != nil || n < 1 {
				sharedErr = fmt.Errorf("%s=%q: want a positive number", EnvClusters, v)
				return
			}
		}
		dir, err := os.MkdirTemp("", "flotilla-testfleet-")
		if err != nil {
			sharedErr = err
			return
		}
		shared, sharedErr = Start(context.Background(), StartOptions{Clusters: n, Dir: dir})
	})
	if sharedErr != nil {
		t.Fatalf("local fleet: %v", sharedErr)
	}
	return shared
}

// StartOptions says what fleet Start runs.
type StartOptions = localfleet.StartOptions

// Binary returns the path of the flotilla-devfleet program or an error saying how to build it.
func Binary() (string, error) { return localfleet.Binary() }

// Start runs a new fleet process and waits until it is ready. The caller owns it and must Stop it.
func Start(ctx context.Context, o StartOptions) (*Fleet, error) {
	f, err := localfleet.Start(ctx, o)
	if err != nil {
		return nil, err
	}
	return &Fleet{f}, nil
}

var nonName = regexp.MustCompile(`[^a-z0-9-]+`)

// Namespace creates a namespace named after the test in every cluster and deletes it when the
// test ends, so tests sharing the fleet never see each other's objects.
func (f *Fleet) Namespace(t testing.TB) string {
	t.Helper()
	base := strings.Trim(nonName.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")
	if len(base) > 40 {
		base = base[:40]
	}
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	name := strings.Trim(base, "-") + "-" + hex.EncodeToString(b)
	ctx := context.Background()
	for _, c := range f.Clusters {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"flotilla.dev/test": "true"}}}
		if _, err := c.Client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
			t.Fatalf("cluster %s: create namespace %s: %v", c.Name, name, err)
		}
	}
	t.Cleanup(func() {
		for _, c := range f.Clusters {
			_ = c.Client.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{})
		}
	})
	return name
}
