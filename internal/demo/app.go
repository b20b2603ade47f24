package demo

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// shop is the sample application as users meet it: one small HTTP backend per cluster, behind the
// demo's HAProxy, answering with the cluster's name and the version it runs. A backend fails the
// share of requests named by the errorRate of the ConfigMap that the release applied in its
// cluster, so a release changes what users see only once an agent has applied it there. Clusters
// that do not run the application answer 503. The backends count their answers for Prometheus.
type shop struct {
	requests *prometheus.CounterVec
	reg      *prometheus.Registry

	mu      sync.Mutex
	running map[string]release // cluster -> what it runs
}

// release is what one cluster runs, as read from the cluster.
type release struct {
	version string
	errRate float64
}

func newShop() *shop {
	s := &shop{reg: prometheus.NewRegistry(), running: map[string]release{}}
	s.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "demo_http_requests_total",
		Help: "Requests the sample application answered, by cluster, status code and version.",
	}, []string{"cluster", "code", "version"})
	s.reg.MustRegister(s.requests)
	return s
}

// serveMetrics exposes the metrics on ln until ctx ends.
func (s *shop) serveMetrics(ctx context.Context, ln net.Listener) {
	serveUntil(ctx, ln, promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}))
}

// serveBackend runs cluster's backend on ln until ctx ends.
func (s *shop) serveBackend(ctx context.Context, cluster string, ln net.Listener) {
	serveUntil(ctx, ln, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		r := s.release(cluster)
		if r.version == "" {
			http.Error(w, cluster+" does not run the shop", http.StatusServiceUnavailable)
			return
		}
		// A small background error rate makes the good release's figures look real.
		if rand.Float64() < r.errRate+0.002 {
			s.requests.WithLabelValues(cluster, "500", r.version).Inc()
			http.Error(w, cluster+" "+r.version+" failed", http.StatusInternalServerError)
			return
		}
		s.requests.WithLabelValues(cluster, "200", r.version).Inc()
		fmt.Fprintf(w, "%s %s\n", cluster, r.version)
	}))
}

// follow reads, every second, what cluster runs from the ConfigMap its release applied there.
func (s *shop) follow(ctx context.Context, cluster string, kube kubernetes.Interface) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		cm, err := kube.CoreV1().ConfigMaps("shop").Get(rctx, "web", metav1.GetOptions{})
		cancel()
		var r release
		if err == nil {
			r.version = cm.Data["version"]
			r.errRate, _ = strconv.ParseFloat(cm.Data["errorRate"], 64)
		}
		s.mu.Lock()
		s.running[cluster] = r
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *shop) release(cluster string) release {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.running[cluster]
}

// versions returns the version each cluster runs now ("" when none).
func (s *shop) versions() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]string, len(s.running))
	for k, v := range s.running {
		out[k] = v.version
	}
	return out
}

// users sends rps requests a second through url (the HAProxy frontend) and counts the answers by
// the version that gave them.
type users struct {
	mu      sync.Mutex
	answers map[string]int // "cluster version" or "error" -> count
	total   atomic.Int64
}

func (u *users) run(ctx context.Context, url string, rps int) {
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	t := time.NewTicker(time.Second / time.Duration(rps))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		go func() {
			key := "error"
			resp, err := client.Get(url)
			if err == nil {
				body, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					key = strings.TrimSpace(string(body))
				}
			}
			u.total.Add(1)
			u.mu.Lock()
			u.answers[key]++
			u.mu.Unlock()
		}()
	}
}

// snapshot returns the answers counted so far.
func (u *users) snapshot() map[string]int {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := make(map[string]int, len(u.answers))
	for k, v := range u.answers {
		out[k] = v
	}
	return out
}

func serveUntil(ctx context.Context, ln net.Listener, h http.Handler) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	_ = srv.Serve(ln)
}
