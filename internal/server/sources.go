package server

import (
	"errors"
	"fmt"
	"net/http"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/internal/auth"
	"flotilla.dev/flotilla/internal/source"
)

// MaxWebhookBody is the largest webhook body read; push events are a few kilobytes.
const MaxWebhookBody = source.DefaultMaxWebhookBody

// errWebhookAuth is the one answer to every webhook that is not authenticated, whatever the
// reason (unknown source, no secret configured, missing or wrong signature), so that the public
// route tells an outsider nothing about which sources exist.
var errWebhookAuth = fmt.Errorf("%w: webhook signature or token missing or not valid for this source", auth.ErrUnauthenticated)

// sourceWebhook authenticates a push webhook by its signature (GitHub) or token (GitLab) against
// the source's webhook secret, before anything of the body is parsed, and queues a fetch.
func (s *Server) sourceWebhook(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	name := r.PathValue("name")
	ctx := r.Context()
	gh, gl := r.Header.Get(source.GitHubSignatureHeader) != "", r.Header.Get(source.GitLabTokenHeader) != ""
	if !gh && !gl {
		return errWebhookAuth
	}
	secret, err := s.opts.Deploy.WebhookSecret(ctx, name)
	if err != nil {
		return errWebhookAuth
	}
	var body []byte
	if gh {
		body, err = source.VerifyGitHub(r, secret, MaxWebhookBody)
	} else {
		body, err = source.VerifyGitLab(r, string(secret), MaxWebhookBody)
	}
	switch {
	case errors.Is(err, source.ErrBodyTooLarge):
		return &apiError{code: http.StatusRequestEntityTooLarge, reason: v1.ReasonTooLarge,
			msg: fmt.Sprintf("webhook body is larger than the limit of %d bytes", MaxWebhookBody)}
	case err != nil:
		return errWebhookAuth
	}
	out := v1.WebhookAccepted{Source: name}
	var push *source.Push
	switch {
	case gh && r.Header.Get(source.GitHubEventHeader) == "push":
		push, err = source.ParseGitHubPush(body)
	case gl && (r.Header.Get(source.GitLabEventHeader) == "Push Hook" || r.Header.Get(source.GitLabEventHeader) == "Tag Push Hook"):
		push, err = source.ParseGitLabPush(body)
	}
	if err != nil {
		return badRequest("webhook: %v", err)
	}
	if push != nil {
		out.Ref, out.Commit = push.Ref, push.After
	}
	// Any authenticated call fetches: the fetch resolves the source's own ref, so a push to
	// another branch costs one ls-remote and changes nothing.
	if err := s.opts.Deploy.Trigger(ctx, name, out.Ref, out.Commit); err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, out)
	return nil
}
