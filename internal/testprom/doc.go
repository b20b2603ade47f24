// Package testprom runs a real Prometheus (Debian's prometheus package)
// for tests and the demo, scraping a metrics endpoint the caller controls.
//
// # Model
//
// Launch starts an HTTP server on a loopback port that serves Prometheus'
// text format, writes a configuration that scrapes it every second, and
// starts /usr/bin/prometheus with a temporary data directory on another
// loopback port chosen at run time. It returns once Prometheus has stored
// its first scrape. Start does the same for a test: it skips (or fails,
// with CI=true) when the binary is missing and stops Prometheus in
// t.Cleanup.
//
// The endpoint holds gauges and counters set by the caller (SetGauge,
// AddCounter) and simulated traffic per cluster (SetTraffic,
// SetErrorRate): http_requests_total{cluster,code} grows by the cluster's
// requests per second, a fraction of them with code 500, computed from
// the time between scrapes, so that
//
//	sum(rate(http_requests_total{cluster="c",code=~"5.."}[5s]))
//	  / sum(rate(http_requests_total{cluster="c"}[5s]))
//
// reads the error rate set for c once a window of scrapes has passed.
// flotilla_test_error_rate{cluster} carries the same number as a gauge.
//
// # Invariants
//
//   - Nothing listens on anything but 127.0.0.1; nothing outlives Close.
//   - Values set before a scrape are in that scrape: the endpoint reads
//     them under a lock when it is scraped.
package testprom
