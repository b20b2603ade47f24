package demo

import (
	"context"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// load simulates the sample application's users: every second, per cluster, requestsPerTick
// requests, of which the share named by the errorRate of the release the cluster runs fail. It
// reads that share from the ConfigMap the release applied in the cluster, so a release changes the
// metric only once an agent has applied it. Clusters that do not run the application serve nothing.
type load struct {
	requests *prometheus.CounterVec
	reg      *prometheus.Registry

	mu      sync.Mutex
	running map[string]string // cluster -> version it serves
}

const requestsPerTick = 50

func newLoad() *load {
	l := &load{reg: prometheus.NewRegistry(), running: map[string]string{}}
	l.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "demo_http_requests_total",
		Help: "Requests the sample application answered, by cluster, status code and version.",
	}, []string{"cluster", "code", "version"})
	l.reg.MustRegister(l.requests)
	return l
}

// serve exposes the metrics on ln until ctx ends.
func (l *load) serve(ctx context.Context, ln net.Listener) {
	srv := &http.Server{Handler: promhttp.HandlerFor(l.reg, promhttp.HandlerOpts{}), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	_ = srv.Serve(ln)
}

// run simulates the users of one cluster until ctx ends.
func (l *load) run(ctx context.Context, cluster string, kube kubernetes.Interface) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		cm, err := kube.CoreV1().ConfigMaps("shop").Get(rctx, "web", metav1.GetOptions{})
		cancel()
		if err != nil {
			l.setRunning(cluster, "")
			continue
		}
		version := cm.Data["version"]
		rate, err := strconv.ParseFloat(cm.Data["errorRate"], 64)
		if err != nil {
			rate = 0
		}
		l.setRunning(cluster, version)
		var failed int
		for range requestsPerTick {
			// A small background error rate makes the good release's figures look real.
			if rand.Float64() < rate+0.002 {
				failed++
			}
		}
		l.requests.WithLabelValues(cluster, "500", version).Add(float64(failed))
		l.requests.WithLabelValues(cluster, "200", version).Add(float64(requestsPerTick - failed))
	}
}

func (l *load) setRunning(cluster, version string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.running[cluster] = version
}

// versions returns the version each cluster serves now ("" when none).
func (l *load) versions() map[string]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]string, len(l.running))
	for k, v := range l.running {
		out[k] = v
	}
	return out
}
