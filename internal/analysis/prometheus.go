package analysis

import (
	"context"
	"fmt"
	"math"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	v1 "flotilla.dev/flotilla/api/v1"
)

// prometheusMeasurer runs one rendered instant query.
type prometheusMeasurer struct {
	api   promv1.API
	query string
	a     *Analyzer
}

// prometheus renders a Prometheus metric's address and query for one
// cluster and returns its measurer. Clients are shared per address.
func (a *Analyzer) prometheus(p *v1.PrometheusMetric, data TemplateData) (measurer, error) {
	addr, err := render("address", p.Address, data)
	if err != nil {
		return nil, err
	}
	if err := checkHTTPURL(addr); err != nil {
		return nil, fmt.Errorf("address: %w", err)
	}
	q, err := render("query", p.Query, data)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(q) == "" {
		return nil, fmt.Errorf("query: renders empty")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	c, ok := a.prom[addr]
	if !ok {
		cl, err := api.NewClient(api.Config{Address: addr, Client: a.o.HTTPClient})
		if err != nil {
			return nil, fmt.Errorf("address %q: %w", addr, err)
		}
		c = promv1.NewAPI(cl)
		a.prom[addr] = c
	}
	return &prometheusMeasurer{api: c, query: q, a: a}, nil
}

// measure runs the query at the server's current time. The result is:
// a scalar or a vector of one sample -> that number (float64); a vector of
// several samples -> their values (list of doubles, ordered by series
// labels); a string -> the string. No samples, or a single NaN (such as
// 0/0 when nothing was served), is no data: Inconclusive. A range vector
// is an error: conditions need instant values.
func (m *prometheusMeasurer) measure(ctx context.Context, _ int) (any, error) {
	ctx, cancel := context.WithTimeout(ctx, m.a.o.Timeout)
	defer cancel()
	val, warns, _, err := m.api.Query(ctx, m.query, time.Time{}, promv1.WithTimeout(m.a.o.Timeout))
	if err != nil {
		return nil, fmt.Errorf("prometheus query: %w", err)
	}
	res, err := promValue(val)
	if err != nil || len(warns) == 0 {
		return res, err
	}
	// Warnings (such as a partial answer) do not change the value; people see them.
	return noted{value: res, note: "prometheus warnings: " + strings.Join(warns, "; ")}, nil
}

// promValue converts a query result as measure describes.
func promValue(val model.Value) (any, error) {
	switch v := val.(type) {
	case *model.Scalar:
		return number(float64(v.Value))
	case model.Vector:
		switch len(v) {
		case 0:
			return nil, noData("query returned no samples")
		case 1:
			return number(float64(v[0].Value))
		}
		sort.Slice(v, func(i, j int) bool { return v[i].Metric.String() < v[j].Metric.String() })
		out := make([]float64, len(v))
		for i, s := range v {
			out[i] = float64(s.Value)
		}
		return out, nil
	case *model.String:
		return v.Value, nil
	case model.Matrix:
		return nil, fmt.Errorf("query returned a range vector (%d series); use an instant vector or a scalar", len(v))
	}
	return nil, fmt.Errorf("query returned an unexpected %T", val)
}

// number returns f, or no data for NaN.
func number(f float64) (any, error) {
	if math.IsNaN(f) {
		return nil, noData("query returned NaN (no data, such as 0/0)")
	}
	return f, nil
}

// checkHTTPURL requires an absolute http or https URL.
func checkHTTPURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http or https URL", raw)
	}
	return nil
}
