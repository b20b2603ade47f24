package client

import (
	"bufio"
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

// WatchOptions choose what a Watch delivers.
type WatchOptions struct {
	// Kinds limits the stream to these kinds (kind, plural or short names); empty means all.
	Kinds []string
	// After delivers only events with a greater sequence number; 0 starts at the beginning of the
	// log.
	After int64
	// RetryDelay is the wait before reconnecting after the stream broke; 0 means one second.
	RetryDelay time.Duration
}

// Watch streams events to fn, in sequence order, until ctx ends (it then returns ctx.Err()) or fn
// returns an error (returned as is). When the connection breaks or the server answers with a 5xx,
// Watch reconnects and resumes after the last event fn received, so no event is lost or repeated.
// A 4xx answer (bad token, forbidden, bad request) ends the watch with its *APIError.
func (c *Client) Watch(ctx context.Context, opts WatchOptions, fn func(v1.Event) error) error {
	delay := opts.RetryDelay
	if delay <= 0 {
		delay = time.Second
	}
	after := opts.After
	for {
		err := c.watchOnce(ctx, opts.Kinds, &after, fn)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var fnErr *callbackError
		if errors.As(err, &fnErr) {
			return fnErr.err
		}
		if st, ok := StatusOf(err); ok && st.Code < 500 {
			return err // a request the server will never accept: bad token, forbidden, bad query
		}
		// The stream broke or the server went away: resume after the last delivered event.
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// callbackError marks an error returned by the caller's function, which ends the watch.
type callbackError struct{ err error }

func (e *callbackError) Error() string { return e.err.Error() }

// watchOnce opens one stream and reads it until it ends; *after tracks the last delivered Seq.
func (c *Client) watchOnce(ctx context.Context, kinds []string, after *int64, fn func(v1.Event) error) error {
	q := url.Values{}
	if len(kinds) > 0 {
		q.Set("kinds", strings.Join(kinds, ","))
	}
	r := request{method: http.MethodGet, path: "/api/v1/watch", query: q, header: http.Header{}}
	if *after > 0 {
		r.header.Set("Last-Event-ID", strconv.FormatInt(*after, 10))
	}
	req, err := c.newRequest(ctx, r)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := c.stream.Do(req)
	if err != nil {
		return fmt.Errorf("watch: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return readAPIError(r.method, r.path, resp)
	}
	return readEvents(resp.Body, func(id, typ, data string) error {
		if typ == "error" {
			return fmt.Errorf("watch: the server interrupted the stream: %s", data)
		}
		var ev v1.Event
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			return fmt.Errorf("watch: decode event %s: %w", id, err)
		}
		if ev.Seq <= *after {
			return nil // already delivered before a reconnect
		}
		if err := fn(ev); err != nil {
			return &callbackError{err}
		}
		*after = ev.Seq
		return nil
	})
}

// readEvents parses a text/event-stream and calls dispatch for every complete event that has data.
// Comment lines (heartbeats) are skipped.
func readEvents(r io.Reader, dispatch func(id, typ, data string) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var id, typ string
	var data strings.Builder
	hasData := false
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if hasData {
				if err := dispatch(id, typ, data.String()); err != nil {
					return err
				}
			}
			typ, hasData = "", false
			data.Reset()
			continue
		}
		if strings.HasPrefix(line, ":") {
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "id":
			id = value
		case "event":
			typ = value
		case "data":
			if hasData {
				data.WriteByte('\n')
			}
			data.WriteString(value)
			hasData = true
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("watch: read stream: %w", err)
	}
	return io.ErrUnexpectedEOF
}
