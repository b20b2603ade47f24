package server

import (
	"context"
	"errors"
	"net/http"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/internal/auth"
	"flotilla.dev/flotilla/internal/store"
)

// Deployer is what the release routes need of the source and release controller
// (internal/deploy). Errors the caller can correct carry a UserError method and are answered 422.
type Deployer interface {
	// Trigger asks for an immediate fetch of a source after an authenticated webhook call, with
	// what the push said (ref, commit; "" if nothing). Any replica may call it; the leading
	// controller fetches.
	Trigger(ctx context.Context, source, ref, commit string) error
	// WebhookSecret returns the key that authenticates a source's webhook.
	WebhookSecret(ctx context.Context, source string) ([]byte, error)
	// CreateRelease releases a service at a ref ("" for its source's ref); created is false when
	// the release of that commit and spec existed already.
	CreateRelease(ctx context.Context, service, ref string, by store.Actor) (rel *v1.Release, created bool, err error)
	// Preview renders a service for one cluster at a ref without creating anything.
	Preview(ctx context.Context, service, cluster, ref string) (*v1.Preview, error)
	// Diff compares two releases' manifests, for one cluster or all.
	Diff(ctx context.Context, from, to, cluster string) (*v1.ReleaseDiff, error)
}

// releaseRoutes returns the routes of sources and releases. They exist only when the server runs
// a Deployer (Options.Deploy): without one there is nothing to fetch or render with.
func (s *Server) releaseRoutes() []Route {
	if s.opts.Deploy == nil {
		return nil
	}
	return []Route{
		{Method: "POST", Path: "/api/v1/services/{name}/releases", Rule: auth.Require(auth.VerbCreate, "releases"),
			OperationID: "createServiceRelease", Summary: "Release a service at a ref of its source (default: the source's ref), rendered for every targeted cluster, and hand it over",
			Request: "ReleaseRequest", Response: "Release", Code: http.StatusCreated, handle: s.createRelease},
		{Method: "GET", Path: "/api/v1/services/{name}/preview", Rule: auth.Require(auth.VerbGet, "releases"),
			OperationID: "previewService", Summary: "Render a service for one cluster without releasing it; Secret data redacted",
			Response: "Preview", handle: s.previewService, Query: []Param{
				{"cluster", "the cluster to render for (required)", "string"},
				{"ref", "branch, tag, branch:NAME, tag:NAME, semver:RANGE, commit:SHA or a full commit id (default: the source's last commit)", "string"}}},
		{Method: "GET", Path: "/api/v1/releases/{name}/diff", Rule: auth.Require(auth.VerbGet, "releases"),
			OperationID: "diffRelease", Summary: "Unified diff of the manifests of this release against another; Secret data redacted",
			Response: "ReleaseDiff", handle: s.diffRelease, Query: []Param{
				{"to", "the release to compare with (required)", "string"},
				{"cluster", "compare the bundles of this cluster only (default: every cluster)", "string"}}},
		{Method: "POST", Path: "/api/v1/sources/{name}/webhook", Rule: auth.Public(),
			OperationID: "sourceWebhook", Summary: "Push webhook of a source (GitHub X-Hub-Signature-256 or GitLab X-Gitlab-Token, checked before the body is parsed): fetch now",
			Response: "WebhookAccepted", Code: http.StatusAccepted, handle: s.sourceWebhook},
	}
}

// releaseSchemas names the release routes' bodies for the OpenAPI document.
func releaseSchemas() map[string]any {
	return map[string]any{"ReleaseRequest": v1.ReleaseRequest{}, "Preview": v1.Preview{}, "ReleaseDiff": v1.ReleaseDiff{},
		"WebhookAccepted": v1.WebhookAccepted{}}
}

// deployErr turns an error the caller can correct into a 422; others pass as they are.
func deployErr(err error) error {
	var ue interface{ UserError() bool }
	if errors.As(err, &ue) && ue.UserError() {
		return invalid(err.Error())
	}
	return err
}

func (s *Server) createRelease(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	var req v1.ReleaseRequest
	if r.ContentLength != 0 {
		if err := s.decodeStrict(w, r, &req); err != nil {
			return err
		}
	}
	rel, created, err := s.opts.Deploy.CreateRelease(r.Context(), r.PathValue("name"), req.Ref, p.Actor())
	if err != nil {
		return deployErr(err)
	}
	code := http.StatusOK
	if created {
		code = http.StatusCreated
	}
	writeJSON(w, code, rel)
	return nil
}

func (s *Server) previewService(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	q := r.URL.Query()
	if q.Get("cluster") == "" {
		return badRequest("query parameter cluster is required")
	}
	pv, err := s.opts.Deploy.Preview(r.Context(), r.PathValue("name"), q.Get("cluster"), q.Get("ref"))
	if err != nil {
		return deployErr(err)
	}
	writeJSON(w, http.StatusOK, pv)
	return nil
}

func (s *Server) diffRelease(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	q := r.URL.Query()
	if q.Get("to") == "" {
		return badRequest("query parameter to is required: the release to compare with")
	}
	d, err := s.opts.Deploy.Diff(r.Context(), r.PathValue("name"), q.Get("to"), q.Get("cluster"))
	if err != nil {
		return deployErr(err)
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}
