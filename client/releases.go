package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	v1 "flotilla.dev/flotilla/api/v1"
)

// CreateRelease releases service at ref of its source ("" for the source's own ref) and hands the
// release over. created is false when the release of that commit and spec existed already; it is
// then returned unchanged and not handed over again.
func (c *Client) CreateRelease(ctx context.Context, service, ref string) (rel *v1.Release, created bool, err error) {
	body, err := encode(v1.ReleaseRequest{Ref: ref})
	if err != nil {
		return nil, false, err
	}
	r := request{method: http.MethodPost, path: "/api/v1/services/" + url.PathEscape(service) + "/releases", body: body}
	req, err := c.newRequest(ctx, r)
	if err != nil {
		return nil, false, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, false, fmt.Errorf("%s %s: %w", r.method, r.path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, false, readAPIError(r.method, r.path, resp)
	}
	var out v1.Release
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, false, fmt.Errorf("%s %s: decode answer: %w", r.method, r.path, err)
	}
	return &out, resp.StatusCode == http.StatusCreated, nil
}

// Preview renders service for cluster at ref ("" for the commit its source was last fetched at)
// without releasing it. Secret data comes back redacted.
func (c *Client) Preview(ctx context.Context, service, cluster, ref string) (*v1.Preview, error) {
	q := url.Values{"cluster": {cluster}}
	if ref != "" {
		q.Set("ref", ref)
	}
	var out v1.Preview
	if err := c.do(ctx, request{method: http.MethodGet, path: "/api/v1/services/" + url.PathEscape(service) + "/preview", query: q}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ReleaseDiff returns the unified diff of the manifests of release from against release to, for
// cluster or ("") every cluster. Secret data comes back redacted.
func (c *Client) ReleaseDiff(ctx context.Context, from, to, cluster string) (*v1.ReleaseDiff, error) {
	q := url.Values{"to": {to}}
	if cluster != "" {
		q.Set("cluster", cluster)
	}
	var out v1.ReleaseDiff
	if err := c.do(ctx, request{method: http.MethodGet, path: "/api/v1/releases/" + url.PathEscape(from) + "/diff", query: q}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
