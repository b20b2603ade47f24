package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/internal/auth"
	"flotilla.dev/flotilla/internal/store"
)

func toWireToken(t store.Token) v1.Token {
	return v1.Token{ID: t.ID, Name: t.Name, Role: t.Role, CreatedAt: t.CreatedAt.UTC(), CreatedBy: t.CreatedBy, ExpiresAt: t.ExpiresAt}
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	ts, err := s.store.ListTokens(r.Context())
	if err != nil {
		return fmt.Errorf("list tokens: %w", err)
	}
	out := v1.TokenList{Items: make([]v1.Token, 0, len(ts))}
	for _, t := range ts {
		out.Items = append(out.Items, toWireToken(t))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	if mt := mediaType(r); mt != mediaJSON {
		return unsupportedMediaType(mt, mediaJSON)
	}
	data, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var req v1.TokenRequest
	if err := dec.Decode(&req); err != nil {
		return badRequest("request body: %s", jsonErrorWhere(data, err))
	}
	var fields []v1.FieldError
	if req.Name == "" {
		fields = append(fields, v1.FieldError{Path: "name", Message: "required"})
	} else if msgs := validation.IsDNS1123Label(req.Name); len(msgs) > 0 {
		fields = append(fields, v1.FieldError{Path: "name", Message: fmt.Sprintf("%q is not a DNS label: %s", req.Name, msgs[0])})
	}
	if err := s.opts.Roles.Valid(req.Role); err != nil {
		fields = append(fields, v1.FieldError{Path: "role", Message: err.Error()})
	}
	if req.ExpiresAt != nil && !req.ExpiresAt.After(s.opts.Now()) {
		fields = append(fields, v1.FieldError{Path: "expiresAt", Message: "must be in the future"})
	}
	if len(fields) > 0 {
		return invalid("token: the request is invalid", fields...)
	}
	existing, err := s.store.ListTokens(r.Context())
	if err != nil {
		return fmt.Errorf("create token: %w", err)
	}
	if slices.ContainsFunc(existing, func(t store.Token) bool { return t.Name == req.Name }) {
		return fmt.Errorf("token %q: %w (token names identify actors in the audit trail)", req.Name, store.ErrAlreadyExists)
	}
	secret, rec, err := issueToken(req.Name, req.Role, p.String(), req.ExpiresAt, s.opts.Now())
	if err != nil {
		return err
	}
	if err := s.store.CreateToken(r.Context(), rec, p.Actor()); err != nil {
		return fmt.Errorf("create token %q: %w", req.Name, err)
	}
	out := toWireToken(rec)
	out.Secret = secret
	writeJSON(w, http.StatusCreated, out)
	return nil
}

func (s *Server) deleteToken(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	id := r.PathValue("id")
	if err := s.store.DeleteToken(r.Context(), id, p.Actor()); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return notFound("token %q not found", id)
		}
		return fmt.Errorf("delete token %q: %w", id, err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// BootstrapAdminName is the name of the admin token created on first start.
const BootstrapAdminName = "admin"

// BootstrapAdminToken creates an admin token when the store holds no token at all, and returns its
// secret (to be shown once) and true. With tokens present it returns "", false.
func BootstrapAdminToken(ctx context.Context, st store.Store) (string, bool, error) {
	ts, err := st.ListTokens(ctx)
	if err != nil {
		return "", false, fmt.Errorf("bootstrap admin token: %w", err)
	}
	if len(ts) > 0 {
		return "", false, nil
	}
	secret, rec, err := issueToken(BootstrapAdminName, auth.RoleAdmin, "system:bootstrap", nil, time.Now())
	if err != nil {
		return "", false, err
	}
	if err := st.CreateToken(ctx, rec, store.Actor{Kind: store.ActorSystem, Name: "bootstrap"}); err != nil {
		return "", false, fmt.Errorf("bootstrap admin token: %w", err)
	}
	return secret, true, nil
}
