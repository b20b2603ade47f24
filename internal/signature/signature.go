// Package signature signs the HTTP requests Flotilla sends to hooks (the
// traffic webhook, notifications) and checks them on the receiving side.
//
// A signed request carries X-Flotilla-Timestamp (Unix seconds) and
// X-Flotilla-Signature: "sha256=" and the hex HMAC-SHA256, under the shared
// key, of the timestamp, a ".", and the body. Signing the timestamp with the
// body lets a receiver refuse replays older than the skew it accepts. One
// scheme for every hook means one Verify for people to copy.
package signature

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// Header names of the signature.
const (
	HeaderTimestamp = "X-Flotilla-Timestamp"
	HeaderSignature = "X-Flotilla-Signature"
)

// Errors of Verify.
var (
	ErrBadSignature = errors.New("signature does not match")
	ErrStale        = errors.New("timestamp too far from now")
)

// Sign returns the X-Flotilla-Signature value of a body sent at timestamp.
func Sign(key []byte, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(timestamp))
	m.Write([]byte("."))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// SetHeaders signs body under key at now and sets both headers on h.
func SetHeaders(h http.Header, key []byte, now time.Time, body []byte) {
	ts := strconv.FormatInt(now.Unix(), 10)
	h.Set(HeaderTimestamp, ts)
	h.Set(HeaderSignature, Sign(key, ts, body))
}

// Verify checks a request's signature and that its timestamp is within
// maxSkew of now, and returns its body (at most maxBody bytes).
func Verify(r *http.Request, key []byte, now time.Time, maxSkew time.Duration, maxBody int64) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	if int64(len(body)) > maxBody {
		return nil, fmt.Errorf("body larger than %d bytes", maxBody)
	}
	ts := r.Header.Get(HeaderTimestamp)
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("%s %q: %w", HeaderTimestamp, ts, ErrStale)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > maxSkew || d < -maxSkew {
		return nil, fmt.Errorf("%s %s is %s from now: %w", HeaderTimestamp, ts, d.Round(time.Second), ErrStale)
	}
	want := Sign(key, ts, body)
	if !hmac.Equal([]byte(want), []byte(r.Header.Get(HeaderSignature))) {
		return nil, ErrBadSignature
	}
	return body, nil
}
