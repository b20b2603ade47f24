package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"k8s.io/apimachinery/pkg/labels"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/internal/auth"
	"flotilla.dev/flotilla/internal/store"
)

// kindHandler serves the REST routes of one kind.
type kindHandler struct {
	s    *Server
	info v1.KindInfo
}

// checkIdentity rejects a body whose kind differs from the route's, or whose name differs from the
// URL's (name may be "" for collection routes).
func (h *kindHandler) checkIdentity(obj v1.Object, name string) error {
	if k := obj.GetTypeMeta().Kind; k != h.info.Kind {
		return badRequest("request body holds a %s, but /api/v1/%s takes a %s", k, h.info.Plural, h.info.Kind)
	}
	if got := obj.GetMetadata().Name; name != "" && got != name {
		return badRequest("request body names %s %q, but the URL names %q", h.info.Kind, got, name)
	}
	return nil
}

// storeErr words a store error about the object name for people: a missing object becomes
// `Cluster "x" not found`; other errors pass unchanged to the error mapping.
func (h *kindHandler) storeErr(err error, name string) error {
	if errors.Is(err, store.ErrNotFound) {
		return notFound("%s %q not found", h.info.Kind, name)
	}
	return err
}

// prepare defaults and validates obj and converts it for the store. System-owned metadata a client
// sent (uid, generation, timestamps) is ignored.
func prepare(obj v1.Object) (*store.Object, error) {
	obj.Default()
	if err := obj.Validate(); err != nil {
		return nil, err
	}
	if err := checkKind(obj); err != nil {
		return nil, err
	}
	so, err := toStore(obj)
	if err != nil {
		return nil, err
	}
	so.UID, so.Generation = "", 0
	return so, nil
}

