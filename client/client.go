package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	v1 "flotilla.dev/flotilla/api/v1"
)

// Options configure a Client.
type Options struct {
	// Server is the control plane's base URL, e.g. "http://127.0.0.1:8080". Required.
	Server string
	// Token is the API token sent as a bearer credential; empty sends none.
	Token string
	// HTTPClient makes the requests; nil uses a client with a 30-second timeout for ordinary
	// calls (Watch never times out while events or heartbeats arrive).
	HTTPClient *http.Client
	// UserAgent is sent with every request; empty uses "flotilla-client".
	UserAgent string
}

// Client calls one Flotilla control plane. It is safe for concurrent use.
type Client struct {
	base   *url.URL
	token  string
	http   *http.Client
	stream *http.Client
	agent  string
}

// New returns a client for opts.Server.
func New(opts Options) (*Client, error) {
	if opts.Server == "" {
		return nil, errors.New("client: no server URL given")
	}
	u, err := url.Parse(strings.TrimRight(opts.Server, "/"))
	if err != nil {
		return nil, fmt.Errorf("client: server URL %q: %w", opts.Server, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("client: server URL %q: must be http:// or https:// with a host", opts.Server)
	}
	c := &Client{base: u, token: opts.Token, http: opts.HTTPClient, agent: opts.UserAgent}
	if c.http == nil {
		c.http = &http.Client{Timeout: 30 * time.Second}
	}
	// Streams must not be cut by a whole-request timeout; they end on context cancellation.
	stream := *c.http
	stream.Timeout = 0
	c.stream = &stream
	if c.agent == "" {
		c.agent = "flotilla-client"
	}
	return c, nil
}

// Server returns the base URL the client talks to.
func (c *Client) Server() string { return c.base.String() }

// request describes one API call.
type request struct {
	method      string
	path        string // below the base URL, starting with "/"
	query       url.Values
	body        []byte
	contentType string
	header      http.Header
}

func (c *Client) newRequest(ctx context.Context, r request) (*http.Request, error) {
	u := *c.base
	u.Path = c.base.Path + r.path
	if len(r.query) > 0 {
		u.RawQuery = r.query.Encode()
	}
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", r.method, r.path, err)
	}
	for k, vs := range r.header {
		req.Header[k] = vs
	}
	if r.body != nil {
		ct := r.contentType
		if ct == "" {
			ct = "application/json"
		}
		req.Header.Set("Content-Type", ct)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.agent)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	return req, nil
}

// do performs r and decodes a 2xx JSON answer into out (when out is not nil).
func (c *Client) do(ctx context.Context, r request, out any) error {
	req, err := c.newRequest(ctx, r)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", r.method, r.path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return readAPIError(r.method, r.path, resp)
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", r.method, r.path, err)
	}
	return nil
}

// readAPIError turns a non-2xx answer into an *APIError, keeping the server's Status when the body
// holds one.
func readAPIError(method, path string, resp *http.Response) error {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	e := &APIError{Method: method, Path: path}
	if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && secs >= 0 {
		e.RetryAfter = time.Duration(secs) * time.Second
	}
	if err := json.Unmarshal(data, &e.Status); err != nil || e.Status.Code == 0 {
		msg := strings.TrimSpace(string(data))
		if msg == "" {
			msg = http.StatusText(resp.StatusCode)
		}
		e.Status = v1.Status{Code: resp.StatusCode, Reason: reasonFor(resp.StatusCode), Message: msg}
	}
	return e
}

func reasonFor(code int) string {
	switch code {
	case http.StatusBadRequest:
		return v1.ReasonBadRequest
	case http.StatusUnauthorized:
		return v1.ReasonUnauthorized
	case http.StatusForbidden:
		return v1.ReasonForbidden
	case http.StatusNotFound:
		return v1.ReasonNotFound
	case http.StatusConflict:
		return v1.ReasonConflict
	case http.StatusRequestEntityTooLarge:
		return v1.ReasonTooLarge
	case http.StatusUnprocessableEntity:
		return v1.ReasonInvalid
	default:
		return v1.ReasonInternal
	}
}
