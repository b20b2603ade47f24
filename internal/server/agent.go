package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/internal/auth"
	"flotilla.dev/flotilla/internal/bundle"
	"flotilla.dev/flotilla/internal/store"
)

// Resources of the agent protocol's routes for people and automation. Assignments and bundles are
// given to the built-in roles like object kinds; bootstrap tokens and agent credentials only to
// admin.
const (
	resourceAssignments      = "assignments"
	resourceBundles          = "bundles"
	resourceBootstrapTokens  = "bootstrap-tokens"
	resourceAgentCredentials = "agent-credentials"
)

// agentRoutes returns the agent protocol's routes. Routes marked Agent serve only agent
// principals, always for the caller's own cluster.
func (s *Server) agentRoutes() []Route {
	return []Route{
		{Method: "POST", Path: "/api/v1/clusters/{name}/bootstrap-tokens", Rule: auth.Require(auth.VerbCreate, resourceBootstrapTokens),
			OperationID: "createBootstrapToken", Summary: "Create a one-time token that registers the cluster's agent; shown only in this answer",
			Request: "BootstrapTokenRequest", Response: "BootstrapToken", Code: http.StatusCreated, handle: s.createBootstrapToken},
		{Method: "POST", Path: "/api/v1/clusters/{name}/revoke", Rule: auth.Require(auth.VerbDelete, resourceAgentCredentials),
			OperationID: "revokeAgent", Summary: "Revoke the cluster's agent credential and unused bootstrap tokens, at once",
			Code: http.StatusNoContent, handle: s.revokeAgent},
		{Method: "GET", Path: "/api/v1/clusters/{name}/agent", Rule: auth.Require(auth.VerbGet, "clusters"),
			OperationID: "getAgentReport", Summary: "The latest full status report of the cluster's agent", Response: "AgentReport", handle: s.agentReport},
		{Method: "PUT", Path: "/api/v1/assignments", Rule: auth.Require(auth.VerbUpdate, resourceAssignments),
			OperationID: "assign", Summary: "Set the release a service runs on clusters (an empty release removes it)",
			Request: "AssignRequest", Response: "AssignResponse", handle: s.assign},
		{Method: "GET", Path: "/api/v1/assignments", Rule: auth.Require(auth.VerbList, resourceAssignments),
			OperationID: "listAssignments", Summary: "The desired state of one cluster", Response: "DesiredState",
			Query: []Param{{"cluster", "the cluster (required)", "string"}}, handle: s.listAssignments},
		{Method: "POST", Path: "/api/v1/bundles", Rule: auth.Require(auth.VerbCreate, resourceBundles),
			OperationID: "uploadBundle", Summary: "Store a canonical bundle; its digest is verified",
			Query:    []Param{{"digest", "the expected sha256:<hex> digest of the body", "string"}},
			Response: "BundleUploaded", handle: s.uploadBundle},
		{Method: "POST", Path: "/api/v1/agent/register", Rule: auth.Public(),
			OperationID: "agentRegister", Summary: "Exchange a bootstrap token for the cluster's agent credential (shown once)",
			Request: "RegisterRequest", Response: "RegisterResponse", Code: http.StatusCreated, handle: s.agentRegister},
		{Method: "POST", Path: "/api/v1/agent/lease", Rule: auth.Authenticated(), Agent: true,
			OperationID: "agentLease", Summary: "Take or renew the cluster's lease; 409 when another agent holds it",
			Request: "LeaseRequest", Response: "Lease", handle: s.agentLease},
		{Method: "DELETE", Path: "/api/v1/agent/lease", Rule: auth.Authenticated(), Agent: true,
			OperationID: "agentReleaseLease", Summary: "Give the lease up before it expires",
			Query: []Param{{"holder", "the holder that took the lease", "string"}}, Code: http.StatusNoContent, handle: s.agentReleaseLease},
		{Method: "GET", Path: "/api/v1/agent/desired", Rule: auth.Authenticated(), Agent: true,
			OperationID: "agentDesired", Summary: "Long-poll the cluster's desired state: answers at once when its digest differs from after, else holds the request until it changes (304 at the timeout)",
			Query:    []Param{{"after", "the digest the agent holds", "string"}, {"wait", "longest hold, e.g. 30s (capped by the server)", "string"}},
			Response: "DesiredState", handle: s.agentDesired},
		{Method: "GET", Path: "/api/v1/agent/bundles/{digest}", Rule: auth.Authenticated(), Agent: true,
			OperationID: "agentBundle", Summary: "Fetch a bundle assigned to the cluster by digest (immutable; ETag is the digest)",
			handle: s.agentBundle},
		{Method: "POST", Path: "/api/v1/agent/status", Rule: auth.Authenticated(), Agent: true,
			OperationID: "agentStatus", Summary: "Post a batched status report (also the heartbeat); a repeated seq is acknowledged as a duplicate",
			Request: "AgentStatusReport", Response: "StatusAck", handle: s.agentStatus},
	}
}

