package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/internal/bundle"
)

// The agent protocol. An agent registers once with a bootstrap token (Register), then, with its
// credential as the client's token: takes the cluster lease (AcquireLease, renewing it every
// Lease.RenewAfter), long-polls its desired state (Desired), fetches the bundles it names (Bundle)
// and posts status reports with the lease epoch (PostStatus). Between failed calls it waits as
// Backoff says, or as RetryAfter says after a 429.

// CreateBootstrapToken creates a one-time token that registers cluster's agent; ttl 0 lets the
// server choose (1h). The token is shown only in this answer.
func (c *Client) CreateBootstrapToken(ctx context.Context, cluster string, ttl time.Duration) (*v1.BootstrapToken, error) {
	var req v1.BootstrapTokenRequest
	if ttl > 0 {
		req.TTL = v1.Duration(ttl.String())
	}
	body, err := encode(req)
	if err != nil {
		return nil, err
	}
	var out v1.BootstrapToken
	if err := c.do(ctx, request{method: http.MethodPost, path: "/api/v1/clusters/" + url.PathEscape(cluster) + "/bootstrap-tokens", body: body}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RevokeAgent revokes cluster's agent credential and unused bootstrap tokens; the agent's next
// call (and any long poll it holds) is refused at once.
func (c *Client) RevokeAgent(ctx context.Context, cluster string) error {
	return c.do(ctx, request{method: http.MethodPost, path: "/api/v1/clusters/" + url.PathEscape(cluster) + "/revoke"}, nil)
}

// AgentReport returns the latest full status report of cluster's agent.
func (c *Client) AgentReport(ctx context.Context, cluster string) (*v1.AgentReport, error) {
	var out v1.AgentReport
	if err := c.do(ctx, request{method: http.MethodGet, path: "/api/v1/clusters/" + url.PathEscape(cluster) + "/agent"}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Assign sets the release a service runs on clusters; an empty Release removes the service.
func (c *Client) Assign(ctx context.Context, req v1.AssignRequest) (*v1.AssignResponse, error) {
	body, err := encode(req)
	if err != nil {
		return nil, err
	}
	var out v1.AssignResponse
	if err := c.do(ctx, request{method: http.MethodPut, path: "/api/v1/assignments", body: body}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Assignments returns the desired state of cluster as people see it.
func (c *Client) Assignments(ctx context.Context, cluster string) (*v1.DesiredState, error) {
	var out v1.DesiredState
	if err := c.do(ctx, request{method: http.MethodGet, path: "/api/v1/assignments", query: url.Values{"cluster": {cluster}}}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// UploadBundle stores the canonical bytes of a bundle; the server verifies that they are canonical
// and hash to digest ("" lets it compute the digest).
func (c *Client) UploadBundle(ctx context.Context, data []byte, digest string) (*v1.BundleUploaded, error) {
	q := url.Values{}
	if digest != "" {
		q.Set("digest", digest)
	}
	var out v1.BundleUploaded
	if err := c.do(ctx, request{method: http.MethodPost, path: "/api/v1/bundles", query: q, body: data, contentType: v1.MediaBundle}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Register exchanges a bootstrap token for the cluster's agent credential. The client needs no
// token of its own; use the answer's Credential as the token of the agent's client.
func (c *Client) Register(ctx context.Context, req v1.RegisterRequest) (*v1.RegisterResponse, error) {
	body, err := encode(req)
	if err != nil {
		return nil, err
	}
	var out v1.RegisterResponse
	if err := c.do(ctx, request{method: http.MethodPost, path: "/api/v1/agent/register", body: body}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// AcquireLease takes or renews the cluster lease for holder. Another live agent's lease gives a
// conflict (IsConflict) whose message names it.
func (c *Client) AcquireLease(ctx context.Context, holder string) (*v1.Lease, error) {
	body, err := encode(v1.LeaseRequest{Holder: holder})
	if err != nil {
		return nil, err
	}
	var out v1.Lease
	if err := c.do(ctx, request{method: http.MethodPost, path: "/api/v1/agent/lease", body: body}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ReleaseLease gives holder's lease up, so that a successor need not wait for it to expire.
func (c *Client) ReleaseLease(ctx context.Context, holder string) error {
	return c.do(ctx, request{method: http.MethodDelete, path: "/api/v1/agent/lease", query: url.Values{"holder": {holder}}}, nil)
}

// DesiredOptions tune one long poll.
type DesiredOptions struct {
	// After is the digest the agent holds; "" asks for the state at once.
	After string
	// Wait is the longest the server should hold the poll; 0 lets the server choose (30s).
	Wait time.Duration
}

// Desired long-polls the caller's desired state. It returns the state when its digest differs from
// opts.After, or nil when the server held the poll to its end without a change.
func (c *Client) Desired(ctx context.Context, opts DesiredOptions) (*v1.DesiredState, error) {
	q := url.Values{}
	if opts.After != "" {
		q.Set("after", opts.After)
	}
	limit := 30 * time.Second
	if opts.Wait > 0 {
		q.Set("wait", opts.Wait.String())
		limit = opts.Wait
	}
	// The poll may last as long as the server holds it, plus some slack for the answer.
	ctx, cancel := context.WithTimeout(ctx, limit+15*time.Second)
	defer cancel()
	const path = "/api/v1/agent/desired"
	req, err := c.newRequest(ctx, request{method: http.MethodGet, path: path, query: q})
	if err != nil {
		return nil, err
	}
	resp, err := c.stream.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotModified:
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil, nil
	case resp.StatusCode != http.StatusOK:
		return nil, readAPIError(http.MethodGet, path, resp)
	}
	var out v1.DesiredState
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("GET %s: decode answer: %w", path, err)
	}
	return &out, nil
}

// Bundle fetches the bundle with digest and returns its bytes after checking that they hash to
// digest and are in canonical form; anything else is an error and nothing is returned.
func (c *Client) Bundle(ctx context.Context, digest string) ([]byte, error) {
	if err := bundle.ValidDigest(digest); err != nil {
		return nil, err
	}
	path := "/api/v1/agent/bundles/" + digest
	req, err := c.newRequest(ctx, request{method: http.MethodGet, path: path})
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, readAPIError(http.MethodGet, path, resp)
	}
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("GET %s: read body: %w", path, err)
	}
	if _, err := bundle.Decode(data, digest); err != nil {
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	return data, nil
}

// PostStatus posts a status report under the lease epoch. A retry with the same Seq is answered
// with Duplicate set and stored once.
func (c *Client) PostStatus(ctx context.Context, epoch int64, rep v1.AgentStatusReport) (*v1.StatusAck, error) {
	body, err := encode(rep)
	if err != nil {
		return nil, err
	}
	var out v1.StatusAck
	h := http.Header{v1.HeaderLeaseEpoch: {strconv.FormatInt(epoch, 10)}}
	if err := c.do(ctx, request{method: http.MethodPost, path: "/api/v1/agent/status", body: body, header: h}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
