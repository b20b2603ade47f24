package client

import (
	"context"
	"net/http"
	"net/url"

	v1 "flotilla.dev/flotilla/api/v1"
)

// RolloutAction takes a person's action on a rollout: approve, promote, pause, resume, abort,
// rollback (to names the target release, "" for each cluster's previous one) or retry. It returns
// the rollout as it is after the action.
func (c *Client) RolloutAction(ctx context.Context, name, action, to string) (*v1.Rollout, error) {
	var body []byte
	if to != "" {
		var err error
		if body, err = encode(v1.RolloutActionRequest{To: to}); err != nil {
			return nil, err
		}
	}
	var out v1.Rollout
	err := c.do(ctx, request{method: http.MethodPost, path: "/api/v1/rollouts/" + url.PathEscape(name) + "/" + url.PathEscape(action), body: body}, &out)
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// RolloutPlan shows which clusters fall in which wave if release (or, when "", the service's latest
// release) of service rolled out now.
func (c *Client) RolloutPlan(ctx context.Context, service, release string) (*v1.RolloutPlan, error) {
	q := url.Values{}
	if release != "" {
		q.Set("release", release)
	}
	var out v1.RolloutPlan
	if err := c.do(ctx, request{method: http.MethodGet, path: "/api/v1/services/" + url.PathEscape(service) + "/rolloutplan", query: q}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
