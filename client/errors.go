package client

import (
	"errors"
	"net/http"
	"strings"
	"time"

	v1 "flotilla.dev/flotilla/api/v1"
)

// APIError is a non-2xx answer of the API: the request it answered and the server's Status.
type APIError struct {
	Method string
	Path   string
	Status v1.Status
	// RetryAfter is the wait the server asked for in a Retry-After header (429, 503), or 0.
	RetryAfter time.Duration
}

// Error returns the server's message, followed by the field problems of a validation failure.
func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString(e.Status.Message)
	if b.Len() == 0 {
		b.WriteString(http.StatusText(e.Status.Code))
	}
	for _, f := range e.Status.Fields {
		if !strings.Contains(e.Status.Message, f.Path+": ") {
			b.WriteString("\n  ")
			b.WriteString(f.String())
		}
	}
	return b.String()
}

// StatusOf returns the Status carried by err when it is (or wraps) an *APIError.
func StatusOf(err error) (v1.Status, bool) {
	if e, ok := errors.AsType[*APIError](err); ok {
		return e.Status, true
	}
	return v1.Status{}, false
}

func hasCode(err error, code int) bool {
	s, ok := StatusOf(err)
	return ok && s.Code == code
}

// IsNotFound reports whether err is a 404 answer: the object (or route) does not exist.
func IsNotFound(err error) bool { return hasCode(err, http.StatusNotFound) }

// IsConflict reports whether err is a 409 answer: a stale resourceVersion or an existing name.
func IsConflict(err error) bool { return hasCode(err, http.StatusConflict) }

// IsAlreadyExists reports whether err is a 409 answer to a create of a name already in use.
func IsAlreadyExists(err error) bool {
	s, ok := StatusOf(err)
	return ok && s.Reason == v1.ReasonAlreadyExists
}

// IsInvalid reports whether err is a 422 answer: the object failed validation; its Status lists
// the field paths.
func IsInvalid(err error) bool { return hasCode(err, http.StatusUnprocessableEntity) }

// IsBadRequest reports whether err is a 400 answer: the request could not be read.
func IsBadRequest(err error) bool { return hasCode(err, http.StatusBadRequest) }

// IsUnauthorized reports whether err is a 401 answer: no token, or an unknown or expired one.
func IsUnauthorized(err error) bool { return hasCode(err, http.StatusUnauthorized) }

// IsForbidden reports whether err is a 403 answer: the caller's roles lack the permission.
func IsForbidden(err error) bool { return hasCode(err, http.StatusForbidden) }

// IsTooLarge reports whether err is a 413 answer: the request body was over the server's limit.
func IsTooLarge(err error) bool { return hasCode(err, http.StatusRequestEntityTooLarge) }