// agentSchemas names the agent protocol's bodies for the OpenAPI document.
func agentSchemas() map[string]any {
	return map[string]any{
		"BootstrapTokenRequest": v1.BootstrapTokenRequest{}, "BootstrapToken": v1.BootstrapToken{},
		"RegisterRequest": v1.RegisterRequest{}, "RegisterResponse": v1.RegisterResponse{},
		"LeaseRequest": v1.LeaseRequest{}, "Lease": v1.Lease{}, "DesiredState": v1.DesiredState{},
		"AssignRequest": v1.AssignRequest{}, "AssignResponse": v1.AssignResponse{}, "BundleUploaded": v1.BundleUploaded{},
		"AgentStatusReport": v1.AgentStatusReport{}, "StatusAck": v1.StatusAck{}, "AgentReport": v1.AgentReport{},
	}
}

// authenticateAgent turns an agent credential into an agent principal named after its cluster.
func (s *Server) authenticateAgent(ctx context.Context, token string) (*auth.Principal, error) {
	if auth.CheckSecretFormat(auth.AgentTokenPrefix, token) != nil {
		return nil, fmt.Errorf("%w: the agent credential is malformed", auth.ErrUnauthenticated)
	}
	hash, now := auth.HashToken(token), time.Now()
	if cluster, ok := s.hub.cachedAgent(hash, now); ok {
		return &auth.Principal{Name: cluster, Kind: auth.KindAgent}, nil
	}
	gen := s.hub.credentialGen()
	c, err := s.store.AgentByHash(ctx, hash)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: the agent credential is not known or was revoked; register the cluster again", auth.ErrUnauthenticated)
	}
	if err != nil {
		return nil, fmt.Errorf("authenticate agent: %w", err)
	}
	// The generation was read before the store: a revocation that commits after the read raises
	// it (here at once, elsewhere through its event), so the entry is never trusted past it.
	s.hub.rememberAgent(hash, c.Cluster, gen, now)
	return &auth.Principal{Name: c.Cluster, Kind: auth.KindAgent}, nil
}

// decodeStrict reads a JSON body into v, refusing unknown fields.
func (s *Server) decodeStrict(w http.ResponseWriter, r *http.Request, v any) error {
	if mt := mediaType(r); mt != mediaJSON {
		return unsupportedMediaType(mt, mediaJSON)
	}
	data, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest("request body: %s", jsonErrorWhere(data, err))
	}
	return nil
}

// Bootstrap token lifetimes.
const (
	defaultBootstrapTTL = time.Hour
	maxBootstrapTTL     = 24 * time.Hour
)

