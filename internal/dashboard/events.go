package dashboard

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/internal/auth"
)

// agentStatusKind is the event kind of agent report changes (store.KindAgentStatus); pages of
// clusters follow it.
const agentStatusKind = "AgentStatus"

// eventBatch is how many changes the stream reads at a time.
const eventBatch = 256

// followKinds returns the kinds whose changes p may follow: those it may watch, and agent report
// changes when it may read clusters.
func (d *Dashboard) followKinds(p *auth.Principal) []string {
	var out []string
	for _, k := range v1.Kinds() {
		if d.opts.Roles.Allowed(p, auth.Permission{Verb: auth.VerbWatch, Resource: k.Plural}) {
			out = append(out, k.Kind)
		}
	}
	if d.opts.Roles.Allowed(p, auth.Permission{Verb: auth.VerbGet, Resource: "clusters"}) {
		out = append(out, agentStatusKind)
	}
	return out
}

// events streams changes as Server-Sent Events ("event: change", data a Change) after the
// sequence number in ?after= or Last-Event-ID, so an open page knows when to refresh. Only
// kinds the caller may follow are sent, and only what changed, never the object.
func (d *Dashboard) events(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	kinds := d.followKinds(p)
	if want := r.URL.Query().Get("kinds"); want != "" {
		var narrowed []string
		for _, k := range strings.Split(want, ",") {
			for _, ok := range kinds {
				if k == ok {
					narrowed = append(narrowed, k)
				}
			}
		}
		kinds = narrowed
	}
	after, _ := strconv.ParseInt(r.URL.Query().Get("after"), 10, 64)
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		if n, err := strconv.ParseInt(id, 10, 64); err == nil {
			after = n
		}
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(d.opts.Streams, cancel)
	defer stop()

	rc := http.NewResponseController(w)
	d.SetHeaders(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if _, err := fmt.Fprintf(w, "retry: 1000\n\n"); err != nil {
		return nil
	}
	if err := rc.Flush(); err != nil {
		return nil
	}
	if len(kinds) == 0 {
		<-ctx.Done()
		return nil
	}
	for ctx.Err() == nil {
		latest, err := d.opts.Backend.LatestSeq(ctx)
		if err != nil {
			return nil // the client reconnects and resumes
		}
		chs, err := d.opts.Backend.Changes(ctx, after, eventBatch, kinds)
		if err != nil {
			return nil
		}
		for _, c := range chs {
			data, _ := json.Marshal(c)
			if _, err := fmt.Fprintf(w, "id: %d\nevent: change\ndata: %s\n\n", c.Seq, data); err != nil {
				return nil
			}
			after = c.Seq
		}
		if len(chs) > 0 {
			if err := rc.Flush(); err != nil {
				return nil
			}
		}
		if len(chs) == eventBatch {
			continue
		}
		// Every change up to latest was committed when it was read (the store's sequence order
		// is commit order), so the stream may skip ahead to it.
		after = max(after, latest)
		wctx, wcancel := context.WithTimeout(ctx, d.opts.Heartbeat)
		err = d.opts.Backend.WaitForEvent(wctx, after)
		wcancel()
		if err != nil && ctx.Err() == nil {
			if _, err := fmt.Fprintf(w, ": heartbeat\n\n"); err != nil {
				return nil
			}
			if err := rc.Flush(); err != nil {
				return nil
			}
		}
	}
	return nil
}
