package source

import (
	"bytes"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func pemEncode(b *pem.Block) []byte { return pem.EncodeToMemory(b) }

const pushBody = `{"ref":"refs/heads/main","after":"0123456789abcdef0123456789abcdef01234567","repository":{"clone_url":"https://git.example.com/shop.git","ssh_url":"git@git.example.com:shop.git"}}`

func githubRequest(body, sig string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/hooks/shop", strings.NewReader(body))
	if sig != "" {
		r.Header.Set(GitHubSignatureHeader, sig)
	}
	r.Header.Set(GitHubEventHeader, "push")
	return r
}

func TestVerifyGitHub(t *testing.T) {
	secret := []byte("hook-secret")
	good := SignGitHub(secret, []byte(pushBody))
	body, err := VerifyGitHub(githubRequest(pushBody, good), secret, 0)
	if err != nil {
		t.Fatal(err)
	}
	push, err := ParseGitHubPush(body)
	if err != nil || push.Ref != "refs/heads/main" || push.After[:4] != "0123" || len(push.CloneURLs) != 2 {
		t.Fatalf("push %+v, %v", push, err)
	}
	tests := []struct {
		name string
		req  *http.Request
		max  int64
		want error
	}{
		{"missing signature", githubRequest(pushBody, ""), 0, ErrSignature},
		{"sha1 signature", githubRequest(pushBody, "sha1=abcd"), 0, ErrSignature},
		{"malformed hex", githubRequest(pushBody, "sha256=zz"), 0, ErrSignature},
		{"wrong secret", githubRequest(pushBody, SignGitHub([]byte("other"), []byte(pushBody))), 0, ErrSignature},
		{"tampered body", githubRequest(strings.Replace(pushBody, "main", "evil", 1), good), 0, ErrSignature},
		{"too large", githubRequest(pushBody, good), 16, ErrBodyTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := VerifyGitHub(tt.req, secret, tt.max); !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
	if _, err := VerifyGitHub(githubRequest(pushBody, good), nil, 0); !errors.Is(err, ErrSignature) {
		t.Fatalf("empty secret: got %v", err)
	}
}

// endlessReader would make a body of any size; the limit must stop reading.
type endlessReader struct{ read int64 }

func (e *endlessReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'a'
	}
	e.read += int64(len(p))
	return len(p), nil
}

func TestWebhookBodyLimitStopsReading(t *testing.T) {
	src := &endlessReader{}
	r := httptest.NewRequest(http.MethodPost, "/hooks/shop", src)
	r.ContentLength = -1
	r.Header.Set(GitHubSignatureHeader, SignGitHub([]byte("s"), nil))
	if _, err := VerifyGitHub(r, []byte("s"), 1<<16); !errors.Is(err, ErrBodyTooLarge) {
		t.Fatalf("got %v, want ErrBodyTooLarge", err)
	}
	if src.read > 1<<17 {
		t.Fatalf("read %d bytes of an endless body", src.read)
	}
}

func TestVerifyGitLab(t *testing.T) {
	body := `{"ref":"refs/heads/main","after":"abc","project":{"git_http_url":"https://gitlab.example.com/shop.git"}}`
	req := func(token string) *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/hooks/shop", bytes.NewBufferString(body))
		if token != "" {
			r.Header.Set(GitLabTokenHeader, token)
		}
		return r
	}
	got, err := VerifyGitLab(req("t0ken"), "t0ken", 0)
	if err != nil {
		t.Fatal(err)
	}
	push, err := ParseGitLabPush(got)
	if err != nil || push.Ref != "refs/heads/main" || push.CloneURLs[0] != "https://gitlab.example.com/shop.git" {
		t.Fatalf("push %+v, %v", push, err)
	}
	for _, tok := range []string{"", "wrong", "t0ken "} {
		if _, err := VerifyGitLab(req(tok), "t0ken", 0); !errors.Is(err, ErrSignature) {
			t.Fatalf("token %q: got %v, want ErrSignature", tok, err)
		}
	}
	if _, err := VerifyGitLab(req("t0ken"), "", 0); !errors.Is(err, ErrSignature) {
		t.Fatalf("no configured token: got %v", err)
	}
	if _, err := VerifyGitLab(req("t0ken"), "t0ken", 8); !errors.Is(err, ErrBodyTooLarge) {
		t.Fatalf("large body: got %v", err)
	}
}