func (s *Server) createBootstrapToken(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	name := r.PathValue("name")
	var req v1.BootstrapTokenRequest
	if r.ContentLength != 0 {
		if err := s.decodeStrict(w, r, &req); err != nil {
			return err
		}
	}
	ttl, err := req.TTL.Parse()
	if err != nil || ttl < 0 || ttl > maxBootstrapTTL {
		return invalid("bootstrap token: the request is invalid",
			v1.FieldError{Path: "ttl", Message: fmt.Sprintf("%q: want a duration from 1s to %s", req.TTL, maxBootstrapTTL)})
	}
	if ttl == 0 {
		ttl = defaultBootstrapTTL
	}
	if _, err := s.store.Get(r.Context(), v1.KindCluster, name); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return notFound("Cluster %q not found: create it first (flotilla cluster register does both)", name)
		}
		return err
	}
	secret, err := auth.NewSecret(auth.BootstrapTokenPrefix)
	if err != nil {
		return err
	}
	now := s.opts.Now().UTC()
	t := store.BootstrapToken{Hash: auth.HashToken(secret), Cluster: name, CreatedAt: now, ExpiresAt: now.Add(ttl), CreatedBy: p.String()}
	if err := s.store.CreateBootstrapToken(r.Context(), t, p.Actor()); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, v1.BootstrapToken{Cluster: name, Token: secret, ExpiresAt: t.ExpiresAt})
	return nil
}

func (s *Server) revokeAgent(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	name := r.PathValue("name")
	if err := s.store.RevokeAgent(r.Context(), name, p.Actor()); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return notFound("cluster %q has no agent credential or bootstrap token to revoke", name)
		}
		return err
	}
	s.hub.credentialChanged(name)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) agentRegister(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	var req v1.RegisterRequest
	if err := s.decodeStrict(w, r, &req); err != nil {
		return err
	}
	if auth.CheckSecretFormat(auth.BootstrapTokenPrefix, req.Token) != nil {
		return fmt.Errorf("%w: token is not a bootstrap token (flb_...)", auth.ErrUnauthenticated)
	}
	cred, err := auth.NewSecret(auth.AgentTokenPrefix)
	if err != nil {
		return err
	}
	cluster, err := s.store.RedeemBootstrapToken(r.Context(), auth.HashToken(req.Token), store.AgentCredential{Hash: auth.HashToken(cred)}, s.opts.Now())
	switch {
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("%w: the bootstrap token is not known (revoked, or issued by another server)", auth.ErrUnauthenticated)
	case errors.Is(err, store.ErrUsed):
		return fmt.Errorf("%w: the bootstrap token was already used; ask an admin for a new one (flotilla cluster register)", auth.ErrUnauthenticated)
	case errors.Is(err, store.ErrExpired):
		return fmt.Errorf("%w: the bootstrap token expired; ask an admin for a new one (flotilla cluster register)", auth.ErrUnauthenticated)
	case err != nil:
		return err
	}
	s.hub.credentialChanged(cluster)
	writeJSON(w, http.StatusCreated, v1.RegisterResponse{Cluster: cluster, Credential: cred})
	return nil
}

func (s *Server) agentLease(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	var req v1.LeaseRequest
	if err := s.decodeStrict(w, r, &req); err != nil {
		return err
	}
	if req.Holder == "" || len(req.Holder) > 253 {
		return invalid("lease: the request is invalid", v1.FieldError{Path: "holder", Message: "required, at most 253 characters"})
	}
	l, err := s.store.AcquireLease(r.Context(), p.Name, req.Holder, s.opts.LeaseTTL, s.opts.Now())
	if held, ok := errors.AsType[*store.LeaseHeldError](err); ok {
		return &apiError{code: http.StatusConflict, reason: v1.ReasonConflict,
			msg: fmt.Sprintf("another agent holds cluster %s (holder %q, epoch %d, until %s); this agent must not run",
				p.Name, held.Lease.Holder, held.Lease.Epoch, held.Lease.ExpiresAt.UTC().Format(time.RFC3339))}
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v1.Lease{Cluster: l.Cluster, Holder: l.Holder, Epoch: l.Epoch, ExpiresAt: l.ExpiresAt,
		RenewAfter: v1.Duration((s.opts.LeaseTTL / 3).String())})
	return nil
}

