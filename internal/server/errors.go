package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/internal/auth"
	"flotilla.dev/flotilla/internal/store"
)

// apiError is an error a handler raises with a definite HTTP answer: a request that cannot be
// read, an unsupported media type, or field problems found by the server itself.
type apiError struct {
	code   int
	reason string
	msg    string
	fields []v1.FieldError
}

func (e *apiError) Error() string { return e.msg }

// badRequest returns a 400 error; the message should say what is wrong and where.
func badRequest(format string, args ...any) error {
	return &apiError{code: http.StatusBadRequest, reason: v1.ReasonBadRequest, msg: fmt.Sprintf(format, args...)}
}

// invalid returns a 422 error listing field problems.
func invalid(msg string, fields ...v1.FieldError) error {
	return &apiError{code: http.StatusUnprocessableEntity, reason: v1.ReasonInvalid, msg: msg, fields: fields}
}

// notFound returns a 404 error.
func notFound(format string, args ...any) error {
	return &apiError{code: http.StatusNotFound, reason: v1.ReasonNotFound, msg: fmt.Sprintf(format, args...)}
}

// unsupportedMediaType returns a 415 error.
func unsupportedMediaType(ct string, allowed string) error {
	return &apiError{code: http.StatusUnsupportedMediaType, reason: "UnsupportedMediaType",
		msg: fmt.Sprintf("content type %q is not accepted here; send %s", ct, allowed)}
}

// statusOf maps any error to the Status the client receives. It is the only place that decides
// HTTP codes for errors.
func statusOf(err error) v1.Status {
	var (
		ae  *apiError
		ve  *v1.ValidationError
		mbe *http.MaxBytesError
	)
	switch {
	case errors.As(err, &ae):
		return v1.Status{Code: ae.code, Reason: ae.reason, Message: ae.msg, Fields: ae.fields}
	case errors.As(err, &ve):
		return v1.Status{Code: http.StatusUnprocessableEntity, Reason: v1.ReasonInvalid, Message: ve.Error(), Fields: ve.Fields}
	case errors.As(err, &mbe):
		return v1.Status{Code: http.StatusRequestEntityTooLarge, Reason: v1.ReasonTooLarge,
			Message: fmt.Sprintf("request body is larger than the limit of %d bytes", mbe.Limit)}
	case errors.Is(err, auth.ErrUnauthenticated):
		return v1.Status{Code: http.StatusUnauthorized, Reason: v1.ReasonUnauthorized, Message: err.Error()}
	case errors.Is(err, auth.ErrForbidden):
		return v1.Status{Code: http.StatusForbidden, Reason: v1.ReasonForbidden, Message: err.Error()}
	case errors.Is(err, store.ErrNotFound):
		return v1.Status{Code: http.StatusNotFound, Reason: v1.ReasonNotFound, Message: err.Error()}
	case errors.Is(err, store.ErrAlreadyExists):
		return v1.Status{Code: http.StatusConflict, Reason: v1.ReasonAlreadyExists, Message: err.Error()}
	case errors.Is(err, store.ErrConflict):
		return v1.Status{Code: http.StatusConflict, Reason: v1.ReasonConflict,
			Message: err.Error() + ": read the object again and retry with its current resourceVersion"}
	case errors.Is(err, store.ErrInvalid):
		return v1.Status{Code: http.StatusUnprocessableEntity, Reason: v1.ReasonInvalid, Message: err.Error()}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return v1.Status{Code: http.StatusServiceUnavailable, Reason: "Unavailable", Message: "the request was cancelled or timed out"}
	default:
		return v1.Status{Code: http.StatusInternalServerError, Reason: v1.ReasonInternal, Message: "internal error; the server log has the details"}
	}
}

// writeError answers r with the Status of err. Internal errors are recorded for the request log
// rather than shown to the client.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	st := statusOf(err)
	if info := infoFrom(r.Context()); info != nil {
		info.err = err
	}
	if st.Code == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="flotilla"`)
	}
	writeJSON(w, st.Code, st)
}

// writeJSON answers with v as JSON.
func writeJSON(w http.ResponseWriter, code int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		code = http.StatusInternalServerError
		data = []byte(`{"code":500,"reason":"InternalError","message":"encode answer failed"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write(append(data, '\n'))
}
