package v1

import (
	"encoding/json"
	"time"
)

// This file holds the wire types of the API's endpoints that are not objects: batch apply, the
// audit trail and watch events, API tokens and whoami. The server writes them and the client
// package reads them.

// ApplyRequest is the JSON body of POST /api/v1/apply: objects to create or update together, all
// or nothing. The endpoint also accepts multi-document YAML (application/yaml) instead.
type ApplyRequest struct {
	Items []json.RawMessage `json:"items"`
}

// ApplyResponse answers a successful apply with one result per object, in request order.
type ApplyResponse struct {
	Items []ApplyResult `json:"items"`
}

// Apply actions reported in ApplyResult.Action.
const (
	ActionCreated   = "created"
	ActionUpdated   = "updated"
	ActionUnchanged = "unchanged"
)

// ApplyResult says what an apply did to one object and the version it now has.
type ApplyResult struct {
	Kind            string `json:"kind"`
	Name            string `json:"name"`
	Action          string `json:"action"`
	ResourceVersion string `json:"resourceVersion"`
}

// Actor is who made a change: Kind is user, token, agent or system.
type Actor struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
}

// String returns "kind:name".
func (a Actor) String() string { return a.Kind + ":" + a.Name }

// Event types, as recorded in the store's event log.
const (
	EventCreated       = "Created"
	EventUpdated       = "Updated"
	EventStatusUpdated = "StatusUpdated"
	EventDeleted       = "Deleted"
)

// Event is one entry of the event log: an audit record (GET /api/v1/audit) and, with Object set, a
// watch event (GET /api/v1/watch). Seq is the log's sequence number; a watch resumes after it.
type Event struct {
	Seq   int64     `json:"seq"`
	Time  time.Time `json:"time"`
	Type  string    `json:"type"`
	Kind  string    `json:"kind"`
	Name  string    `json:"name"`
	Actor Actor     `json:"actor"`
	// DigestBefore and DigestAfter are SHA-256 digests (hex) of the object's labels, annotations
	// and spec before and after the change; empty when the object did not exist.
	DigestBefore string `json:"digestBefore,omitempty"`
	DigestAfter  string `json:"digestAfter,omitempty"`
	// ResourceVersion is the object's version after the change.
	ResourceVersion string `json:"resourceVersion,omitempty"`
	// Object is the object after the change (for Deleted, its last state); only watch events
	// carry it.
	Object json.RawMessage `json:"object,omitempty"`
}

// EventList is a page of the audit trail. Next is the Seq to pass as `after` for the following
// page; it is 0 when this page is the last one.
type EventList struct {
	Items []Event `json:"items"`
	Next  int64   `json:"next,omitempty"`
}

// TokenRequest is the body of POST /api/v1/tokens.
type TokenRequest struct {
	Name string `json:"name"`
	Role string `json:"role"`
	// ExpiresAt is when the token stops working; nil means never.
	ExpiresAt *time.Time `json:"expiresAt,omitempty"`
}

// Token describes an API token. Secret is set only in the answer to its creation: the server keeps
// nothing but a hash, so it can never show the token again.
type Token struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Role      string     `json:"role"`
	CreatedAt time.Time  `json:"createdAt"`
	CreatedBy string     `json:"createdBy,omitempty"`
	ExpiresAt *time.Time `json:"expiresAt,omitempty"`
	Secret    string     `json:"secret,omitempty"`
}

// TokenList is the answer of GET /api/v1/tokens.
type TokenList struct {
	Items []Token `json:"items"`
}

// OIDCInfo is the answer of GET /api/v1/auth/oidc: the OpenID Connect provider and client that
// `flotilla login --sso` signs in with (device authorization grant, RFC 8628).
type OIDCInfo struct {
	Issuer   string `json:"issuer"`
	ClientID string `json:"clientID"`
	// DeviceAuthorizationEndpoint is the provider's, when the server could read it.
	DeviceAuthorizationEndpoint string `json:"deviceAuthorizationEndpoint,omitempty"`
}

// OIDCTokenRequest is the body of POST /api/v1/auth/oidc/token: an ID token the CLI got from the
// provider, to exchange for a short-lived Flotilla API token.
type OIDCTokenRequest struct {
	IDToken string `json:"idToken"`
}

// WhoAmI is the answer of GET /api/v1/whoami: the caller as the server sees it.
type WhoAmI struct {
	Name  string   `json:"name"`
	Kind  string   `json:"kind"`
	Roles []string `json:"roles"`
}