func (s *Server) agentReleaseLease(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	holder := r.URL.Query().Get("holder")
	if holder == "" {
		return badRequest("query parameter holder is required")
	}
	if err := s.store.ReleaseLease(r.Context(), p.Name, holder); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return notFound("cluster %s has no lease held by %q", p.Name, holder)
		}
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// desired returns the desired state of cluster from the hub's cache, else from the store.
func (s *Server) desired(ctx context.Context, cluster string) (*store.DesiredState, error) {
	if ds := s.hub.cached(cluster); ds != nil {
		return ds, nil
	}
	ds, err := s.store.Desired(ctx, cluster)
	if err != nil {
		return nil, err
	}
	s.hub.remember(ds)
	return ds, nil
}

func toWireDesired(ds *store.DesiredState) v1.DesiredState {
	out := v1.DesiredState{Cluster: ds.Cluster, Digest: ds.Digest, Assignments: make([]v1.Assignment, 0, len(ds.Assignments))}
	for _, a := range ds.Assignments {
		wa := v1.Assignment{Service: a.Service, Release: a.Release, Bundle: a.Bundle}
		if len(a.Options) > 0 {
			var o v1.AssignmentOptions
			if json.Unmarshal(a.Options, &o) == nil && o != (v1.AssignmentOptions{}) {
				wa.Options = &o
			}
		}
		out.Assignments = append(out.Assignments, wa)
	}
	return out
}

// tooManyPolls answers 429 with a Retry-After spread over a few seconds, so that refused agents do
// not come back together.
func tooManyPolls(w http.ResponseWriter) error {
	w.Header().Set("Retry-After", strconv.Itoa(2+rand.IntN(9)))
	return &apiError{code: http.StatusTooManyRequests, reason: "TooManyRequests",
		msg: "the server holds as many long polls as it is configured for; retry after the Retry-After seconds"}
}

func (s *Server) agentDesired(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	q := r.URL.Query()
	after := q.Get("after")
	hold := s.opts.LongPollTimeout
	if ws := q.Get("wait"); ws != "" {
		d, err := time.ParseDuration(ws)
		if err != nil || d < 0 {
			return badRequest("query parameter wait=%q: want a duration such as 30s", ws)
		}
		hold = min(hold, d)
	}
	if n := s.polls.Add(1); n > int64(s.opts.MaxLongPolls) {
		s.polls.Add(-1)
		return tooManyPolls(w)
	}
	defer s.polls.Add(-1)
	ctx := r.Context()
	timer := time.NewTimer(hold)
	defer timer.Stop()
	gen := s.hub.credentialGen()
	for {
		woken, ds := s.hub.waitCached(p.Name)
		if g := s.hub.credentialGen(); g != gen {
			// Some credential changed (maybe this one was revoked): it must still hold.
			gen = g
			if _, err := s.authenticate(r); err != nil {
				return err
			}
		}
		if ds == nil {
			var err error
			if ds, err = s.desired(ctx, p.Name); err != nil {
				return err
			}
		}
		if ds.Digest != after {
			h := w.Header()
			h.Set("ETag", strconv.Quote(ds.Digest))
			h.Set("Cache-Control", "no-store")
			h.Set("Content-Type", "application/json")
			h.Set("X-Content-Type-Options", "nosniff")
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write(s.hub.desiredBody(ds))
			return nil
		}
		select {
		case <-woken:
		case <-timer.C:
			w.Header().Set("ETag", strconv.Quote(ds.Digest))
			w.WriteHeader(http.StatusNotModified)
			return nil
		case <-ctx.Done():
			return nil
		case <-s.streams.Done():
			w.Header().Set("ETag", strconv.Quote(ds.Digest))
			w.WriteHeader(http.StatusNotModified)
			return nil
		}
	}
}

func (s *Server) agentBundle(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	digest := r.PathValue("digest")
	missing := notFound("bundle %s is not assigned to cluster %s", digest, p.Name)
	if bundle.ValidDigest(digest) != nil {
		return missing
	}
	ok, err := s.store.BundleAssigned(r.Context(), p.Name, digest)
	if err != nil {
		return err
	}
	if !ok {
		return missing
	}
	etag := strconv.Quote(digest)
	h := w.Header()
	h.Set("ETag", etag)
	h.Set("Cache-Control", "private, max-age=31536000, immutable")
	if match := r.Header.Get("If-None-Match"); match != "" && slices.Contains(splitETags(match), etag) {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	data, err := s.store.GetBundle(r.Context(), digest)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return missing
		}
		return err
	}
	h.Set("Content-Type", v1.MediaBundle)
	h.Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(data)
	return nil
}

