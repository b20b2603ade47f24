package v1

import (
	"net/url"
	"regexp"
	"strings"
	"time"
)

// Source is a place manifests come from; today a Git repository.
type Source struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta   `json:"metadata"`
	Spec     SourceSpec   `json:"spec"`
	Status   SourceStatus `json:"status,omitempty"`
}

// SourceSpec holds exactly one kind of source (only git for now; room is kept
// for OCI artifacts and Helm repositories).
type SourceSpec struct {
	Git *GitSource `json:"git,omitempty"`
}

// GitSource is a Git repository followed at one ref.
type GitSource struct {
	// URL is https://, http://, ssh://, git://, file:// or scp-like
	// (git@host:path).
	URL string `json:"url"`
	Ref GitRef `json:"ref"`
	// Interval is how often the server polls; webhooks trigger sooner.
	Interval Duration `json:"interval,omitempty"`
	// SecretRef names the credential used to fetch, resolved by the server.
	SecretRef string `json:"secretRef,omitempty"`
	// WebhookSecretRef names the secret that authenticates this source's
	// webhook (the GitHub HMAC key or the GitLab token); without it the
	// webhook refuses every call.
	WebhookSecretRef string `json:"webhookSecretRef,omitempty"`
}

// GitRef picks the revision to follow; exactly one field is set.
type GitRef struct {
	Branch string `json:"branch,omitempty"`
	Tag    string `json:"tag,omitempty"`
	// Semver is a constraint such as ">=1.2 <2" over the repository's tags.
	Semver string `json:"semver,omitempty"`
	Commit string `json:"commit,omitempty"`
}

// SourceStatus records the last fetch.
type SourceStatus struct {
	ObservedGeneration int64   `json:"observedGeneration,omitempty"`
	Commit             *Commit `json:"commit,omitempty"`
	// LastFetched is when the source was last fetched, to within a few
	// minutes: it is written with every change of the other fields, and
	// otherwise refreshed at most every few minutes so that polling alone
	// does not fill the audit trail.
	LastFetched *time.Time  `json:"lastFetched,omitempty"`
	Message     string      `json:"message,omitempty"`
	Conditions  []Condition `json:"conditions,omitempty"`
	// LastWebhook is the last authenticated webhook call; writing it is how
	// any server replica asks the leading one to fetch the source at once.
	LastWebhook *WebhookCall `json:"lastWebhook,omitempty"`
}

// WebhookCall is one authenticated webhook call of a source.
type WebhookCall struct {
	Time time.Time `json:"time"`
	// Ref and Commit are what the push said, when it said it.
	Ref    string `json:"ref,omitempty"`
	Commit string `json:"commit,omitempty"`
}

// Commit identifies a Git commit and the facts people want to see about it.
type Commit struct {
	SHA     string     `json:"sha"`
	Message string     `json:"message,omitempty"`
	Author  string     `json:"author,omitempty"`
	Time    *time.Time `json:"time,omitempty"`
}

// GetTypeMeta implements Object.
func (s *Source) GetTypeMeta() *TypeMeta { return &s.TypeMeta }

// GetMetadata implements Object.
func (s *Source) GetMetadata() *ObjectMeta { return &s.Metadata }

// DefaultSourceInterval is the poll interval of a source that gives none.
const DefaultSourceInterval Duration = "1m"

// MinSourceInterval is the shortest poll interval accepted.
const MinSourceInterval = 10 * time.Second

// Default implements Object.
func (s *Source) Default() {
	s.TypeMeta.setDefaults(KindSource)
	if s.Spec.Git != nil && s.Spec.Git.Interval == "" {
		s.Spec.Git.Interval = DefaultSourceInterval
	}
}

var (
	scpLikeRE = regexp.MustCompile(`^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^/].*$`)
	shaRE     = regexp.MustCompile(`^([0-9a-f]{40}|[0-9a-f]{64})$`)
	shortSHA  = regexp.MustCompile(`^[0-9a-f]{7,64}$`)
)

// Validate implements Object.
func (s *Source) Validate() error {
	v := newValidator(KindSource, &s.Metadata)
	s.TypeMeta.validate(v, KindSource)
	s.Metadata.validate(v)
	g := s.Spec.Git
	if g == nil {
		v.add("spec.git", "required")
		return v.err()
	}
	validateGitURL(v, "spec.git.url", g.URL)
	refs := 0
	for _, r := range []string{g.Ref.Branch, g.Ref.Tag, g.Ref.Semver, g.Ref.Commit} {
		if r != "" {
			refs++
		}
	}
	if refs != 1 {
		v.add("spec.git.ref", "must set exactly one of branch, tag, semver or commit, has %d", refs)
	}
	if g.Ref.Branch != "" {
		validateRefName(v, "spec.git.ref.branch", g.Ref.Branch)
	}
	if g.Ref.Tag != "" {
		validateRefName(v, "spec.git.ref.tag", g.Ref.Tag)
	}
	if g.Ref.Commit != "" && !shortSHA.MatchString(g.Ref.Commit) {
		v.add("spec.git.ref.commit", "%q is not a lowercase hexadecimal commit id of 7 to 64 digits", g.Ref.Commit)
	}
	v.duration("spec.git.interval", g.Interval, false)
	if d, err := g.Interval.Parse(); err == nil && d > 0 && d < MinSourceInterval {
		v.add("spec.git.interval", "must be at least %s, got %q", MinSourceInterval, string(g.Interval))
	}
	v.optionalDNSLabel("spec.git.secretRef", g.SecretRef)
	v.optionalDNSLabel("spec.git.webhookSecretRef", g.WebhookSecretRef)
	return v.err()
}

func validateGitURL(v *validator, path, raw string) {
	if raw == "" {
		v.add(path, "required")
		return
	}
	if scpLikeRE.MatchString(raw) {
		return
	}
	u, err := url.Parse(raw)
	if err != nil {
		v.add(path, "%q is not a URL", raw)
		return
	}
	switch u.Scheme {
	case "https", "http", "ssh", "git":
		if u.Host == "" {
			v.add(path, "%q has no host", raw)
		}
	case "file":
		if u.Path == "" {
			v.add(path, "%q has no path", raw)
		}
	default:
		v.add(path, "%q must use https, http, ssh, git or file, or be scp-like (git@host:path)", raw)
	}
}

// validateRefName applies the parts of git-check-ref-format that catch
// typing mistakes.
func validateRefName(v *validator, path, name string) {
	bad := strings.HasPrefix(name, "-") || strings.HasPrefix(name, "/") || strings.HasSuffix(name, "/") ||
		strings.HasSuffix(name, ".") || strings.HasSuffix(name, ".lock") ||
		strings.Contains(name, "..") || strings.Contains(name, "//") || strings.Contains(name, "@{") ||
		strings.ContainsAny(name, " ~^:?*[\\\t\n\x7f")
	if bad {
		v.add(path, "%q is not a valid Git ref name", name)
	}
}
