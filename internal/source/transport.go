package source

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/plumbing/transport/client"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
)

type policyKey struct{}

// dialPolicy is what the guarded dialer enforces for one Fetcher's requests.
type dialPolicy struct {
	allowLocal bool
}

func withPolicy(ctx context.Context, p dialPolicy) context.Context {
	return context.WithValue(ctx, policyKey{}, p)
}

var installOnce sync.Once

// installTransport replaces go-git's http and https transports, once per
// process, with ones whose dialer refuses forbidden addresses for requests
// that carry a dialPolicy. Redirects stay under go-git's own policy, which
// follows them only for the first request and drops credentials when the
// origin changes; the dialer then checks where they lead.
func installTransport() {
	installOnce.Do(func() {
		d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.DialContext = guardedDial(d)
		c := githttp.NewClient(&http.Client{Transport: tr})
		client.InstallProtocol("http", c)
		client.InstallProtocol("https", c)
	})
}

// guardedDial wraps d so that, for contexts carrying a dialPolicy without
// allowLocal, it resolves the host, refuses forbidden addresses and dials
// the address it checked.
func guardedDial(d *net.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		p, ok := ctx.Value(policyKey{}).(dialPolicy)
		if !ok || p.allowLocal {
			return d.DialContext(ctx, network, addr)
		}
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return nil, err
		}
		for _, ip := range ips {
			if forbiddenAddr(ip) {
				return nil, fmt.Errorf("source: dial %s: %w: %s is loopback, link-local or metadata", addr, ErrURLRefused, ip)
			}
		}
		return d.DialContext(ctx, network, net.JoinHostPort(ips[0].String(), port))
	}
}
