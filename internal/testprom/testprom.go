package testprom

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// InstallHint is the command that installs the binary Launch needs.
const InstallHint = "apt-get install -y prometheus"

// DefaultRPS is the simulated request rate of a cluster whose error rate
// is set without SetTraffic.
const DefaultRPS = 100

// Job is the scrape job name: up{job="flotilla-test"} is 1 once scraped.
const Job = "flotilla-test"

// Options configure Launch; zero fields take the defaults shown.
type Options struct {
	// Binary is the prometheus executable; default "prometheus" on PATH,
	// else /usr/bin/prometheus.
	Binary string
	// Dir holds the configuration, data and log; default a new temporary
	// directory removed by Close.
	Dir string
	// StartTimeout bounds start-up until the first scrape; default 60s.
	StartTimeout time.Duration
}

// Prometheus is a running Prometheus and the endpoint it scrapes.
type Prometheus struct {
	// URL is Prometheus' base URL (http://127.0.0.1:<port>).
	URL string
	// TargetURL is the metrics endpoint Prometheus scrapes.
	TargetURL string

	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error
	srv     *http.Server
	dir     string
	tmp     bool
	logPath string

	mu       sync.Mutex
	series   map[string]*series // by name and labels
	clusters map[string]*traffic
	scrapes  int
}

type series struct {
	name, kind string // kind: gauge | counter
	labels     map[string]string
	value      float64
}

type traffic struct {
	rps, errRate float64
	last         time.Time
	ok, errors   float64
}

// Binary returns the prometheus executable's path, or an error saying how
// to install it.
func Binary() (string, error) {
	if p, err := exec.LookPath("prometheus"); err == nil {
		return p, nil
	}
	if _, err := os.Stat("/usr/bin/prometheus"); err == nil {
		return "/usr/bin/prometheus", nil
	}
	return "", fmt.Errorf("prometheus not found: install it with `%s`", InstallHint)
}

// Start launches Prometheus for a test and stops it when the test ends.
// Without the binary the test is skipped with the install command, or
// fails when CI=true (CI must install it).
func Start(t testing.TB) *Prometheus {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("testprom: %v", err)
		}
		t.Skipf("testprom: %v", err)
	}
	start := time.Now()
	p, err := Launch(context.Background(), Options{Binary: bin, Dir: t.TempDir()})
	if err != nil {
		t.Fatalf("testprom: %v", err)
	}
	t.Logf("testprom: prometheus %s scraping %s, first scrape stored after %s", p.URL, p.TargetURL, time.Since(start).Round(time.Millisecond))
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("testprom: stop: %v", err)
		}
	})
	return p
}

// Launch starts the endpoint and Prometheus and returns once Prometheus
// has stored its first scrape. A port taken between choosing and binding
// is retried.
func Launch(ctx context.Context, o Options) (*Prometheus, error) {
	if o.Binary == "" {
		b, err := Binary()
		if err != nil {
			return nil, err
		}
		o.Binary = b
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = 60 * time.Second
	}
	p := &Prometheus{series: map[string]*series{}, clusters: map[string]*traffic{}, dir: o.Dir}
	if p.dir == "" {
		d, err := os.MkdirTemp("", "testprom-")
		if err != nil {
			return nil, fmt.Errorf("testprom: %w", err)
		}
		p.dir, p.tmp = d, true
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		p.cleanupDir()
		return nil, fmt.Errorf("testprom: endpoint: %w", err)
	}
	p.TargetURL = "http://" + ln.Addr().String() + "/metrics"
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", p.serveMetrics)
	p.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = p.srv.Serve(ln) }()

	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		if lastErr = p.startProcess(ctx, o, ln.Addr().String()); lastErr == nil {
			break
		}
	}
	if lastErr != nil {
		_ = p.srv.Close()
		p.cleanupDir()
		return nil, lastErr
	}
	wctx, cancel := context.WithTimeout(ctx, o.StartTimeout)
	defer cancel()
	if err := p.waitFirstScrape(wctx); err != nil {
		_ = p.Close()
		return nil, fmt.Errorf("testprom: waiting for the first scrape: %w%s", err, p.logTail())
	}
	return p, nil
}

