package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/internal/auth"
	"flotilla.dev/flotilla/internal/dashboard"
	"flotilla.dev/flotilla/internal/store"
)

// maxIDTokenBody bounds the body of the ID token exchange, whatever MaxBodyBytes allows.
const maxIDTokenBody = 64 << 10

// ssoActor creates the API tokens of single sign-on sessions in the audit trail.
var ssoActor = store.Actor{Kind: store.ActorSystem, Name: "sso"}

// oidcInfo tells the CLI which provider and client to run the device flow with.
func (s *Server) oidcInfo(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	info, ok := s.dash.SSO(r.Context())
	if !ok {
		return notFound("single sign-on (OIDC) is not configured on this server")
	}
	writeJSON(w, http.StatusOK, v1.OIDCInfo{Issuer: info.Issuer, ClientID: info.ClientID, DeviceAuthorizationEndpoint: info.DeviceAuthorizationEndpoint})
	return nil
}

// oidcToken exchanges a valid ID token for a Flotilla API token of the person it names, with the
// role the role map gives them and a lifetime of OIDCCLITokenTTL. The CLI then uses that token
// like any other, so the API keeps one way to authenticate, a session can be revoked with
// `flotilla token delete`, and calls do not depend on the provider. An ID token can be exchanged
// as often as it is valid (the device flow has no nonce of ours); its expiry bounds that.
func (s *Server) oidcToken(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	if _, ok := s.dash.SSO(r.Context()); !ok {
		return notFound("single sign-on (OIDC) is not configured on this server")
	}
	if mt := mediaType(r); mt != mediaJSON {
		return unsupportedMediaType(mt, mediaJSON)
	}
	// An ID token is a few kilobytes; this public route takes no more than maxIDTokenBody.
	r.Body = http.MaxBytesReader(w, r.Body, maxIDTokenBody)
	data, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var req v1.OIDCTokenRequest
	if err := dec.Decode(&req); err != nil {
		return badRequest("request body: %s", jsonErrorWhere(data, err))
	}
	if req.IDToken == "" {
		return invalid("oidc token: the request is invalid", v1.FieldError{Path: "idToken", Message: "required"})
	}
	p, err := s.dash.IdentifyCLI(r.Context(), req.IDToken)
	if errors.Is(err, dashboard.ErrProviderUnavailable) {
		return &apiError{code: http.StatusBadGateway, reason: "ProviderUnavailable", msg: err.Error()}
	}
	if err != nil {
		return err
	}
	now := s.opts.Now()
	expires := now.Add(s.opts.OIDCCLITokenTTL).UTC()
	secret, rec, err := issueToken(p.Name, p.Roles[0], ssoActor.Kind+":"+ssoActor.Name, &expires, now)
	if err != nil {
		return err
	}
	if err := s.store.CreateToken(r.Context(), rec, ssoActor); err != nil {
		return fmt.Errorf("create token for %s: %w", p.Name, err)
	}
	out := toWireToken(rec)
	out.Secret = secret
	writeJSON(w, http.StatusCreated, out)
	return nil
}
