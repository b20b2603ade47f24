package v1

import "encoding/json"

// This file holds the wire types of the release endpoints: creating a release by hand, previewing
// a service's manifests for one cluster, comparing two releases, and source webhooks.

// ReleaseRequest is the body of POST /api/v1/services/{name}/releases. Ref names the revision of
// the service's source to release: a branch or tag name, "branch:NAME", "tag:NAME",
// "semver:RANGE", "commit:SHA" or a full commit id; empty means the source's own ref.
type ReleaseRequest struct {
	Ref string `json:"ref,omitempty"`
}

// Preview is the answer of GET /api/v1/services/{name}/preview: the manifests the service renders
// to for one cluster at one commit, in bundle order. The data of Secrets is redacted.
type Preview struct {
	Service   string            `json:"service"`
	Cluster   string            `json:"cluster"`
	Commit    Commit            `json:"commit"`
	Digest    string            `json:"digest"`
	Manifests []json.RawMessage `json:"manifests"`
}

// ReleaseDiff is the answer of GET /api/v1/releases/{name}/diff: a unified diff of the manifests
// of two releases (from -> to), per group of clusters whose pair of bundles is the same. The data
// of Secrets is redacted: a changed value shows as a changed placeholder.
type ReleaseDiff struct {
	From    string `json:"from"`
	To      string `json:"to"`
	Cluster string `json:"cluster,omitempty"`
	// Diff is empty when the releases render the same for the clusters compared.
	Diff string `json:"diff"`
}

// WebhookAccepted answers an authenticated source webhook: a fetch of the source was queued.
type WebhookAccepted struct {
	Source string `json:"source"`
	// Ref and Commit are what the push event announced, when it was a push.
	Ref    string `json:"ref,omitempty"`
	Commit string `json:"commit,omitempty"`
}