// startProcess writes the configuration and starts Prometheus on a free
// loopback port; it fails if Prometheus exits within its first moments
// (such as when the port was taken meanwhile).
func (p *Prometheus) startProcess(ctx context.Context, o Options, target string) error {
	port, err := freePort()
	if err != nil {
		return fmt.Errorf("testprom: %w", err)
	}
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
- job_name: %s
  honor_labels: true
  static_configs:
  - targets: ['%s']
`, Job, target)
	cfgPath := filepath.Join(p.dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return fmt.Errorf("testprom: %w", err)
	}
	p.logPath = filepath.Join(p.dir, "prometheus.log")
	logf, err := os.Create(p.logPath)
	if err != nil {
		return fmt.Errorf("testprom: %w", err)
	}
	defer logf.Close()
	addr := "127.0.0.1:" + strconv.Itoa(port)
	cmd := exec.Command(o.Binary,
		"--config.file="+cfgPath,
		"--storage.tsdb.path="+filepath.Join(p.dir, "data"),
		"--web.listen-address="+addr,
		"--storage.tsdb.retention.time=1h",
		"--log.level=warn",
	)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group, so a Ctrl-C of the test does not race our stop.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("testprom: start %s: %w", o.Binary, err)
	}
	p.cmd, p.exited = cmd, make(chan struct{})
	go func() { p.waitErr = cmd.Wait(); close(p.exited) }()
	p.URL = "http://" + addr
	// Ready means listening; an early exit means the port (or anything) failed.
	deadline := time.Now().Add(o.StartTimeout)
	for time.Now().Before(deadline) {
		select {
		case <-p.exited:
			return fmt.Errorf("testprom: prometheus exited: %v%s", p.waitErr, p.logTail())
		case <-ctx.Done():
			_ = p.stopProcess()
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		resp, err := http.Get(p.URL + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
	}
	_ = p.stopProcess()
	return fmt.Errorf("testprom: prometheus not ready after %s%s", o.StartTimeout, p.logTail())
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitFirstScrape waits until up{job} is 1 in Prometheus.
func (p *Prometheus) waitFirstScrape(ctx context.Context) error {
	for {
		v, err := p.Query(ctx, `up{job="`+Job+`"}`)
		if err == nil && len(v) == 1 && v[0] == 1 {
			return nil
		}
		select {
		case <-ctx.Done():
			if err != nil {
				return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
			}
			return ctx.Err()
		case <-p.exited:
			return fmt.Errorf("prometheus exited: %v", p.waitErr)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Query runs an instant query and returns the values of the resulting
// vector (or the scalar as one value), for test assertions.
func (p *Prometheus) Query(ctx context.Context, q string) ([]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL+"/api/v1/query?query="+url.QueryEscape(q), nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, fmt.Errorf("query %q: %w", q, err)
	}
	if body.Status != "success" {
		return nil, fmt.Errorf("query %q: %s", q, body.Error)
	}
	parse := func(pair []any) (float64, error) {
		if len(pair) != 2 {
			return 0, fmt.Errorf("query %q: bad sample", q)
		}
		s, _ := pair[1].(string)
		return strconv.ParseFloat(s, 64)
	}
	switch body.Data.ResultType {
	case "scalar":
		var pair []any
		if err := json.Unmarshal(body.Data.Result, &pair); err != nil {
			return nil, err
		}
		f, err := parse(pair)
		return []float64{f}, err
	case "vector":
		var vec []struct {
			Value []any `json:"value"`
		}
		if err := json.Unmarshal(body.Data.Result, &vec); err != nil {
			return nil, err
		}
		out := make([]float64, 0, len(vec))
		for _, s := range vec {
			f, err := parse(s.Value)
			if err != nil {
				return nil, err
			}
			out = append(out, f)
		}
		return out, nil
	}
	return nil, fmt.Errorf("query %q: result type %s", q, body.Data.ResultType)
}

// WaitForScrapes returns once the endpoint has been scraped n more times,
// so that values set before the call are stored in Prometheus.
func (p *Prometheus) WaitForScrapes(ctx context.Context, n int) error {
	p.mu.Lock()
	want := p.scrapes + n
	p.mu.Unlock()
	for {
		p.mu.Lock()
		got := p.scrapes
		p.mu.Unlock()
		if got >= want {
			// The scrape is served; give Prometheus a moment to append it.
			time.Sleep(50 * time.Millisecond)
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("testprom: %d of %d scrapes: %w", got-want+n, n, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// SetGauge sets a gauge series.
func (p *Prometheus) SetGauge(name string, labels map[string]string, v float64) {
	p.set(name, "gauge", labels, func(s *series) { s.value = v })
}

// AddCounter adds d (>= 0) to a counter series.
func (p *Prometheus) AddCounter(name string, labels map[string]string, d float64) {
	p.set(name, "counter", labels, func(s *series) { s.value += max(d, 0) })
}

func (p *Prometheus) set(name, kind string, labels map[string]string, f func(*series)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	key := name + formatLabels(labels)
	s, ok := p.series[key]
	if !ok {
		s = &series{name: name, kind: kind, labels: maps.Clone(labels)}
		p.series[key] = s
	}
	f(s)
}

// SetTraffic sets a cluster's simulated request rate (requests per second).
func (p *Prometheus) SetTraffic(cluster string, rps float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.trafficOf(cluster).rps = rps
}

// SetErrorRate sets the fraction (0-1) of a cluster's simulated requests
// that fail with code 500, and the flotilla_test_error_rate gauge.
func (p *Prometheus) SetErrorRate(cluster string, rate float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.trafficOf(cluster).errRate = min(max(rate, 0), 1)
}

func (p *Prometheus) trafficOf(cluster string) *traffic {
	tr, ok := p.clusters[cluster]
	if !ok {
		tr = &traffic{rps: DefaultRPS, last: time.Now()}
		p.clusters[cluster] = tr
	}
	return tr
}

// serveMetrics advances the simulated traffic to now and writes every
// series in the text exposition format.
func (p *Prometheus) serveMetrics(w http.ResponseWriter, _ *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	var b bytes.Buffer
	if len(p.clusters) > 0 {
		b.WriteString("# TYPE http_requests_total counter\n")
		for _, c := range slices.Sorted(maps.Keys(p.clusters)) {
			tr := p.clusters[c]
			dt := now.Sub(tr.last).Seconds()
			tr.last = now
			tr.ok += tr.rps * dt * (1 - tr.errRate)
			tr.errors += tr.rps * dt * tr.errRate
			fmt.Fprintf(&b, "http_requests_total%s %g\n", formatLabels(map[string]string{"cluster": c, "code": "200"}), tr.ok)
			fmt.Fprintf(&b, "http_requests_total%s %g\n", formatLabels(map[string]string{"cluster": c, "code": "500"}), tr.errors)
		}
		b.WriteString("# TYPE flotilla_test_error_rate gauge\n")
		for _, c := range slices.Sorted(maps.Keys(p.clusters)) {
			fmt.Fprintf(&b, "flotilla_test_error_rate%s %g\n", formatLabels(map[string]string{"cluster": c}), p.clusters[c].errRate)
		}
	}
	byName := map[string][]*series{}
	for _, s := range p.series {
		byName[s.name] = append(byName[s.name], s)
	}
	for _, name := range slices.Sorted(maps.Keys(byName)) {
		ss := byName[name]
		slices.SortFunc(ss, func(a, b *series) int { return strings.Compare(formatLabels(a.labels), formatLabels(b.labels)) })
		fmt.Fprintf(&b, "# TYPE %s %s\n", name, ss[0].kind)
		for _, s := range ss {
			fmt.Fprintf(&b, "%s%s %g\n", name, formatLabels(s.labels), s.value)
		}
	}
	p.scrapes++
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	_, _ = w.Write(b.Bytes())
}

// formatLabels writes {k="v",...} sorted by name, escaping values.
func formatLabels(l map[string]string) string {
	if len(l) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range slices.Sorted(maps.Keys(l)) {
		if i > 0 {
			b.WriteByte(',')
		}
		v := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(l[k])
		fmt.Fprintf(&b, "%s=\"%s\"", k, v)
	}
	b.WriteByte('}')
	return b.String()
}

// Close stops Prometheus (SIGTERM, then SIGKILL after 10s) and the
// endpoint, and removes a temporary directory.
func (p *Prometheus) Close() error {
	err := p.stopProcess()
	if p.srv != nil {
		_ = p.srv.Close()
	}
	p.cleanupDir()
	return err
}

func (p *Prometheus) stopProcess() error {
	if p.cmd == nil || p.cmd.Process == nil {
		return nil
	}
	select {
	case <-p.exited:
		return nil
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return nil
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
		return errors.New("prometheus did not stop within 10s of SIGTERM; killed")
	}
}

func (p *Prometheus) cleanupDir() {
	if p.tmp {
		_ = os.RemoveAll(p.dir)
	}
}

// logTail returns the end of Prometheus' log for error messages.
func (p *Prometheus) logTail() string {
	if p.logPath == "" {
		return ""
	}
	b, err := os.ReadFile(p.logPath)
	if err != nil || len(b) == 0 {
		return ""
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return "\nprometheus log:\n" + string(b)
}
