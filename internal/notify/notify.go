// Package notify tells people what rollouts do: it POSTs each
// Notification to web hooks (a JSON body, or a Slack/Mattermost incoming
// webhook body), signed like the traffic webhook (internal/signature).
//
// # Model
//
// Notify only queues: it never blocks and never fails the caller, because
// a slow chat server must not slow a rollout. A bounded queue feeds one
// sender (Run), which delivers each notification to every hook in order,
// retrying transport errors, timeouts, 5xx and 429 answers with doubling
// waits (by default 5 attempts over about a minute) and giving up at once
// on any other answer that is not 2xx. When the queue is full the
// notification is dropped. Delivery is therefore at most a few attempts
// per hook and may be lost under overload or when Run ends; notifications
// are a courtesy, the audit trail is the record.
//
// The package does not log: Notify reports a drop by returning false, the
// sender reports each delivery's end to Options.Report, and the counters
// are exported as flotilla_notifications_total (Notifier is a
// prometheus.Collector).
package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	neturl "net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"flotilla.dev/flotilla/internal/signature"
)

// Notification is one thing a rollout did, as sent in the JSON format.
type Notification struct {
	Rollout string `json:"rollout"`
	Service string `json:"service"`
	Release string `json:"release"`
	// Phase is the rollout's phase once the transition was stored.
	Phase   string    `json:"phase"`
	Message string    `json:"message"`
	Time    time.Time `json:"time"`
	// DashboardPath is the rollout's page on the server: /ui/rollouts/NAME.
	DashboardPath string `json:"dashboardPath"`
}

// DashboardPath returns the dashboard path of the rollout named rollout.
func DashboardPath(rollout string) string { return "/ui/rollouts/" + rollout }

// Format is the body a hook receives.
type Format string

// Formats.
const (
	// FormatJSON sends the Notification as JSON.
	FormatJSON Format = "json"
	// FormatSlack sends {"text": "..."}, which Slack and Mattermost
	// incoming webhooks accept.
	FormatSlack Format = "slack"
)

// Options configure a Notifier; only URLs is required.
type Options struct {
	// URLs are the hooks every notification goes to.
	URLs []string
	// Key signs requests (X-Flotilla-Timestamp, X-Flotilla-Signature);
	// nil sends them unsigned.
	Key []byte
	// Format of the body; default FormatJSON.
	Format Format
	// QueueSize bounds the notifications waiting for the sender; default 256.
	QueueSize int
	// Attempts is how often one delivery is tried; default 5.
	Attempts int
	// Backoff is the wait after the first failed attempt, doubled after
	// each; default 4s (4+8+16+32s: about a minute over 5 attempts).
	Backoff time.Duration
	// Timeout bounds one attempt; default 10s.
	Timeout time.Duration
	// HTTPClient sends the requests; nil uses one that follows no
	// redirects.
	HTTPClient *http.Client
	// Now is the clock of the signature's timestamp; default time.Now.
	Now func() time.Time
	// Report, when set, is called by the sender when a delivery to one
	// hook ends, sent or given up, so that the caller can log failures.
	Report func(Result)
}

// Result is how one notification's delivery to one hook ended.
type Result struct {
	Notification Notification
	// Hook is the hook's URL without its path and query, which often hold
	// a token (Slack's do): safe to log.
	Hook string
	// Attempts made; Err is nil when the last one was answered 2xx.
	Attempts int
	Err      error
}

// Stats are a Notifier's counters: Sent and Failed count deliveries to
// one hook, Dropped the notifications refused by a full queue.
type Stats struct{ Sent, Failed, Dropped int64 }

// Notifier queues notifications and delivers them; create it with New,
// start Run, then call Notify.
type Notifier struct {
	opts                  Options
	queue                 chan Notification
	sent, failed, dropped atomic.Int64
	desc                  *prometheus.Desc
}

var _ prometheus.Collector = (*Notifier)(nil)

// New returns a Notifier over opts.
func New(opts Options) (*Notifier, error) {
	if len(opts.URLs) == 0 {
		return nil, errors.New("notify: no hook URL given")
	}
	for _, u := range opts.URLs {
		if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
			return nil, fmt.Errorf("notify: %q is not an http or https URL", u)
		}
	}
	switch opts.Format {
	case "":
		opts.Format = FormatJSON
	case FormatJSON, FormatSlack:
	default:
		return nil, fmt.Errorf("notify: format %q: want json or slack", opts.Format)
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = 256
	}
	if opts.Attempts <= 0 {
		opts.Attempts = 5
	}
	if opts.Backoff <= 0 {
		opts.Backoff = 4 * time.Second
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Notifier{opts: opts, queue: make(chan Notification, opts.QueueSize),
		desc: prometheus.NewDesc("flotilla_notifications_total",
			"Rollout notifications by result: sent or failed (refused, or given up after retries) per hook, dropped (queue full) per notification. Only the leading rollout runner sends notifications.",
			[]string{"result"}, nil)}, nil
}

