package v1

import (
	"encoding/json"
	"regexp"
	"time"
)

// Release is one immutable version of a service: a source commit plus the
// service's spec at that moment, rendered into content-addressed bundles.
// The system creates releases; people read them.
type Release struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta    `json:"metadata"`
	Spec     ReleaseSpec   `json:"spec"`
	Status   ReleaseStatus `json:"status,omitempty"`
}

// ReleaseSpec is what was released.
type ReleaseSpec struct {
	Service string `json:"service"`
	Commit  Commit `json:"commit"`
	// ServiceSpec is a snapshot of the service's spec when the release was
	// cut, so later edits to the service do not change the release.
	ServiceSpec ServiceSpec `json:"serviceSpec"`
}

// ReleasePhase is how far rendering got.
type ReleasePhase string

// Release phases.
const (
	ReleasePending  ReleasePhase = "Pending"
	ReleaseRendered ReleasePhase = "Rendered"
	ReleaseFailed   ReleasePhase = "Failed"
)

// ReleaseStatus holds the rendering result: one bundle per distinct set of
// cluster variables, each naming the clusters it serves.
type ReleaseStatus struct {
	Phase      ReleasePhase    `json:"phase,omitempty"`
	Message    string          `json:"message,omitempty"`
	RenderedAt *time.Time      `json:"renderedAt,omitempty"`
	Bundles    []ReleaseBundle `json:"bundles,omitempty"`
	// Failed is set by the rollout runner when a rollout of this release
	// failed (rolled back, failed or aborted). Automation must not roll a
	// failed release out again; `flotilla rollout retry` clears it.
	Failed *ReleaseFailure `json:"failed,omitempty"`
}

// ReleaseFailure records why a release is marked failed.
type ReleaseFailure struct {
	// Rollout is the rollout that failed; Reason its final message.
	Rollout string    `json:"rollout"`
	Reason  string    `json:"reason,omitempty"`
	At      time.Time `json:"at"`
}

// ReleaseBundle is one rendered bundle, addressed by "sha256:<hex>" of its
// canonical content. Manifests may carry the content inline until a bundle
// store exists.
type ReleaseBundle struct {
	Digest    string            `json:"digest"`
	Clusters  []string          `json:"clusters"`
	Manifests []json.RawMessage `json:"manifests,omitempty"`
}

// BundleFor returns the digest of the bundle rendered for cluster, or "".
func (s *ReleaseStatus) BundleFor(cluster string) string {
	for _, b := range s.Bundles {
		for _, c := range b.Clusters {
			if c == cluster {
				return b.Digest
			}
		}
	}
	return ""
}

// GetTypeMeta implements Object.
func (r *Release) GetTypeMeta() *TypeMeta { return &r.TypeMeta }

// GetMetadata implements Object.
func (r *Release) GetMetadata() *ObjectMeta { return &r.Metadata }

// Default implements Object.
func (r *Release) Default() {
	r.TypeMeta.setDefaults(KindRelease)
	if r.Spec.ServiceSpec.Namespace == "" {
		r.Spec.ServiceSpec.Namespace = r.Spec.Service
	}
	r.Spec.ServiceSpec.Sync.setDefaults()
	if r.Status.Phase == "" {
		r.Status.Phase = ReleasePending
	}
}

var digestRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// Validate implements Object.
func (r *Release) Validate() error {
	v := newValidator(KindRelease, &r.Metadata)
	r.TypeMeta.validate(v, KindRelease)
	r.Metadata.validate(v)
	v.dnsLabel("spec.service", r.Spec.Service)
	if r.Spec.Commit.SHA == "" {
		v.add("spec.commit.sha", "required")
	} else if !shaRE.MatchString(r.Spec.Commit.SHA) {
		v.add("spec.commit.sha", "%q is not a full lowercase hexadecimal commit id (40 or 64 digits)", r.Spec.Commit.SHA)
	}
	r.Spec.ServiceSpec.validate(v, "spec.serviceSpec")
	v.optionalOneOf("status.phase", string(r.Status.Phase),
		string(ReleasePending), string(ReleaseRendered), string(ReleaseFailed))
	seen := map[string]int{}
	for i, b := range r.Status.Bundles {
		p := index("status.bundles", i)
		if !digestRE.MatchString(b.Digest) {
			v.add(p+".digest", "%q is not sha256:<64 hex digits>", b.Digest)
		}
		for j, c := range b.Clusters {
			v.dnsLabel(index(p+".clusters", j), c)
			if k, dup := seen[c]; dup {
				v.add(index(p+".clusters", j), "cluster %q already has bundles[%d]", c, k)
			}
			seen[c] = i
		}
	}
	return v.err()
}
