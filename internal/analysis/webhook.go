package analysis

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	v1 "flotilla.dev/flotilla/api/v1"
)

// maxWebhookBody bounds a webhook answer; a metric is a small document.
const maxWebhookBody = 1 << 20

// webhookMeasurer GETs one rendered URL.
type webhookMeasurer struct {
	a    *Analyzer
	url  string
	path []pathStep
}

func (a *Analyzer) webhook(w *v1.WebhookMetric, data TemplateData) (measurer, error) {
	u, err := render("url", w.URL, data)
	if err != nil {
		return nil, err
	}
	if err := checkHTTPURL(u); err != nil {
		return nil, fmt.Errorf("url: %w", err)
	}
	steps, err := parsePath(w.JSONPath)
	if err != nil {
		return nil, fmt.Errorf("jsonPath: %w", err)
	}
	return &webhookMeasurer{a: a, url: u, path: steps}, nil
}

// measure GETs the URL and returns the JSON value at the path: numbers as
// float64, objects as maps, arrays as lists, strings, booleans. A non-2xx
// answer, a body over 1 MiB or that is not JSON is an error; a path that
// selects nothing or null is no data.
func (m *webhookMeasurer) measure(ctx context.Context, _ int) (any, error) {
	ctx, cancel := context.WithTimeout(ctx, m.a.o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.url, nil)
	if err != nil {
		return nil, fmt.Errorf("webhook: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := m.a.o.HTTPClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("webhook: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxWebhookBody+1))
	if err != nil {
		return nil, fmt.Errorf("webhook %s: reading the answer: %w", resp.Request.URL.Redacted(), err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, fmt.Errorf("webhook %s: %s", resp.Request.URL.Redacted(), resp.Status)
	}
	if len(body) > maxWebhookBody {
		return nil, fmt.Errorf("webhook %s: answer larger than %d bytes", resp.Request.URL.Redacted(), maxWebhookBody)
	}
	var doc any
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("webhook %s: answer is not JSON: %w", resp.Request.URL.Redacted(), err)
	}
	v, err := evalPath(doc, m.path)
	if errors.Is(err, errPathMissing) {
		return nil, noData("webhook answer: %v", err)
	}
	if err != nil {
		return nil, fmt.Errorf("webhook answer: %w", err)
	}
	if v == nil {
		return nil, noData("webhook answer: %s is null", formatPath(m.path))
	}
	return v, nil
}
