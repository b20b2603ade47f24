package source

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Secret holds what a repository needs for authentication. For https set
// Token (and Username when the server wants one other than
// "x-access-token"); for ssh set SSHKey and KnownHosts.
type Secret struct {
	Username string
	Token    string
	// SSHKey is a PEM-encoded private key.
	SSHKey []byte
	// SSHKeyPassphrase decrypts SSHKey when it is encrypted.
	SSHKeyPassphrase string
	// KnownHosts lists the accepted host keys in known_hosts format. Hosts
	// not listed are refused.
	KnownHosts []byte
}

// Credentials looks up secrets by reference. The caller implements it over
// its secret store; Fetcher never stores what it returns.
type Credentials interface {
	// Secret returns the secret named ref.
	Secret(ctx context.Context, ref string) (*Secret, error)
}

// authFor builds go-git authentication for an endpoint. A nil method means
// anonymous access.
func (f *Fetcher) authFor(ctx context.Context, ep endpoint, ref string) (transport.AuthMethod, error) {
	if ref == "" {
		if ep.scheme == "ssh" {
			return nil, fmt.Errorf("source: %s: %w: ssh needs a secret with a key and known_hosts", ep.raw, ErrCredentials)
		}
		return nil, nil
	}
	if f.opts.Credentials == nil {
		return nil, fmt.Errorf("source: secret %q: %w: no credential store configured", ref, ErrCredentials)
	}
	s, err := f.opts.Credentials.Secret(ctx, ref)
	if err != nil {
		return nil, fmt.Errorf("source: secret %q: %w: %w", ref, ErrCredentials, err)
	}
	switch ep.scheme {
	case "ssh":
		return sshAuth(ep, s, f.opts.CacheDir)
	case "https", "http":
		if s.Token == "" {
			return nil, fmt.Errorf("source: secret %q: %w: no token for %s", ref, ErrCredentials, ep.scheme)
		}
		user := s.Username
		if user == "" {
			user = "x-access-token"
		}
		return &githttp.BasicAuth{Username: user, Password: s.Token}, nil
	}
	return nil, nil
}

func sshAuth(ep endpoint, s *Secret, cacheDir string) (transport.AuthMethod, error) {
	if len(s.SSHKey) == 0 {
		return nil, fmt.Errorf("source: %s: %w: no SSH key", ep.raw, ErrCredentials)
	}
	if len(s.KnownHosts) == 0 {
		return nil, fmt.Errorf("source: %s: %w: no known_hosts; unknown host keys are refused", ep.raw, ErrCredentials)
	}
	user := s.Username
	if user == "" {
		user = "git"
	}
	keys, err := gitssh.NewPublicKeys(user, s.SSHKey, s.SSHKeyPassphrase)
	if err != nil {
		return nil, fmt.Errorf("source: %s: %w: SSH key: %w", ep.raw, ErrCredentials, err)
	}
	cb, err := hostKeyCallback(s.KnownHosts, cacheDir)
	if err != nil {
		return nil, fmt.Errorf("source: %s: %w: known_hosts: %w", ep.raw, ErrCredentials, err)
	}
	keys.HostKeyCallback = cb
	return keys, nil
}

// hostKeyCallback accepts only the keys listed in knownHosts.
func hostKeyCallback(knownHosts []byte, dir string) (ssh.HostKeyCallback, error) {
	// knownhosts reads files; the list is written to a private temporary file
	// and removed as soon as it is parsed.
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(dir, "known_hosts-*")
	if err != nil {
		return nil, err
	}
	name := f.Name()
	defer os.Remove(name)
	if _, err := f.Write(knownHosts); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	cb, err := knownhosts.New(filepath.Clean(name))
	if err != nil {
		return nil, err
	}
	return func(host string, remote net.Addr, key ssh.PublicKey) error {
		if err := cb(host, remote, key); err != nil {
			return fmt.Errorf("host key for %s refused: %w", host, err)
		}
		return nil
	}, nil
}
