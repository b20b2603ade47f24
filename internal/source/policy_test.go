package source

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"golang.org/x/crypto/ssh"
)

func publicLookup(context.Context, string) ([]netip.Addr, error) {
	return []netip.Addr{netip.MustParseAddr("93.184.215.14")}, nil
}

func TestURLPolicy(t *testing.T) {
	rebinding := func(_ context.Context, host string) ([]netip.Addr, error) {
		if host == "git.evil.example" {
			return []netip.Addr{netip.MustParseAddr("93.184.215.14"), netip.MustParseAddr("169.254.169.254")}, nil
		}
		return publicLookup(context.Background(), host)
	}
	strict := newFetcher(t, Options{LookupHost: rebinding})
	local := newFetcher(t, Options{AllowLocal: true, LookupHost: rebinding})
	ok := Ref{Branch: "main"}
	tests := []struct {
		url        string
		ref        Ref
		strictErr  error
		localAllow bool
	}{
		{"file:///srv/repo.git", ok, ErrURLRefused, true},
		{"http://git.example.com/repo.git", ok, ErrURLRefused, true},
		{"https://127.0.0.1/repo.git", ok, ErrURLRefused, true},
		{"https://127.1.2.3:8443/repo.git", ok, ErrURLRefused, true},
		{"https://[::1]/repo.git", ok, ErrURLRefused, true},
		{"https://[::ffff:127.0.0.1]/repo.git", ok, ErrURLRefused, true},
		{"https://169.254.169.254/latest/meta-data", ok, ErrURLRefused, true},
		{"https://[fe80::1]/repo.git", ok, ErrURLRefused, true},
		{"https://0.0.0.0/repo.git", ok, ErrURLRefused, true},
		{"https://100.100.100.200/repo.git", ok, ErrURLRefused, true},
		{"https://localhost/repo.git", ok, ErrURLRefused, true},
		{"https://metadata.google.internal/x", ok, ErrURLRefused, true},
		{"https://git.evil.example/repo.git", ok, ErrURLRefused, true}, // resolves to metadata
		{"ssh://git@127.0.0.1/repo.git", ok, ErrURLRefused, true},
		{"-uupload-pack=touch /tmp/pwned", ok, ErrURLRefused, false},
		{"--upload-pack=touch /tmp/pwned", ok, ErrURLRefused, false},
		{"ext::sh -c touch% /tmp/pwned", ok, ErrURLRefused, false},
		{"ext::sh", ok, ErrURLRefused, false},
		{"fd::17", ok, ErrURLRefused, false},
		{"file://-/x", ok, ErrURLRefused, false},
		{"git@host:-oProxyCommand=x", ok, ErrURLRefused, false},
		{"ssh://-oProxyCommand=x@host/repo.git", ok, ErrURLRefused, false},
		{"https://user:pw@git.example.com/repo.git", ok, ErrURLRefused, false},
		{"ftp://git.example.com/repo.git", ok, ErrURLRefused, false},
		{"/srv/repo.git", ok, ErrURLRefused, false},
		{"https://git.example.com/repo.git", Ref{Branch: "-main"}, ErrRefRefused, false},
		{"https://git.example.com/repo.git", Ref{Branch: "--upload-pack=x"}, ErrRefRefused, false},
		{"https://git.example.com/repo.git", Ref{Tag: "v1..v2"}, ErrRefRefused, false},
		{"https://git.example.com/repo.git", Ref{Branch: "main~1"}, ErrRefRefused, false},
		{"https://git.example.com/repo.git", Ref{Branch: "a b"}, ErrRefRefused, false},
		{"https://git.example.com/repo.git", Ref{Commit: "abc123"}, ErrRefRefused, false},
		{"https://git.example.com/repo.git", Ref{Semver: "-1"}, ErrRefRefused, false},
		{"https://git.example.com/repo.git", Ref{Semver: "not a range"}, ErrRefRefused, false},
		{"https://git.example.com/repo.git", Ref{Branch: "main", Tag: "v1"}, ErrRefRefused, false},
		{"https://git.example.com/repo.git", Ref{}, ErrRefRefused, false},
	}
	for _, tt := range tests {
		t.Run(tt.url+" "+tt.ref.String(), func(t *testing.T) {
			_, err := strict.check(context.Background(), Request{URL: tt.url, Ref: tt.ref})
			if !errors.Is(err, tt.strictErr) {
				t.Fatalf("strict: got %v, want %v", err, tt.strictErr)
			}
			_, err = local.check(context.Background(), Request{URL: tt.url, Ref: tt.ref})
			if tt.localAllow && err != nil {
				t.Fatalf("AllowLocal: refused: %v", err)
			}
			if !tt.localAllow && err == nil {
				t.Fatal("AllowLocal accepted it")
			}
		})
	}
	for _, u := range []string{"https://git.example.com/org/repo.git", "git@github.com:org/repo.git", "ssh://git@git.example.com:2222/org/repo.git"} {
		if _, err := strict.check(context.Background(), Request{URL: u, Ref: ok}); err != nil {
			t.Errorf("%s refused: %v", u, err)
		}
	}
}