func (h *kindHandler) list(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	q := r.URL.Query()
	opts := store.ListOptions{Continue: q.Get("continue")}
	if s := q.Get("labelSelector"); s != "" {
		sel, err := labels.Parse(s)
		if err != nil {
			return badRequest("query parameter labelSelector=%q: %v", s, err)
		}
		opts.Selector = sel
	}
	limit, err := parseLimit(r, h.s.opts.DefaultListLimit, h.s.opts.MaxListLimit)
	if err != nil {
		return err
	}
	opts.Limit = limit
	l, err := h.s.store.List(r.Context(), h.info.Kind, opts)
	if err != nil {
		if errors.Is(err, store.ErrInvalid) {
			return badRequest("query parameter continue: %v", err)
		}
		return fmt.Errorf("list %s: %w", h.info.Plural, err)
	}
	out := wireList{APIVersion: v1.APIVersion, Kind: h.info.Kind + "List", Items: make([]wireObject, 0, len(l.Items))}
	out.Metadata.Continue = l.Continue
	if l.ResourceVersion > 0 {
		out.Metadata.ResourceVersion = strconv.FormatInt(l.ResourceVersion, 10)
	}
	for _, o := range l.Items {
		out.Items = append(out.Items, fromStore(o))
	}
	if h.info.Kind == v1.KindCluster {
		if err := h.s.overlayClusters(r.Context(), out.Items); err != nil {
			return fmt.Errorf("list %s: %w", h.info.Plural, err)
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// wireList is v1.List with its items held as wireObjects, so a list is encoded in one pass.
type wireList struct {
	APIVersion string       `json:"apiVersion"`
	Kind       string       `json:"kind"`
	Metadata   v1.ListMeta  `json:"metadata"`
	Items      []wireObject `json:"items"`
}

func (h *kindHandler) create(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	obj, err := h.s.decodeOne(w, r)
	if err != nil {
		return err
	}
	if err := h.checkIdentity(obj, ""); err != nil {
		return err
	}
	so, err := prepare(obj)
	if err != nil {
		return err
	}
	so.ResourceVersion, so.Status = 0, nil
	created, err := h.s.store.Create(r.Context(), so, p.Actor())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, fromStore(created))
	return nil
}

func (h *kindHandler) get(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	o, err := h.s.store.Get(r.Context(), h.info.Kind, r.PathValue("name"))
	if err != nil {
		return h.storeErr(err, r.PathValue("name"))
	}
	wo := []wireObject{fromStore(o)}
	if h.info.Kind == v1.KindCluster {
		if err := h.s.overlayClusters(r.Context(), wo); err != nil {
			return err
		}
	}
	writeJSON(w, http.StatusOK, wo[0])
	return nil
}

// requireVersion insists that an update names the version it was based on.
func requireVersion(so *store.Object) error {
	if so.ResourceVersion == 0 {
		return invalid(fmt.Sprintf("%s %s: metadata.resourceVersion is required: send the version you read, so that a concurrent change is not overwritten", so.Kind, so.Name),
			v1.FieldError{Path: "metadata.resourceVersion", Message: "required"})
	}
	return nil
}

func (h *kindHandler) update(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	obj, err := h.s.decodeOne(w, r)
	if err != nil {
		return err
	}
	if err := h.checkIdentity(obj, r.PathValue("name")); err != nil {
		return err
	}
	so, err := prepare(obj)
	if err != nil {
		return err
	}
	if err := requireVersion(so); err != nil {
		return err
	}
	updated, err := h.s.store.Update(r.Context(), so, p.Actor())
	if err != nil {
		return h.storeErr(err, so.Name)
	}
	writeJSON(w, http.StatusOK, fromStore(updated))
	return nil
}

func (h *kindHandler) updateStatus(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	obj, err := h.s.decodeOne(w, r)
	if err != nil {
		return err
	}
	if err := h.checkIdentity(obj, r.PathValue("name")); err != nil {
		return err
	}
	// Only the status is written, so the spec the caller sent is not validated.
	so, err := toStore(obj)
	if err != nil {
		return err
	}
	if err := requireVersion(so); err != nil {
		return err
	}
	updated, err := h.s.store.UpdateStatus(r.Context(), so, p.Actor())
	if err != nil {
		return h.storeErr(err, so.Name)
	}
	writeJSON(w, http.StatusOK, fromStore(updated))
	return nil
}

// patchRetries bounds how often a patch without a resourceVersion is retried after losing a race.
const patchRetries = 5

func (h *kindHandler) patch(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	if mt := mediaType(r); mt != mediaMergePatch {
		return unsupportedMediaType(mt, mediaMergePatch)
	}
	data, err := h.s.readBody(w, r)
	if err != nil {
		return err
	}
	var patch any
	if err := json.Unmarshal(data, &patch); err != nil {
		return badRequest("request body: %s", jsonErrorWhere(data, err))
	}
	pm, ok := patch.(map[string]any)
	if !ok {
		return badRequest("request body: a merge patch must be a JSON object")
	}
	pinned := patchVersion(pm)
	name := r.PathValue("name")
	for attempt := 0; ; attempt++ {
		updated, err := h.patchOnce(r.Context(), name, pm, pinned, p)
		if errors.Is(err, store.ErrConflict) && pinned == "" && attempt < patchRetries {
			continue
		}
		if err != nil {
			return h.storeErr(err, name)
		}
		writeJSON(w, http.StatusOK, fromStore(updated))
		return nil
	}
}

// patchOnce reads the object, applies the patch and writes it back at the version read (or the
// version the patch pinned).
func (h *kindHandler) patchOnce(ctx context.Context, name string, patch map[string]any, pinned string, p *auth.Principal) (*store.Object, error) {
	cur, err := h.s.store.Get(ctx, h.info.Kind, name)
	if err != nil {
		return nil, err
	}
	base, err := json.Marshal(fromStore(cur))
	if err != nil {
		return nil, fmt.Errorf("patch %s %s: %w", h.info.Kind, name, err)
	}
	var doc any
	if err := json.Unmarshal(base, &doc); err != nil {
		return nil, fmt.Errorf("patch %s %s: %w", h.info.Kind, name, err)
	}
	merged, err := json.Marshal(mergePatch(doc, patch))
	if err != nil {
		return nil, fmt.Errorf("patch %s %s: %w", h.info.Kind, name, err)
	}
	obj, err := v1.DecodeJSON(merged)
	if err != nil {
		return nil, decodeFailed("patched object", err)
	}
	if err := h.checkIdentity(obj, name); err != nil {
		return nil, invalid(err.Error(), v1.FieldError{Path: "metadata.name", Message: "cannot be changed"})
	}
	so, err := prepare(obj)
	if err != nil {
		return nil, err
	}
	if pinned == "" {
		so.ResourceVersion = cur.ResourceVersion
	}
	return h.s.store.Update(ctx, so, p.Actor())
}

// patchVersion returns the metadata.resourceVersion a patch sets, or "".
func patchVersion(patch map[string]any) string {
	meta, _ := patch["metadata"].(map[string]any)
	rv, _ := meta["resourceVersion"].(string)
	return rv
}

func (h *kindHandler) delete(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	var rv int64
	if s := r.URL.Query().Get("resourceVersion"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 {
			return badRequest("query parameter resourceVersion=%q: want a version read from the server", s)
		}
		rv = n
	}
	o, err := h.s.store.Delete(r.Context(), h.info.Kind, r.PathValue("name"), rv, p.Actor())
	if err != nil {
		return h.storeErr(err, r.PathValue("name"))
	}
	writeJSON(w, http.StatusOK, fromStore(o))
	return nil
}
