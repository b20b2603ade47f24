package v1

import (
	"regexp"
	"time"
)

// Cluster is one Kubernetes cluster of the fleet, joined through its agent.
type Cluster struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta    `json:"metadata"`
	Spec     ClusterSpec   `json:"spec"`
	Status   ClusterStatus `json:"status,omitempty"`
}

// ClusterSpec holds what the platform team says about a cluster.
type ClusterSpec struct {
	// Vars are template variables, read as {{ .Cluster.Vars.name }}; keys are
	// identifiers so the dot syntax works.
	Vars map[string]string `json:"vars,omitempty"`
	// Traffic says where this cluster's users enter, one entry per router.
	Traffic []ClusterTraffic `json:"traffic,omitempty"`
}

// ClusterTraffic names the backend that represents the cluster in one
// traffic router.
type ClusterTraffic struct {
	Router  string `json:"router"`
	Backend string `json:"backend"`
	// Capacity is the cluster's share when all backends are at full weight,
	// relative to the other clusters of the router; 100 when omitted. It is
	// also the largest share of the router's traffic, in percent, that the
	// cluster can carry, which the capacity check before a drain uses.
	Capacity int `json:"capacity,omitempty"`
}

// ClusterPhase is the connection state of a cluster's agent.
type ClusterPhase string

// Cluster phases.
const (
	ClusterPending      ClusterPhase = "Pending"
	ClusterReady        ClusterPhase = "Ready"
	ClusterNotReady     ClusterPhase = "NotReady"
	ClusterDisconnected ClusterPhase = "Disconnected"
)

// ClusterStatus is written by the server from the agent's reports.
type ClusterStatus struct {
	Phase             ClusterPhase `json:"phase,omitempty"`
	AgentVersion      string       `json:"agentVersion,omitempty"`
	KubernetesVersion string       `json:"kubernetesVersion,omitempty"`
	LastSeen          *time.Time   `json:"lastSeen,omitempty"`
	// Health is the worst health the agent reports over the cluster's
	// services (Healthy, Progressing, Degraded, Failed, Unknown).
	Health string `json:"health,omitempty"`
	// DesiredDigest and AppliedDigest summarise the assigned and the
	// applied state of every service on the cluster.
	DesiredDigest string      `json:"desiredDigest,omitempty"`
	AppliedDigest string      `json:"appliedDigest,omitempty"`
	Conditions    []Condition `json:"conditions,omitempty"`
}

// GetTypeMeta implements Object.
func (c *Cluster) GetTypeMeta() *TypeMeta { return &c.TypeMeta }

// GetMetadata implements Object.
func (c *Cluster) GetMetadata() *ObjectMeta { return &c.Metadata }

// DefaultCapacity is the capacity of a traffic entry that gives none.
const DefaultCapacity = 100

// Default implements Object.
func (c *Cluster) Default() {
	c.TypeMeta.setDefaults(KindCluster)
	for i := range c.Spec.Traffic {
		if c.Spec.Traffic[i].Capacity == 0 {
			c.Spec.Traffic[i].Capacity = DefaultCapacity
		}
	}
}

var identifierRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Validate implements Object.
func (c *Cluster) Validate() error {
	v := newValidator(KindCluster, &c.Metadata)
	c.TypeMeta.validate(v, KindCluster)
	c.Metadata.validate(v)
	for _, k := range sortedKeys(c.Spec.Vars) {
		if !identifierRE.MatchString(k) {
			v.add("spec.vars["+k+"]", "key must be an identifier (letters, digits and _, not starting with a digit)")
		}
	}
	seen := map[string]bool{}
	for i, t := range c.Spec.Traffic {
		p := index("spec.traffic", i)
		v.dnsLabel(p+".router", t.Router)
		if t.Router != "" && seen[t.Router] {
			v.add(p+".router", "duplicate router %q", t.Router)
		}
		seen[t.Router] = true
		if t.Backend == "" {
			v.add(p+".backend", "required")
		}
		v.nonNegative(p+".capacity", t.Capacity)
	}
	v.optionalOneOf("status.phase", string(c.Status.Phase),
		string(ClusterPending), string(ClusterReady), string(ClusterNotReady), string(ClusterDisconnected))
	return v.err()
}
