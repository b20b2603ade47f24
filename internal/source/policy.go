package source

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
)

// Errors returned by the package; callers branch on them with errors.Is.
var (
	// ErrURLRefused means a repository URL breaks the URL policy.
	ErrURLRefused = errors.New("repository URL refused")
	// ErrRefRefused means a ref is not an acceptable name.
	ErrRefRefused = errors.New("ref refused")
	// ErrRefNotFound means the remote has no branch, tag or matching version for the ref.
	ErrRefNotFound = errors.New("ref not found")
	// ErrCredentials means credentials could not be found or used.
	ErrCredentials = errors.New("credentials")
	// ErrCheckoutTooLarge means a commit's tree is over the checkout limits.
	ErrCheckoutTooLarge = errors.New("checkout too large")
	// ErrUnsafeTree means a commit's tree holds a name that cannot be written safely.
	ErrUnsafeTree = errors.New("unsafe tree entry")
	// ErrSignature means a webhook's signature or token is missing or wrong.
	ErrSignature = errors.New("webhook signature invalid")
	// ErrBodyTooLarge means a webhook body is over the size limit.
	ErrBodyTooLarge = errors.New("webhook body too large")
)

var scpLike = regexp.MustCompile(`^([A-Za-z0-9._~-]+)@([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):(.+)$`)

// endpoint is a checked repository URL.
type endpoint struct {
	scheme string // https, ssh, http, file
	host   string // without port; "" for file
	raw    string
}

// checkURL applies the URL policy and returns the parsed endpoint. It does
// not resolve names; checkHost does.
func checkURL(raw string, allowLocal bool) (endpoint, error) {
	refuse := func(why string) (endpoint, error) {
		return endpoint{}, fmt.Errorf("source: %q: %w: %s", raw, ErrURLRefused, why)
	}
	switch {
	case raw == "":
		return refuse("empty")
	case strings.HasPrefix(raw, "-"):
		return refuse("begins with '-'")
	case strings.ContainsAny(raw, "\x00\r\n\t "):
		return refuse("holds whitespace or control characters")
	case isTransportHelper(raw):
		return refuse("transport helpers such as ext:: are not allowed")
	}
	if m := scpLike.FindStringSubmatch(raw); m != nil && !strings.Contains(raw, "://") {
		if strings.HasPrefix(m[3], "-") || strings.HasPrefix(m[1], "-") {
			return refuse("path begins with '-'")
		}
		return endpoint{scheme: "ssh", host: strings.Trim(m[2], "[]"), raw: raw}, nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return refuse(err.Error())
	}
	scheme := strings.ToLower(u.Scheme)
	switch scheme {
	case "https", "ssh":
	case "http":
		if !allowLocal {
			return refuse("plain http is allowed only with AllowLocal")
		}
	case "file":
		if !allowLocal {
			return refuse("file:// is allowed only with AllowLocal")
		}
		if strings.HasPrefix(u.Path, "-") || u.Host != "" {
			return refuse("bad file URL")
		}
		return endpoint{scheme: "file", raw: raw}, nil
	case "":
		return refuse("no scheme (local paths are not repository URLs)")
	default:
		return refuse("scheme " + scheme + " is not allowed; use https or ssh")
	}
	host := u.Hostname()
	if host == "" || strings.HasPrefix(host, "-") {
		return refuse("no host")
	}
	if u.User != nil {
		if strings.HasPrefix(u.User.Username(), "-") {
			return refuse("user name begins with '-'")
		}
		if _, hasPassword := u.User.Password(); hasPassword {
			return refuse("credentials in the URL; use a secret reference")
		}
	}
	if !allowLocal {
		if addr, err := netip.ParseAddr(host); err == nil && forbiddenAddr(addr) {
			return refuse("address " + host + " is loopback, link-local or metadata")
		}
		if isLocalName(host) {
			return refuse("host " + host + " is local")
		}
	}
	return endpoint{scheme: scheme, host: host, raw: raw}, nil
}

// checkHost resolves the endpoint's host and refuses it when any address is
// forbidden.
func checkHost(ctx context.Context, ep endpoint, allowLocal bool, lookup func(ctx context.Context, host string) ([]netip.Addr, error)) error {
	if allowLocal || ep.host == "" {
		return nil
	}
	if _, err := netip.ParseAddr(ep.host); err == nil {
		return nil // literal addresses were checked by checkURL
	}
	addrs, err := lookup(ctx, ep.host)
	if err != nil {
		return fmt.Errorf("source: %s: resolving host: %w", ep.raw, err)
	}
	for _, a := range addrs {
		if forbiddenAddr(a) {
			return fmt.Errorf("source: %q: %w: %s resolves to %s", ep.raw, ErrURLRefused, ep.host, a)
		}
	}
	return nil
}

func defaultLookup(ctx context.Context, host string) ([]netip.Addr, error) {
	return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
}

// metadataAddrs are cloud metadata services outside link-local space.
var metadataAddrs = map[netip.Addr]bool{
	netip.MustParseAddr("100.100.100.200"): true, // Alibaba Cloud
	netip.MustParseAddr("fd00:ec2::254"):   true, // AWS over IPv6
}

// forbiddenAddr reports whether a is loopback, link-local, unspecified or a
// metadata service.
func forbiddenAddr(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsLoopback() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsUnspecified() || a.IsInterfaceLocalMulticast() || metadataAddrs[a]
}

func isLocalName(host string) bool {
	h := strings.TrimSuffix(strings.ToLower(host), ".")
	return h == "localhost" || strings.HasSuffix(h, ".localhost") || h == "metadata.google.internal"
}

// checkRefName refuses names git would refuse and names that could be read
// as options.
func checkRefName(kind, name string) error {
	bad := func(why string) error {
		return fmt.Errorf("source: %s %q: %w: %s", kind, name, ErrRefRefused, why)
	}
	switch {
	case name == "":
		return bad("empty")
	case strings.HasPrefix(name, "-"):
		return bad("begins with '-'")
	case strings.Contains(name, ".."), strings.Contains(name, "@{"), strings.Contains(name, "//"):
		return bad("holds '..', '@{' or '//'")
	case strings.HasPrefix(name, "/"), strings.HasSuffix(name, "/"), strings.HasSuffix(name, "."), strings.HasSuffix(name, ".lock"):
		return bad("bad start or end")
	case name == "@":
		return bad("is '@'")
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f || strings.ContainsRune(" ~^:?*[\\", r) {
			return bad(fmt.Sprintf("holds %q", r))
		}
	}
	return nil
}

// isTransportHelper reports whether raw uses git's "<transport>::<address>"
// form (ext::, fd:: and remote helpers), which runs programs.
func isTransportHelper(raw string) bool {
	i := strings.Index(raw, "::")
	j := strings.Index(raw, "://")
	return i >= 0 && (j < 0 || i < j)
}
