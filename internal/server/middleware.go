package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"flotilla.dev/flotilla/internal/auth"
)

// requestInfo is filled while a request is served and read by the logging middleware.
type requestInfo struct {
	route     string
	principal string
	err       error
}

type requestInfoKey struct{}

func infoFrom(ctx context.Context) *requestInfo {
	i, _ := ctx.Value(requestInfoKey{}).(*requestInfo)
	return i
}

func setPrincipal(r *http.Request, p *auth.Principal) {
	if info := infoFrom(r.Context()); info != nil {
		info.principal = p.String()
	}
}

// quietRoutes are logged at debug level when they succeed.
var quietRoutes = map[string]bool{"GET /healthz": true, "GET /readyz": true, "GET /metrics": true}

// recorder remembers the status code and size of an answer. Unwrap lets http.ResponseController
// reach the connection's Flush for watch streams.
type recorder struct {
	http.ResponseWriter
	code  int
	bytes int64
}

func (r *recorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// observe wraps the mux: it answers unmatched requests with a Status body, recovers panics,
// records metrics by route pattern and logs one line per request.
func (s *Server) observe(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		info := &requestInfo{route: "unmatched"}
		r = r.WithContext(context.WithValue(r.Context(), requestInfoKey{}, info))
		rec := &recorder{ResponseWriter: w}
		func() {
			defer func() {
				if v := recover(); v != nil {
					if v == http.ErrAbortHandler {
						panic(v)
					}
					info.err = fmt.Errorf("panic: %v", v)
					if rec.code == 0 {
						s.writeError(rec, r, info.err)
					}
				}
			}()
			h, pattern := mux.Handler(r)
			if pattern == "" {
				s.unmatched(rec, r, h)
				return
			}
			info.route = pattern
			mux.ServeHTTP(rec, r) // matches again, and sets the path values

		}()
		if rec.code == 0 {
			rec.code = http.StatusOK
		}
		elapsed := time.Since(start)
		code := strconv.Itoa(rec.code)
		s.metrics.requests.WithLabelValues(info.route, code).Inc()
		s.metrics.latency.WithLabelValues(info.route, code).Observe(elapsed.Seconds())
		attrs := []slog.Attr{
			slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.String("route", info.route),
			slog.Int("code", rec.code), slog.Int64("bytes", rec.bytes), slog.Duration("duration", elapsed),
			slog.String("remote", r.RemoteAddr),
		}
		if info.principal != "" {
			attrs = append(attrs, slog.String("principal", info.principal))
		}
		level := slog.LevelInfo
		if quietRoutes[info.route] && rec.code < 400 {
			level = slog.LevelDebug // probes and scrapes would drown the log
		}
		if info.err != nil {
			attrs = append(attrs, slog.String("error", info.err.Error()))
			if rec.code >= 500 {
				level = slog.LevelError
			}
		}
		s.opts.Logger.LogAttrs(r.Context(), level, "request", attrs...)
	})
}

// unmatched answers a request no route matches with a 404 or 405 Status, keeping the mux's Allow
// header for 405.
func (s *Server) unmatched(w http.ResponseWriter, r *http.Request, h http.Handler) {
	probe := &headerProbe{header: http.Header{}}
	h.ServeHTTP(probe, r)
	if probe.code == http.StatusMethodNotAllowed {
		if allow := probe.header.Get("Allow"); allow != "" {
			w.Header().Set("Allow", allow)
		}
		s.writeError(w, r, &apiError{code: http.StatusMethodNotAllowed, reason: "MethodNotAllowed",
			msg: fmt.Sprintf("method %s is not allowed on %s", r.Method, r.URL.Path)})
		return
	}
	s.writeError(w, r, notFound("no route %s %s", r.Method, r.URL.Path))
}

// headerProbe captures the code and headers of the mux's own not-found or not-allowed answer.
type headerProbe struct {
	header http.Header
	code   int
}

func (p *headerProbe) Header() http.Header         { return p.header }
func (p *headerProbe) Write(b []byte) (int, error) { return len(b), nil }
func (p *headerProbe) WriteHeader(code int)        { p.code = code }
