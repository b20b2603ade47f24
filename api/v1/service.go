package v1

import (
	"bytes"
	"encoding/json"
	"path"
	"strings"
)

// Service is one deployable unit: manifests at a path of a source, rendered
// per cluster and placed on the clusters its selector picks.
type Service struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta    `json:"metadata"`
	Spec     ServiceSpec   `json:"spec"`
	Status   ServiceStatus `json:"status,omitempty"`
}

// ServiceSpec says where a service's manifests are, how to render them,
// where they go and how changes roll out.
type ServiceSpec struct {
	Source ServiceSource `json:"source"`
	// Helm and Kustomize tune rendering; the format itself (plain YAML,
	// Kustomize, Helm chart) is detected from the files. At most one is set.
	Helm      *HelmOptions      `json:"helm,omitempty"`
	Kustomize *KustomizeOptions `json:"kustomize,omitempty"`
	// Namespace is where namespaced objects without one go; defaults to the
	// service's name.
	Namespace string `json:"namespace,omitempty"`
	// ServiceAccountName, when set, is impersonated by the agent to apply.
	ServiceAccountName string     `json:"serviceAccountName,omitempty"`
	Placement          Placement  `json:"placement"`
	Sync               SyncPolicy `json:"sync,omitempty"`
	// Strategy names a RolloutStrategy; empty means every matching cluster
	// at once.
	Strategy string `json:"strategy,omitempty"`
}

// ServiceSource points at a directory of a Source.
type ServiceSource struct {
	Name string `json:"name"`
	// Path is relative to the repository root; empty means the root.
	Path string `json:"path,omitempty"`
}

// HelmOptions are the values given to a Helm chart; strings in Values are
// Go templates over .Cluster, .Service and .Release.
type HelmOptions struct {
	ValuesFiles []string        `json:"valuesFiles,omitempty"`
	Values      json.RawMessage `json:"values,omitempty"`
	ReleaseName string          `json:"releaseName,omitempty"`
}

// KustomizeOptions tune a Kustomize build; Substitutions are Go templates
// replacing ${name} in the output.
type KustomizeOptions struct {
	Components    []string          `json:"components,omitempty"`
	Substitutions map[string]string `json:"substitutions,omitempty"`
}

// Placement picks the clusters a service runs on. ClusterSelector is
// required; {} picks every cluster.
type Placement struct {
	ClusterSelector *LabelSelector `json:"clusterSelector"`
}

// SyncPolicy says how agents converge: Prune deletes objects that left the
// manifests (default true); SelfHeal reverts drift (default false).
type SyncPolicy struct {
	Prune    *bool `json:"prune,omitempty"`
	SelfHeal *bool `json:"selfHeal,omitempty"`
}

// ServiceStatus is written by the server.
type ServiceStatus struct {
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// LatestRelease is the newest release cut for the service;
	// CurrentRelease the last one that reached every targeted cluster (what
	// a newly matching cluster gets); ActiveRollout the rollout in flight.
	LatestRelease  string      `json:"latestRelease,omitempty"`
	CurrentRelease string      `json:"currentRelease,omitempty"`
	ActiveRollout  string      `json:"activeRollout,omitempty"`
	Conditions     []Condition `json:"conditions,omitempty"`
}

// GetTypeMeta implements Object.
func (s *Service) GetTypeMeta() *TypeMeta { return &s.TypeMeta }

// GetMetadata implements Object.
func (s *Service) GetMetadata() *ObjectMeta { return &s.Metadata }

// Default implements Object.
func (s *Service) Default() {
	s.TypeMeta.setDefaults(KindService)
	if s.Spec.Namespace == "" {
		s.Spec.Namespace = s.Metadata.Name
	}
	s.Spec.Sync.setDefaults()
}

func (p *SyncPolicy) setDefaults() {
	if p.Prune == nil {
		p.Prune = boolPtr(true)
	}
	if p.SelfHeal == nil {
		p.SelfHeal = boolPtr(false)
	}
}

// Validate implements Object.
func (s *Service) Validate() error {
	v := newValidator(KindService, &s.Metadata)
	s.TypeMeta.validate(v, KindService)
	s.Metadata.validate(v)
	s.Spec.validate(v, "spec")
	return v.err()
}

func (s *ServiceSpec) validate(v *validator, p string) {
	v.dnsLabel(p+".source.name", s.Source.Name)
	relPath(v, p+".source.path", s.Source.Path)
	if s.Helm != nil && s.Kustomize != nil {
		v.add(p, "helm and kustomize are mutually exclusive")
	}
	if h := s.Helm; h != nil {
		for i, f := range h.ValuesFiles {
			if f == "" {
				v.add(index(p+".helm.valuesFiles", i), "must not be empty")
			}
			relPath(v, index(p+".helm.valuesFiles", i), f)
		}
		if len(h.Values) > 0 {
			t := bytes.TrimSpace(h.Values)
			if !bytes.Equal(t, []byte("null")) && (len(t) == 0 || t[0] != '{') {
				v.add(p+".helm.values", "must be a mapping")
			}
		}
		v.optionalDNSLabel(p+".helm.releaseName", h.ReleaseName)
	}
	if k := s.Kustomize; k != nil {
		for i, c := range k.Components {
			if c == "" {
				v.add(index(p+".kustomize.components", i), "must not be empty")
			}
			relPath(v, index(p+".kustomize.components", i), c)
		}
		for _, name := range sortedKeys(k.Substitutions) {
			if !identifierRE.MatchString(name) {
				v.add(p+".kustomize.substitutions["+name+"]", "key must be an identifier")
			}
		}
	}
	v.optionalDNSLabel(p+".namespace", s.Namespace)
	v.optionalDNSLabel(p+".serviceAccountName", s.ServiceAccountName)
	v.selector(p+".placement.clusterSelector", s.Placement.ClusterSelector, true)
	v.optionalDNSLabel(p+".strategy", s.Strategy)
}

// relPath requires a relative, clean path that stays inside the repository.
func relPath(v *validator, p, s string) {
	if s == "" {
		return
	}
	if strings.HasPrefix(s, "/") {
		v.add(p, "%q must be relative to the repository root", s)
		return
	}
	c := path.Clean(s)
	if c == ".." || strings.HasPrefix(c, "../") {
		v.add(p, "%q leaves the repository", s)
	}
}