func splitETags(h string) []string {
	var out []string
	for _, part := range strings.Split(h, ",") {
		out = append(out, strings.TrimPrefix(strings.TrimSpace(part), "W/"))
	}
	return out
}

// statusSummary is the part of a report whose change is worth an event in the audit trail.
type statusSummary struct {
	Health            string           `json:"health"`
	AgentVersion      string           `json:"agentVersion,omitempty"`
	KubernetesVersion string           `json:"kubernetesVersion,omitempty"`
	AppliedDigest     string           `json:"appliedDigest,omitempty"`
	Services          []serviceSummary `json:"services,omitempty"`
	Errors            int              `json:"errors,omitempty"`
}

type serviceSummary struct {
	Service string `json:"service"`
	Release string `json:"release,omitempty"`
	Health  string `json:"health"`
	Drifted int    `json:"drifted,omitempty"`
	Errors  int    `json:"errors,omitempty"`
}

func summarize(rep *v1.AgentStatusReport) statusSummary {
	sum := statusSummary{Health: rep.Health, AgentVersion: rep.AgentVersion, KubernetesVersion: rep.KubernetesVersion,
		AppliedDigest: rep.AppliedDigest, Errors: len(rep.Errors)}
	for _, sv := range rep.Services {
		ss := serviceSummary{Service: sv.Service, Release: sv.Release, Health: sv.Health, Errors: len(sv.Errors)}
		for _, o := range sv.Objects {
			if o.Drifted {
				ss.Drifted++
			}
		}
		sum.Services = append(sum.Services, ss)
	}
	slices.SortFunc(sum.Services, func(a, b serviceSummary) int { return strings.Compare(a.Service, b.Service) })
	return sum
}

var healthStates = []string{v1.HealthHealthy, v1.HealthProgressing, v1.HealthUnknown, v1.HealthDegraded, v1.HealthFailed}

func (s *Server) agentStatus(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	var rep v1.AgentStatusReport
	if err := s.decodeStrict(w, r, &rep); err != nil {
		return err
	}
	var fields []v1.FieldError
	if rep.Seq <= 0 {
		fields = append(fields, v1.FieldError{Path: "seq", Message: "must be a positive number that grows with every new report"})
	}
	if rep.Health == "" {
		rep.Health = v1.HealthUnknown
	}
	if !slices.Contains(healthStates, rep.Health) {
		fields = append(fields, v1.FieldError{Path: "health", Message: fmt.Sprintf("%q: want one of %s", rep.Health, strings.Join(healthStates, ", "))})
	}
	for i, sv := range rep.Services {
		if sv.Service == "" {
			fields = append(fields, v1.FieldError{Path: fmt.Sprintf("services[%d].service", i), Message: "required"})
		}
		if sv.Health != "" && !slices.Contains(healthStates, sv.Health) {
			fields = append(fields, v1.FieldError{Path: fmt.Sprintf("services[%d].health", i), Message: fmt.Sprintf("%q is not a health state", sv.Health)})
		}
	}
	epochText := r.Header.Get(v1.HeaderLeaseEpoch)
	epoch, err := strconv.ParseInt(epochText, 10, 64)
	if err != nil || epoch <= 0 {
		return badRequest("header %s=%q: want the epoch of the lease this agent holds (POST /api/v1/agent/lease first)", v1.HeaderLeaseEpoch, epochText)
	}
	if len(fields) > 0 {
		return invalid("status report: the request is invalid", fields...)
	}
	now := s.opts.Now()
	l, err := s.store.GetLease(r.Context(), p.Name)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if l == nil || l.Epoch != epoch || !now.Before(l.ExpiresAt) {
		msg := fmt.Sprintf("cluster %s: this agent's lease (epoch %d) is not the live lease", p.Name, epoch)
		if l != nil && now.Before(l.ExpiresAt) {
			msg += fmt.Sprintf("; holder %q has epoch %d", l.Holder, l.Epoch)
		}
		return &apiError{code: http.StatusConflict, reason: v1.ReasonConflict, msg: msg + "; take the lease again before reporting"}
	}
	summary, err := json.Marshal(summarize(&rep))
	if err != nil {
		return err
	}
	report, err := json.Marshal(rep)
	if err != nil {
		return err
	}
	_, err = s.store.RecordAgentStatus(r.Context(), store.AgentStatus{Cluster: p.Name, Seq: rep.Seq, Epoch: epoch,
		AgentVersion: rep.AgentVersion, KubernetesVersion: rep.KubernetesVersion, Health: rep.Health, AppliedDigest: rep.AppliedDigest,
		Summary: summary, Report: report, LastHeartbeat: now})
	if errors.Is(err, store.ErrDuplicate) {
		writeJSON(w, http.StatusOK, v1.StatusAck{Seq: rep.Seq, Duplicate: true})
		return nil
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v1.StatusAck{Seq: rep.Seq})
	return nil
}

