// Package source fetches Git repositories into a local cache and checks out
// commits for rendering, and verifies the webhooks that announce new
// commits.
//
// # Model
//
// A Fetcher keeps one bare repository per repository URL under
// Options.CacheDir (the directory name is a hash of the URL, so URLs never
// become paths). Fetch resolves a Ref (a branch, a tag, a semver range over
// tags, or a fixed commit) against the remote with one ls-remote, and
// fetches only when the resolved commit is not cached yet: a shallow fetch
// (depth 1) of exactly that commit. Concurrent Fetch calls for one URL and
// ref share a single remote round trip, and fetches into one cache are
// serialised. Checkout writes a commit's tree into a new read-only
// directory, atomically (it appears complete or not at all), which the
// caller opens with os.OpenRoot for package render.
//
// # Policy
//
// URLs may use https and ssh (including scp-like user@host:path). file://,
// plain http and hosts that are, or resolve to, loopback, link-local
// (which includes cloud metadata at 169.254.169.254), unspecified or known
// metadata addresses are refused unless Options.AllowLocal is set; the
// HTTP transport checks the address again when it dials, so DNS answers
// that change between the check and the connection, and redirects to such
// hosts, are refused too. go-git drops credentials when a redirect leaves
// the origin. URLs and refs that begin with '-', and the ext:: transport,
// are refused always, as are refs that git would not accept as names.
//
// Credentials are named by reference (Request.SecretRef) and looked up
// through the Credentials interface that the caller implements: a token for
// https, or an SSH private key with known_hosts, where a host key that is
// not listed is refused.
//
// To check dial addresses, NewFetcher installs, once per process, go-git's
// HTTP and HTTPS transports with a dialer that enforces the policy carried
// by each Fetcher's requests; requests without a policy behave as go-git's
// default.
//
// # Webhooks
//
// VerifyGitHub and VerifyGitLab read at most a given number of bytes of a
// request body and check the signature (HMAC-SHA256, constant time) or the
// token before anything is parsed; ParseGitHubPush and ParseGitLabPush then
// read the pushed ref and commit.
package source