func TestDialGuardRefusesLoopback(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	dial := guardedDial(&net.Dialer{})
	_, err := dial(withPolicy(context.Background(), dialPolicy{}), "tcp", srv.Listener.Addr().String())
	if !errors.Is(err, ErrURLRefused) {
		t.Fatalf("dial to loopback under strict policy: got %v, want ErrURLRefused", err)
	}
	for _, ctx := range []context.Context{context.Background(), withPolicy(context.Background(), dialPolicy{allowLocal: true})} {
		c, err := dial(ctx, "tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatalf("dial without a strict policy: %v", err)
		}
		c.Close()
	}
}

func TestRedirectDropsCredentials(t *testing.T) {
	r := newRepo(t)
	other := serveRepos(t, r.root) // another origin (port), serving the same repository
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		http.Redirect(w, req, other.URL+req.URL.RequestURI(), http.StatusFound)
	}))
	defer origin.Close()
	f := newFetcher(t, Options{AllowLocal: true, Credentials: staticCreds{"tok": {Token: "origin-only"}}})
	_, _ = f.Fetch(context.Background(), Request{URL: origin.URL + "/" + r.name, Ref: Ref{Branch: "main"}, SecretRef: "tok"})
	other.mu.Lock()
	defer other.mu.Unlock()
	if len(other.authSeen) == 0 {
		t.Fatal("the redirect was not followed at all; the test proves nothing")
	}
	for _, a := range other.authSeen {
		if a != "" {
			t.Fatalf("credentials for the origin reached another host: %q", a)
		}
	}
}

func TestSSHRefusesUnknownHosts(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := pemEncode(block)
	known, _, _ := ed25519.GenerateKey(rand.Reader)
	knownPub, _ := ssh.NewPublicKey(known)
	stranger, _, _ := ed25519.GenerateKey(rand.Reader)
	strangerPub, _ := ssh.NewPublicKey(stranger)
	knownHosts := fmt.Sprintf("git.example.com %s", ssh.MarshalAuthorizedKey(knownPub))

	f := newFetcher(t, Options{LookupHost: publicLookup, Credentials: staticCreds{
		"nohosts": {SSHKey: keyPEM},
		"ok":      {SSHKey: keyPEM, KnownHosts: []byte(knownHosts)},
	}})
	ep, err := checkURL("git@git.example.com:org/repo.git", false)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := f.authFor(ctx, ep, ""); !errors.Is(err, ErrCredentials) {
		t.Fatalf("ssh without a secret: got %v, want ErrCredentials", err)
	}
	if _, err := f.authFor(ctx, ep, "nohosts"); !errors.Is(err, ErrCredentials) || !strings.Contains(err.Error(), "known_hosts") {
		t.Fatalf("ssh without known_hosts: got %v", err)
	}
	auth, err := f.authFor(ctx, ep, "ok")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := auth.(interface {
		ClientConfig() (*ssh.ClientConfig, error)
	}).ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	addr := &net.TCPAddr{IP: net.ParseIP("93.184.215.14"), Port: 22}
	if err := cfg.HostKeyCallback("git.example.com:22", addr, knownPub); err != nil {
		t.Fatalf("listed host key refused: %v", err)
	}
	if err := cfg.HostKeyCallback("git.example.com:22", addr, strangerPub); err == nil {
		t.Fatal("a host key not in known_hosts was accepted")
	}
	if err := cfg.HostKeyCallback("other.example.com:22", addr, knownPub); err == nil {
		t.Fatal("an unlisted host was accepted")
	}
}

func TestCheckoutRefusesUnsafeTrees(t *testing.T) {
	for _, name := range []string{"..", ".git", ".GIT", "a/b"} {
		t.Run(name, func(t *testing.T) {
			f := newFetcher(t, Options{AllowLocal: true})
			url := "file:///nowhere/" + strings.NewReplacer("/", "_", ".", "d").Replace(name)
			repo, err := f.openCache(url)
			if err != nil {
				t.Fatal(err)
			}
			sha := writeTree(t, repo, name)
			err = f.Checkout(context.Background(), url, sha, t.TempDir()+"/tree")
			if !errors.Is(err, ErrUnsafeTree) {
				t.Fatalf("got %v, want ErrUnsafeTree", err)
			}
		})
	}
}

// writeTree stores a commit whose tree holds one file called name, which
// the git command would refuse to create.
func writeTree(t *testing.T, repo *git.Repository, name string) string {
	t.Helper()
	blob := repo.Storer.NewEncodedObject()
	blob.SetType(plumbing.BlobObject)
	w, _ := blob.Writer()
	w.Write([]byte("kind: Secret\n"))
	w.Close()
	bh, err := repo.Storer.SetEncodedObject(blob)
	if err != nil {
		t.Fatal(err)
	}
	tree := &object.Tree{Entries: []object.TreeEntry{{Name: name, Mode: filemode.Regular, Hash: bh}}}
	to := repo.Storer.NewEncodedObject()
	if err := tree.Encode(to); err != nil {
		t.Fatal(err)
	}
	th, err := repo.Storer.SetEncodedObject(to)
	if err != nil {
		t.Fatal(err)
	}
	sig := object.Signature{Name: "x", Email: "x@example.com"}
	c := &object.Commit{Author: sig, Committer: sig, Message: "evil", TreeHash: th}
	co := repo.Storer.NewEncodedObject()
	if err := c.Encode(co); err != nil {
		t.Fatal(err)
	}
	ch, err := repo.Storer.SetEncodedObject(co)
	if err != nil {
		t.Fatal(err)
	}
	return ch.String()
}
