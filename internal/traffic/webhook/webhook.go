// Package webhook is the traffic provider that hands the weights to a web
// hook: Flotilla POSTs the desired weights as JSON, signed with
// HMAC-SHA256, and the hook answers 2xx once they are in force.
//
// # Protocol
//
// Request: POST URL with Content-Type application/json and the body
//
//	{"router": "edge", "maxWeight": 100, "weights": [{"backend": "eu-1", "weight": 25}]}
//
// Backends not listed keep their weights; an empty list is a ping. The
// headers X-Flotilla-Timestamp (Unix seconds) and X-Flotilla-Signature
// ("sha256=" and the hex HMAC-SHA256, under the shared key, of the
// timestamp, a ".", and the body) let the hook check the request came from
// Flotilla and is fresh; Verify does both for hooks written in Go.
//
// Answer: any 2xx means the weights are in force. The body may be empty or
// a JSON object whose "weights" list the weights in force, which are then
// what reads back; otherwise the weights sent read back. Other statuses
// are errors carrying the status and the start of the body. Answers are
// limited to 64 KiB and redirects are not followed.
package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"flotilla.dev/flotilla/internal/signature"
)

// Header names of the signature.
const (
	HeaderTimestamp = signature.HeaderTimestamp
	HeaderSignature = signature.HeaderSignature
)

// MaxWeight is the scale of the weights sent: percent.
const MaxWeight = 100

// Limits on what is read.
const (
	maxAnswer      = 64 << 10
	MaxRequestBody = 1 << 20
)

// Weight is one backend's weight on the wire.
type Weight struct {
	Backend string `json:"backend"`
	Weight  int    `json:"weight"`
}

// Request is the JSON body Flotilla POSTs.
type Request struct {
	Router    string   `json:"router"`
	MaxWeight int      `json:"maxWeight"`
	Weights   []Weight `json:"weights"`
}

// Answer is the optional JSON body of a 2xx answer.
type Answer struct {
	Weights []Weight `json:"weights,omitempty"`
}

// Options configure a Hook.
type Options struct {
	URL string
	// Key is the HMAC-SHA256 key shared with the hook. Required.
	Key []byte
	// Router is the TrafficRouter's name, sent in every request.
	Router string
	// HTTPClient sends the requests; nil uses one that follows no
	// redirects. Deadlines come from the context.
	HTTPClient *http.Client
	// Now is the clock for the timestamp; time.Now when nil.
	Now func() time.Time
}

// Hook is a webhook traffic router.
type Hook struct {
	opts Options

	mu   sync.Mutex
	last map[string]int // weights in force as last acknowledged
}

// New returns a Hook.
func New(opts Options) (*Hook, error) {
	if len(opts.Key) == 0 {
		return nil, errors.New("webhook: empty signing key")
	}
	if !strings.HasPrefix(opts.URL, "http://") && !strings.HasPrefix(opts.URL, "https://") {
		return nil, fmt.Errorf("webhook: %q is not an http or https URL", opts.URL)
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Hook{opts: opts, last: map[string]int{}}, nil
}

// MaxWeight is the webhook's scale: percent.
func (h *Hook) MaxWeight() int { return MaxWeight }

// SetWeights POSTs the weights and records what the hook says is in force.
func (h *Hook) SetWeights(ctx context.Context, weights map[string]int) error {
	req := Request{Router: h.opts.Router, MaxWeight: MaxWeight, Weights: make([]Weight, 0, len(weights))}
	for b, w := range weights {
		if w < 0 || w > MaxWeight {
			return fmt.Errorf("webhook %s: backend %s: weight %d out of range 0-%d", h.opts.URL, b, w, MaxWeight)
		}
		req.Weights = append(req.Weights, Weight{Backend: b, Weight: w})
	}
	sort.Slice(req.Weights, func(i, j int) bool { return req.Weights[i].Backend < req.Weights[j].Backend })
	ans, err := h.post(ctx, req)
	if err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if ans != nil && len(ans.Weights) > 0 {
		for _, w := range ans.Weights {
			h.last[w.Backend] = w.Weight
		}
		return nil
	}
	for b, w := range weights {
		h.last[b] = w
	}
	return nil
}

// Weights returns the weights the hook last acknowledged. A backend this
// Hook never set is an error: the protocol has no way to ask.
func (h *Hook) Weights(_ context.Context, backends []string) (map[string]int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[string]int, len(backends))
	for _, b := range backends {
		w, ok := h.last[b]
		if !ok {
			return nil, fmt.Errorf("webhook %s: backend %s: weight unknown until Flotilla sets it", h.opts.URL, b)
		}
		out[b] = w
	}
	return out, nil
}

// Ping POSTs an empty change.
func (h *Hook) Ping(ctx context.Context) error {
	_, err := h.post(ctx, Request{Router: h.opts.Router, MaxWeight: MaxWeight, Weights: []Weight{}})
	return err
}

func (h *Hook) post(ctx context.Context, body Request) (*Answer, error) {
	data, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("webhook %s: %w", h.opts.URL, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.opts.URL, bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("webhook %s: %w", h.opts.URL, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "flotilla-traffic")
	signature.SetHeaders(req.Header, h.opts.Key, h.opts.Now(), data)
	resp, err := h.opts.HTTPClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("webhook %s: %w", h.opts.URL, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		return nil, fmt.Errorf("webhook %s: read the answer: %w", h.opts.URL, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, fmt.Errorf("webhook %s: answered %s: %s", h.opts.URL, resp.Status, snippet(raw))
	}
	if len(raw) > maxAnswer {
		return nil, fmt.Errorf("webhook %s: answer larger than %d bytes", h.opts.URL, maxAnswer)
	}
	if len(bytes.TrimSpace(raw)) == 0 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		return nil, nil
	}
	var ans Answer
	if err := json.Unmarshal(raw, &ans); err != nil {
		return nil, fmt.Errorf("webhook %s: answer is not the expected JSON: %w", h.opts.URL, err)
	}
	return &ans, nil
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

// Sign returns the X-Flotilla-Signature value of a body sent at timestamp
// (the scheme of internal/signature, shared with notifications).
func Sign(key []byte, timestamp string, body []byte) string {
	return signature.Sign(key, timestamp, body)
}

// Errors of Verify.
var (
	ErrBadSignature = signature.ErrBadSignature
	ErrStale        = signature.ErrStale
)

// Verify checks a request's signature and that its timestamp is within
// maxSkew of now, and returns its body (at most MaxRequestBody bytes).
// Hooks written in Go call it first.
func Verify(r *http.Request, key []byte, now time.Time, maxSkew time.Duration) ([]byte, error) {
	return signature.Verify(r, key, now, maxSkew, MaxRequestBody)
}
