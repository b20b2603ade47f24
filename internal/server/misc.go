package server

import (
	"context"
	"net/http"
	"time"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/internal/auth"
	"flotilla.dev/flotilla/internal/store"
)

// issueToken makes a new token secret and the record the store keeps of it.
func issueToken(name, role, by string, expires *time.Time, now time.Time) (string, store.Token, error) {
	secret, err := auth.NewToken()
	if err != nil {
		return "", store.Token{}, err
	}
	id, err := auth.NewTokenID()
	if err != nil {
		return "", store.Token{}, err
	}
	return secret, store.Token{ID: id, Name: name, Hash: auth.HashToken(secret), Role: role,
		CreatedAt: now.UTC(), ExpiresAt: expires, CreatedBy: by}, nil
}

// Health is the body of /healthz and /readyz.
type Health struct {
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
}

func (s *Server) health(w http.ResponseWriter, _ *http.Request, _ *auth.Principal) error {
	writeJSON(w, http.StatusOK, Health{Status: "ok"})
	return nil
}

func (s *Server) ready(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		if info := infoFrom(r.Context()); info != nil {
			info.err = err
		}
		writeJSON(w, http.StatusServiceUnavailable, Health{Status: "unavailable", Error: "store: " + err.Error()})
		return nil
	}
	writeJSON(w, http.StatusOK, Health{Status: "ok"})
	return nil
}

func (s *Server) whoami(w http.ResponseWriter, _ *http.Request, p *auth.Principal) error {
	writeJSON(w, http.StatusOK, v1.WhoAmI{Name: p.Name, Kind: string(p.Kind), Roles: p.Roles})
	return nil
}

func (s *Server) serveOpenAPI(w http.ResponseWriter, _ *http.Request, _ *auth.Principal) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(s.openapi)
	return nil
}
