package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"time"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/internal/store"
)

// Media types the API reads.
const (
	mediaJSON       = "application/json"
	mediaYAML       = "application/yaml"
	mediaMergePatch = "application/merge-patch+json"
)

// readBody reads the request body up to the size limit (over it: a 413 error).
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes))
	if _, tooLarge := errors.AsType[*http.MaxBytesError](err); tooLarge {
		return nil, fmt.Errorf("read request body: %w", err)
	}
	if err != nil {
		return nil, badRequest("read request body: %v", err)
	}
	if len(data) == 0 {
		return nil, badRequest("request body is empty")
	}
	return data, nil
}

// mediaType returns the request's media type, normalised: YAML spellings become mediaYAML and a
// missing Content-Type means JSON.
func mediaType(r *http.Request) string {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return mediaJSON
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return ct
	}
	switch mt {
	case "application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml":
		return mediaYAML
	}
	return mt
}

// decodeOne reads a body holding exactly one object, as JSON or YAML. Decoding is strict; the
// error says where the problem is.
func (s *Server) decodeOne(w http.ResponseWriter, r *http.Request) (v1.Object, error) {
	mt := mediaType(r)
	if mt != mediaJSON && mt != mediaYAML {
		return nil, unsupportedMediaType(mt, "application/json or application/yaml")
	}
	data, err := s.readBody(w, r)
	if err != nil {
		return nil, err
	}
	if mt == mediaJSON {
		obj, err := v1.DecodeJSON(data)
		if err != nil {
			return nil, decodeFailed("request body", err)
		}
		return obj, nil
	}
	objs, err := v1.DecodeYAML("request body", data)
	if err != nil {
		return nil, decodeFailed("", err)
	}
	if len(objs) != 1 {
		return nil, badRequest("request body: holds %d objects, want exactly one (use /api/v1/apply for several)", len(objs))
	}
	return objs[0], nil
}

// wireObject is the JSON form of any object, with spec and status kept as raw JSON. The server
// answers with it so it never needs to know a kind's Go type to read it from the store.
type wireObject struct {
	APIVersion string          `json:"apiVersion"`
	Kind       string          `json:"kind"`
	Metadata   v1.ObjectMeta   `json:"metadata"`
	Spec       json.RawMessage `json:"spec,omitempty"`
	Status     json.RawMessage `json:"status,omitempty"`
}

// toStore converts a decoded, validated object into the store's form.
func toStore(obj v1.Object) (*store.Object, error) {
	data, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", obj.GetTypeMeta().Kind, err)
	}
	var w wireObject
	if err := json.Unmarshal(data, &w); err != nil {
		return nil, fmt.Errorf("encode %s: %w", obj.GetTypeMeta().Kind, err)
	}
	m := w.Metadata
	o := &store.Object{Kind: w.Kind, Name: m.Name, UID: m.UID, Labels: m.Labels, Annotations: m.Annotations,
		Generation: m.Generation, Spec: w.Spec, Status: w.Status}
	if m.ResourceVersion != "" {
		rv, err := strconv.ParseInt(m.ResourceVersion, 10, 64)
		if err != nil || rv <= 0 {
			return nil, invalid(fmt.Sprintf("%s %s: metadata.resourceVersion %q is not a version this server issued", w.Kind, m.Name, m.ResourceVersion),
				v1.FieldError{Path: "metadata.resourceVersion", Message: "must be the decimal version read from the server"})
		}
		o.ResourceVersion = rv
	}
	return o, nil
}

// fromStore converts a stored object into its wire form.
func fromStore(o *store.Object) wireObject {
	w := wireObject{APIVersion: v1.APIVersion, Kind: o.Kind, Spec: o.Spec, Status: o.Status}
	w.Metadata = v1.ObjectMeta{Name: o.Name, UID: o.UID, Labels: o.Labels, Annotations: o.Annotations, Generation: o.Generation}
	if o.ResourceVersion != 0 {
		w.Metadata.ResourceVersion = strconv.FormatInt(o.ResourceVersion, 10)
	}
	if !o.CreatedAt.IsZero() {
		t := o.CreatedAt.UTC()
		w.Metadata.CreationTimestamp = &t
	}
	if !o.UpdatedAt.IsZero() {
		t := o.UpdatedAt.UTC()
		w.Metadata.UpdateTimestamp = &t
	}
	if len(w.Status) == 0 || string(w.Status) == "null" {
		w.Status = nil
	}
	return w
}

// parseTime reads an RFC 3339 time or a duration meaning "that long ago".
func parseTime(name, s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, badRequest("query parameter %s=%q: want an RFC 3339 time (2026-01-02T15:04:05Z) or a duration ago (90m)", name, s)
}

// parseLimit reads ?limit= within [1, max]; absent gives def.
func parseLimit(r *http.Request, def, max int) (int, error) {
	s := r.URL.Query().Get("limit")
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > max {
		return 0, badRequest("query parameter limit=%q: want a whole number from 1 to %d", s, max)
	}
	return n, nil
}

// decodeFailed turns a decoding error into a 400 whose fields are the decoder's field problems.
func decodeFailed(where string, err error) error {
	msg := err.Error()
	if where != "" {
		msg = where + ": " + msg
	}
	e := &apiError{code: http.StatusBadRequest, reason: v1.ReasonBadRequest, msg: msg}
	if de, ok := errors.AsType[*v1.DecodeError](err); ok {
		e.fields = de.Fields
	}
	return e
}