func (s *Server) agentReport(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	name := r.PathValue("name")
	sts, err := s.store.AgentStatuses(r.Context(), name)
	if err != nil {
		return err
	}
	st, ok := sts[name]
	if !ok {
		return notFound("cluster %q has no agent report yet", name)
	}
	out := v1.AgentReport{Cluster: name, Epoch: st.Epoch, LastHeartbeat: st.LastHeartbeat.UTC()}
	if err := json.Unmarshal(st.Report, &out.Report); err != nil {
		return fmt.Errorf("agent report of %s: %w", name, err)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) listAssignments(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	cluster := r.URL.Query().Get("cluster")
	if cluster == "" {
		return badRequest("query parameter cluster is required")
	}
	ds, err := s.store.Desired(r.Context(), cluster)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toWireDesired(ds))
	return nil
}

func (s *Server) assign(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	var req v1.AssignRequest
	if err := s.decodeStrict(w, r, &req); err != nil {
		return err
	}
	var fields []v1.FieldError
	if msgs := validation.IsDNS1123Label(req.Service); len(msgs) > 0 {
		fields = append(fields, v1.FieldError{Path: "service", Message: fmt.Sprintf("%q is not a DNS label: %s", req.Service, msgs[0])})
	}
	if len(req.Clusters) == 0 {
		fields = append(fields, v1.FieldError{Path: "clusters", Message: "name at least one cluster"})
	}
	seen := map[string]bool{}
	for i, c := range req.Clusters {
		if seen[c] {
			fields = append(fields, v1.FieldError{Path: fmt.Sprintf("clusters[%d]", i), Message: fmt.Sprintf("%q is repeated", c)})
		}
		seen[c] = true
	}
	if len(fields) > 0 {
		return invalid("assignment: the request is invalid", fields...)
	}
	ctx := r.Context()
	known, err := s.clusterNames(ctx, req.Clusters)
	if err != nil {
		return err
	}
	for i, c := range req.Clusters {
		if !known[c] {
			fields = append(fields, v1.FieldError{Path: fmt.Sprintf("clusters[%d]", i), Message: fmt.Sprintf("Cluster %q not found", c)})
		}
	}
	if len(fields) > 0 {
		return invalid("assignment: the request is invalid", fields...)
	}
	as := make([]store.Assignment, 0, len(req.Clusters))
	if req.Release == "" {
		for _, c := range req.Clusters {
			as = append(as, store.Assignment{Cluster: c, Service: req.Service})
		}
	} else {
		if as, err = s.releaseAssignments(ctx, &req, p); err != nil {
			return err
		}
	}
	changed, err := s.store.SetAssignments(ctx, as, p.Actor())
	if err != nil {
		return err
	}
	out := v1.AssignResponse{Changed: make([]v1.ClusterDigest, 0, len(changed))}
	for i := range changed {
		s.hub.publish(&changed[i])
		out.Changed = append(out.Changed, v1.ClusterDigest{Cluster: changed[i].Cluster, Digest: changed[i].Digest})
	}
	if len(changed) > 0 {
		s.hub.publishedLocally(changed[0].Seq) // the hub need not decode the event again
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// clusterNames reports which of names are Clusters.
func (s *Server) clusterNames(ctx context.Context, names []string) (map[string]bool, error) {
	known := map[string]bool{}
	if len(names) <= 16 {
		for _, n := range names {
			_, err := s.store.Get(ctx, v1.KindCluster, n)
			if err == nil {
				known[n] = true
			} else if !errors.Is(err, store.ErrNotFound) {
				return nil, err
			}
		}
		return known, nil
	}
	opts := store.ListOptions{Limit: 5000}
	for {
		l, err := s.store.List(ctx, v1.KindCluster, opts)
		if err != nil {
			return nil, err
		}
		for _, o := range l.Items {
			known[o.Name] = true
		}
		if l.Continue == "" {
			return known, nil
		}
		opts.Continue = l.Continue
	}
}

// releaseAssignments resolves the bundle of req.Release for each cluster, storing bundles that the
// release carries inline.
func (s *Server) releaseAssignments(ctx context.Context, req *v1.AssignRequest, p *auth.Principal) ([]store.Assignment, error) {
	o, err := s.store.Get(ctx, v1.KindRelease, req.Release)
	if errors.Is(err, store.ErrNotFound) {
		return nil, invalid("assignment: the request is invalid", v1.FieldError{Path: "release", Message: fmt.Sprintf("Release %q not found", req.Release)})
	}
	if err != nil {
		return nil, err
	}
	var rel v1.Release
	data, _ := json.Marshal(fromStore(o))
	if err := json.Unmarshal(data, &rel); err != nil {
		return nil, fmt.Errorf("read release %s: %w", req.Release, err)
	}
	if rel.Spec.Service != req.Service {
		return nil, invalid("assignment: the request is invalid", v1.FieldError{Path: "release",
			Message: fmt.Sprintf("Release %q is a release of service %q, not %q", req.Release, rel.Spec.Service, req.Service)})
	}
	opts := v1.AssignmentOptions{Namespace: rel.Spec.ServiceSpec.Namespace}
	if opts.Namespace == "" {
		opts.Namespace = rel.Spec.Service
	}
	sync := rel.Spec.ServiceSpec.Sync
	opts.Prune = sync.Prune == nil || *sync.Prune
	opts.SelfHeal = sync.SelfHeal != nil && *sync.SelfHeal
	optJSON, _ := json.Marshal(opts)
	checked := map[string]bool{}
	bundleOf := map[string]*v1.ReleaseBundle{}
	for j := range rel.Status.Bundles {
		for _, c := range rel.Status.Bundles[j].Clusters {
			bundleOf[c] = &rel.Status.Bundles[j]
		}
	}
	var fields []v1.FieldError
	as := make([]store.Assignment, 0, len(req.Clusters))
	for i, c := range req.Clusters {
		rb := bundleOf[c]
		if rb == nil {
			fields = append(fields, v1.FieldError{Path: fmt.Sprintf("clusters[%d]", i),
				Message: fmt.Sprintf("Release %q has no bundle for cluster %q (status.bundles)", req.Release, c)})
			continue
		}
		if !checked[rb.Digest] {
			if err := s.ensureBundle(ctx, req.Release, rb, p); err != nil {
				return nil, err
			}
			checked[rb.Digest] = true
		}
		as = append(as, store.Assignment{Cluster: c, Service: req.Service, Release: req.Release, Bundle: rb.Digest, Options: optJSON})
	}
	if len(fields) > 0 {
		return nil, invalid("assignment: the request is invalid", fields...)
	}
	return as, nil
}

// ensureBundle stores the inline manifests of rb when they are there, checking they hash to its
// digest; otherwise the bundle must have been uploaded.
func (s *Server) ensureBundle(ctx context.Context, release string, rb *v1.ReleaseBundle, p *auth.Principal) error {
	if len(rb.Manifests) == 0 {
		ok, err := s.store.HasBundle(ctx, rb.Digest)
		if err != nil {
			return err
		}
		if !ok {
			return invalid("assignment: the request is invalid", v1.FieldError{Path: "release",
				Message: fmt.Sprintf("bundle %s of Release %q is not stored: upload it first (POST /api/v1/bundles)", rb.Digest, release)})
		}
		return nil
	}
	objs := make([]map[string]any, 0, len(rb.Manifests))
	for i, m := range rb.Manifests {
		var obj map[string]any
		if err := json.Unmarshal(m, &obj); err != nil {
			return invalid("assignment: the request is invalid", v1.FieldError{Path: fmt.Sprintf("release.status.bundles[%s].manifests[%d]", rb.Digest, i), Message: err.Error()})
		}
		objs = append(objs, obj)
	}
	b, err := bundle.New(objs)
	if err != nil {
		return invalid("assignment: the request is invalid", v1.FieldError{Path: "release", Message: fmt.Sprintf("Release %q: %v", release, err)})
	}
	if b.Digest() != rb.Digest {
		return invalid("assignment: the request is invalid", v1.FieldError{Path: "release",
			Message: fmt.Sprintf("Release %q: the inline manifests hash to %s, not the recorded %s", release, b.Digest(), rb.Digest)})
	}
	_, err = s.store.PutBundle(ctx, b.Digest(), b.Bytes(), p.Actor())
	return err
}

func (s *Server) uploadBundle(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	data, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	digest := r.URL.Query().Get("digest")
	if digest == "" {
		digest = bundle.Digest(data)
	} else if err := bundle.ValidDigest(digest); err != nil {
		return badRequest("query parameter digest: %v", err)
	}
	b, err := bundle.Decode(data, digest)
	if err != nil {
		return invalid(fmt.Sprintf("bundle: %v", err), v1.FieldError{Path: "body", Message: err.Error()})
	}
	created, err := s.store.PutBundle(r.Context(), b.Digest(), b.Bytes(), p.Actor())
	if err != nil {
		return err
	}
	code := http.StatusOK
	if created {
		code = http.StatusCreated
	}
	writeJSON(w, code, v1.BundleUploaded{Digest: b.Digest(), Size: len(data), Created: created})
	return nil
}

// overlayClusters adds the live agent state to Cluster objects: connectivity (phase), last
// heartbeat, versions, health and the desired digest when known. Heartbeats are kept out of the
// event log, so they are merged here at read time.
func (s *Server) overlayClusters(ctx context.Context, objs []wireObject) error {
	if len(objs) == 0 {
		return nil
	}
	var names []string
	if len(objs) <= 100 {
		for _, o := range objs {
			names = append(names, o.Metadata.Name)
		}
	}
	sts, err := s.store.AgentStatuses(ctx, names...)
	if err != nil {
		return err
	}
	now := s.opts.Now()
	for i := range objs {
		st, ok := sts[objs[i].Metadata.Name]
		if !ok {
			continue // never reported: the stored status stands
		}
		var cs v1.ClusterStatus
		if len(objs[i].Status) > 0 {
			_ = json.Unmarshal(objs[i].Status, &cs)
		}
		hb := st.LastHeartbeat.UTC()
		cs.LastSeen, cs.AgentVersion, cs.KubernetesVersion, cs.Health, cs.AppliedDigest = &hb, st.AgentVersion, st.KubernetesVersion, st.Health, st.AppliedDigest
		switch {
		case now.Sub(hb) > s.opts.DisconnectAfter:
			cs.Phase = v1.ClusterDisconnected
		case st.Health == v1.HealthHealthy:
			cs.Phase = v1.ClusterReady
		default:
			cs.Phase = v1.ClusterNotReady
		}
		if ds := s.hub.cached(objs[i].Metadata.Name); ds != nil {
			cs.DesiredDigest = ds.Digest
		}
		data, err := json.Marshal(cs)
		if err != nil {
			return err
		}
		objs[i].Status = data
	}
	return nil
}
