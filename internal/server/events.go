package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/internal/auth"
	"flotilla.dev/flotilla/internal/store"
)

// toWireEvent converts a store event; withObject adds the object (watch events carry it).
func toWireEvent(e store.Event, withObject bool) (v1.Event, error) {
	out := v1.Event{Seq: e.Seq, Time: e.Time.UTC(), Type: string(e.Type), Kind: e.Kind, Name: e.Name,
		Actor:        v1.Actor{Kind: e.Actor.Kind, Name: e.Actor.Name},
		DigestBefore: e.DigestBefore, DigestAfter: e.DigestAfter}
	if e.Object != nil {
		out.ResourceVersion = strconv.FormatInt(e.Object.ResourceVersion, 10)
		if withObject {
			data, err := json.Marshal(fromStore(e.Object))
			if err != nil {
				return v1.Event{}, fmt.Errorf("encode event %d: %w", e.Seq, err)
			}
			out.Object = data
		}
	}
	return out, nil
}

// auditOnlyKinds are the event kinds that record changes to things other than API objects
// (tokens, agent credentials, assignments, bundles, agent status): the audit trail carries them,
// object watches do not.
var auditOnlyKinds = []string{store.KindToken, store.KindAgentCredential, store.KindAssignments, store.KindBundle, store.KindAgentStatus,
	store.KindRolloutAudit}

// parseAuditKinds resolves the audit trail's kind filter: object kinds in any spelling, and the
// audit-only kinds by name, case-insensitively.
func parseAuditKinds(values []string) ([]string, error) {
	var out, objectKinds []string
	for _, v := range values {
		for _, k := range strings.Split(v, ",") {
			k = strings.TrimSpace(k)
			if i := slices.IndexFunc(auditOnlyKinds, func(a string) bool { return strings.EqualFold(a, k) }); i >= 0 {
				out = append(out, auditOnlyKinds[i])
			} else {
				objectKinds = append(objectKinds, k)
			}
		}
	}
	infos, err := parseKinds("kind", objectKinds)
	if err != nil {
		return nil, err
	}
	for _, info := range infos {
		out = append(out, info.Kind)
	}
	return out, nil
}

// parseKinds resolves a list of kind names (any spelling) to canonical kinds.
func parseKinds(param string, values []string) ([]v1.KindInfo, error) {
	var out []v1.KindInfo
	for _, v := range values {
		for _, k := range strings.Split(v, ",") {
			k = strings.TrimSpace(k)
			if k == "" {
				continue
			}
			info, ok := v1.LookupKind(k)
			if !ok {
				return nil, badRequest("query parameter %s: unknown kind %q", param, k)
			}
			out = append(out, info)
		}
	}
	return out, nil
}

func parseAfter(s, what string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, badRequest("%s=%q: want a sequence number (a whole number, 0 or more)", what, s)
	}
	return n, nil
}

// auditLimit is the page size of the audit trail without ?limit=.
const auditLimit = 100

