package source

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// DefaultMaxWebhookBody is the body limit used when a limit of 0 is given:
// push events are small, and GitHub caps payloads at 25 MB.
const DefaultMaxWebhookBody = 1 << 20

// Webhook header names.
const (
	GitHubSignatureHeader = "X-Hub-Signature-256"
	GitHubEventHeader     = "X-GitHub-Event"
	GitLabTokenHeader     = "X-Gitlab-Token"
	GitLabEventHeader     = "X-Gitlab-Event"
)

// readLimited reads at most max bytes of the body and fails when there are more.
func readLimited(r *http.Request, max int64) ([]byte, error) {
	if max <= 0 {
		max = DefaultMaxWebhookBody
	}
	if r.ContentLength > max {
		return nil, fmt.Errorf("source: webhook: %w: %d bytes, limit %d", ErrBodyTooLarge, r.ContentLength, max)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, max+1))
	if err != nil {
		return nil, fmt.Errorf("source: webhook: reading body: %w", err)
	}
	if int64(len(body)) > max {
		return nil, fmt.Errorf("source: webhook: %w: limit %d", ErrBodyTooLarge, max)
	}
	return body, nil
}

// VerifyGitHub reads the request body (at most maxBody bytes) and checks its
// X-Hub-Signature-256 HMAC against secret in constant time. It returns the
// body only when the signature is valid, so nothing unauthenticated is
// parsed.
func VerifyGitHub(r *http.Request, secret []byte, maxBody int64) ([]byte, error) {
	if len(secret) == 0 {
		return nil, fmt.Errorf("source: webhook: %w: no secret configured", ErrSignature)
	}
	sig, ok := strings.CutPrefix(r.Header.Get(GitHubSignatureHeader), "sha256=")
	if !ok {
		return nil, fmt.Errorf("source: webhook: %w: missing %s", ErrSignature, GitHubSignatureHeader)
	}
	want, err := hex.DecodeString(sig)
	if err != nil || len(want) != sha256.Size {
		return nil, fmt.Errorf("source: webhook: %w: malformed %s", ErrSignature, GitHubSignatureHeader)
	}
	body, err := readLimited(r, maxBody)
	if err != nil {
		return nil, err
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	if !hmac.Equal(mac.Sum(nil), want) {
		return nil, fmt.Errorf("source: webhook: %w", ErrSignature)
	}
	return body, nil
}

// SignGitHub returns the X-Hub-Signature-256 value for body, as GitHub
// computes it; for tests and for tools that send webhooks.
func SignGitHub(secret, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// VerifyGitLab checks the X-Gitlab-Token header against token in constant
// time, then reads the body (at most maxBody bytes).
func VerifyGitLab(r *http.Request, token string, maxBody int64) ([]byte, error) {
	if token == "" {
		return nil, fmt.Errorf("source: webhook: %w: no token configured", ErrSignature)
	}
	got := r.Header.Get(GitLabTokenHeader)
	if subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
		return nil, fmt.Errorf("source: webhook: %w: wrong or missing %s", ErrSignature, GitLabTokenHeader)
	}
	return readLimited(r, maxBody)
}

// Push is what a push webhook says happened.
type Push struct {
	// Ref is the full ref name pushed, such as refs/heads/main.
	Ref string
	// After is the commit the ref now points to.
	After string
	// CloneURLs are the repository's URLs, to match against sources.
	CloneURLs []string
}

// ParseGitHubPush reads a verified GitHub push event body.
func ParseGitHubPush(body []byte) (*Push, error) {
	var ev struct {
		Ref        string `json:"ref"`
		After      string `json:"after"`
		Repository struct {
			CloneURL string `json:"clone_url"`
			SSHURL   string `json:"ssh_url"`
			HTMLURL  string `json:"html_url"`
		} `json:"repository"`
	}
	if err := json.Unmarshal(body, &ev); err != nil {
		return nil, fmt.Errorf("source: webhook: github push: %w", err)
	}
	return &Push{Ref: ev.Ref, After: ev.After, CloneURLs: nonEmpty(ev.Repository.CloneURL, ev.Repository.SSHURL, ev.Repository.HTMLURL)}, nil
}

// ParseGitLabPush reads a verified GitLab push event body.
func ParseGitLabPush(body []byte) (*Push, error) {
	var ev struct {
		Ref     string `json:"ref"`
		After   string `json:"after"`
		Project struct {
			HTTPURL string `json:"git_http_url"`
			SSHURL  string `json:"git_ssh_url"`
		} `json:"project"`
	}
	if err := json.Unmarshal(body, &ev); err != nil {
		return nil, fmt.Errorf("source: webhook: gitlab push: %w", err)
	}
	return &Push{Ref: ev.Ref, After: ev.After, CloneURLs: nonEmpty(ev.Project.HTTPURL, ev.Project.SSHURL)}, nil
}

func nonEmpty(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}