// Notify queues n for every hook; it never blocks, and returns false when
// the queue is full and n was dropped.
func (n *Notifier) Notify(x Notification) bool {
	select {
	case n.queue <- x:
		return true
	default:
		n.dropped.Add(1)
		return false
	}
}

// Stats returns the counters.
func (n *Notifier) Stats() Stats {
	return Stats{Sent: n.sent.Load(), Failed: n.failed.Load(), Dropped: n.dropped.Load()}
}

// Describe implements prometheus.Collector.
func (n *Notifier) Describe(ch chan<- *prometheus.Desc) { ch <- n.desc }

// Collect implements prometheus.Collector.
func (n *Notifier) Collect(ch chan<- prometheus.Metric) {
	s := n.Stats()
	ch <- prometheus.MustNewConstMetric(n.desc, prometheus.CounterValue, float64(s.Sent), "sent")
	ch <- prometheus.MustNewConstMetric(n.desc, prometheus.CounterValue, float64(s.Failed), "failed")
	ch <- prometheus.MustNewConstMetric(n.desc, prometheus.CounterValue, float64(s.Dropped), "dropped")
}

// Run is the sender: it delivers queued notifications, one at a time in
// order, until ctx ends; what is still queued then is not sent.
func (n *Notifier) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case x := <-n.queue:
			body, err := n.body(x)
			for _, u := range n.opts.URLs {
				res := Result{Notification: x, Hook: Redact(u), Err: err}
				if err == nil {
					res.Attempts, res.Err = n.deliver(ctx, u, body)
				}
				if res.Err == nil {
					n.sent.Add(1)
				} else {
					n.failed.Add(1)
				}
				if n.opts.Report != nil {
					n.opts.Report(res)
				}
			}
		}
	}
}

// body renders x in the configured format.
func (n *Notifier) body(x Notification) ([]byte, error) {
	if n.opts.Format == FormatSlack {
		return json.Marshal(struct {
			Text string `json:"text"`
		}{SlackText(x)})
	}
	return json.Marshal(x)
}

// SlackText is the one-line message of the Slack format.
func SlackText(x Notification) string {
	return fmt.Sprintf("Rollout %s (%s to %s) is %s: %s (%s)", x.Rollout, x.Service, x.Release, x.Phase, x.Message, x.DashboardPath)
}

// deliver tries to POST body to url until it is answered 2xx, refused for
// good, or the attempts or ctx run out.
func (n *Notifier) deliver(ctx context.Context, url string, body []byte) (attempts int, err error) {
	wait := n.opts.Backoff
	for attempts = 1; ; attempts++ {
		var retry bool
		retry, err = n.post(ctx, url, body)
		if err == nil || !retry || attempts >= n.opts.Attempts {
			return attempts, err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return attempts, fmt.Errorf("%w (stopped before retrying)", err)
		case <-t.C:
		}
		wait *= 2
	}
}

// post makes one attempt; retry says whether another may succeed.
func (n *Notifier) post(ctx context.Context, url string, body []byte) (retry bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, n.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return false, fmt.Errorf("notify %s: %w", Redact(url), err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "flotilla-notify")
	if len(n.opts.Key) > 0 {
		signature.SetHeaders(req.Header, n.opts.Key, n.opts.Now(), body)
	}
	resp, err := n.opts.HTTPClient.Do(req)
	if err != nil {
		// The client's error quotes the URL: name the hook safely instead.
		var ue *neturl.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return true, fmt.Errorf("notify %s: %w", Redact(url), err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		return false, nil
	}
	retry = resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests
	return retry, fmt.Errorf("notify %s: answered %s: %s", Redact(url), resp.Status, snippet(raw))
}

// Redact returns u without its path, query and user: scheme and host name
// the hook well enough for a log line.
func Redact(u string) string {
	p, err := neturl.Parse(u)
	if err != nil || p.Host == "" {
		return "(hook URL)"
	}
	s := p.Scheme + "://" + p.Host
	if p.Path != "" && p.Path != "/" || p.RawQuery != "" {
		s += "/..."
	}
	return s
}

// snippet keeps the start of an error answer on one line.
func snippet(b []byte) string {
	s := strings.Join(strings.Fields(string(b)), " ")
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	if s == "" {
		return "(empty body)"
	}
	return s
}