func (s *Server) audit(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	q := r.URL.Query()
	now := s.opts.Now()
	var f store.EventFilter
	kinds, err := parseAuditKinds(q["kind"])
	if err != nil {
		return err
	}
	f.Kinds = kinds
	f.Name, f.Actor = q.Get("name"), q.Get("actor")
	if _, name, ok := strings.Cut(f.Actor, ":"); ok {
		f.Actor = name // "token:ci" names the actor ci
	}
	if f.Since, err = parseTime("since", q.Get("since"), now); err != nil {
		return err
	}
	if f.Until, err = parseTime("until", q.Get("until"), now); err != nil {
		return err
	}
	limit, err := parseLimit(r, auditLimit, s.opts.MaxListLimit)
	if err != nil {
		return err
	}
	after, err := parseAfter(q.Get("after"), "query parameter after")
	if err != nil {
		return err
	}
	evs, err := s.store.Events(r.Context(), after, limit, f)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	out := v1.EventList{Items: make([]v1.Event, 0, len(evs))}
	for _, e := range evs {
		// A rollout audit entry is only useful with what the transition did.
		we, err := toWireEvent(e, e.Kind == store.KindRolloutAudit)
		if err != nil {
			return err
		}
		out.Items = append(out.Items, we)
	}
	if len(evs) == limit {
		out.Next = evs[len(evs)-1].Seq
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// watchBatch is how many events a watch reads from the store at a time.
const watchBatch = 256

// watch streams events as Server-Sent Events: "id" is the sequence number, "event" the type and
// "data" the v1.Event as JSON. It starts after the Last-Event-ID header (sent by reconnecting
// clients) or else the after parameter, and never skips or repeats an event: the store guarantees
// that sequence order is commit order.
func (s *Server) watch(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	q := r.URL.Query()
	kinds, err := parseKinds("kinds", q["kinds"])
	if err != nil {
		return err
	}
	if len(kinds) == 0 {
		kinds = v1.Kinds()
	}
	resources := make([]string, 0, len(kinds))
	var f store.EventFilter
	for _, k := range kinds {
		resources = append(resources, k.Plural)
		f.Kinds = append(f.Kinds, k.Kind)
	}
	if err := s.authorizeEach(p, auth.VerbWatch, resources); err != nil {
		return err
	}
	after, err := parseAfter(q.Get("after"), "query parameter after")
	if err != nil {
		return err
	}
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		if after, err = parseAfter(id, "header Last-Event-ID"); err != nil {
			return err
		}
	}

	// The stream ends when the client goes away or the server shuts down.
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(s.streams, cancel)
	defer stop()

	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if _, err := fmt.Fprintf(w, ": watching after %d\nretry: 1000\n\n", after); err != nil {
		return nil
	}
	if err := rc.Flush(); err != nil {
		return nil
	}
	for ctx.Err() == nil {
		// Every matching event up to latest has been committed when latest is read, so after a
		// short batch the stream may skip ahead to latest without missing one.
		latest, err := s.store.LatestSeq(ctx)
		if err != nil {
			return s.endStream(ctx, w, rc, err)
		}
		evs, err := s.store.Events(ctx, after, watchBatch, f)
		if err != nil {
			return s.endStream(ctx, w, rc, err)
		}
		for _, e := range evs {
			we, err := toWireEvent(e, true)
			if err != nil {
				return s.endStream(ctx, w, rc, err)
			}
			data, err := json.Marshal(we)
			if err != nil {
				return s.endStream(ctx, w, rc, err)
			}
			if _, err := fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", e.Seq, e.Type, data); err != nil {
				return nil
			}
			after = e.Seq
		}
		if len(evs) > 0 {
			if err := rc.Flush(); err != nil {
				return nil
			}
		}
		if len(evs) == watchBatch {
			continue
		}
		after = max(after, latest)
		wctx, wcancel := context.WithTimeout(ctx, s.opts.HeartbeatInterval)
		err = s.store.WaitForEvent(wctx, after)
		wcancel()
		if err != nil && ctx.Err() == nil {
			if wctx.Err() == nil {
				return s.endStream(ctx, w, rc, err)
			}
			// No event for a heartbeat interval: show the stream is alive.
			if _, err := fmt.Fprintf(w, ": heartbeat %d\n\n", after); err != nil {
				return nil
			}
			if err := rc.Flush(); err != nil {
				return nil
			}
		}
	}
	return nil
}

// endStream ends a stream that already sent its headers after a store error: it records the error
// for the request log and tells the client (which reconnects and resumes) with an error event.
func (s *Server) endStream(ctx context.Context, w http.ResponseWriter, rc *http.ResponseController, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	if info := infoFrom(ctx); info != nil {
		info.err = err
	}
	fmt.Fprintf(w, "event: error\ndata: {\"code\":500,\"reason\":\"InternalError\",\"message\":\"watch interrupted; reconnect to resume\"}\n\n")
	_ = rc.Flush()
	return nil
}
