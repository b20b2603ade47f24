package v1

import "time"

// The agent protocol's wire types: registration, lease, desired state,
// bundles and status reports, plus the assignment and bundle upload calls
// people and automation use.

// HTTP headers of the agent protocol.
const (
	// HeaderLeaseEpoch carries the agent's lease epoch on status posts.
	HeaderLeaseEpoch = "Flotilla-Lease-Epoch"
	// MediaBundle is the content type of a bundle's canonical bytes.
	MediaBundle = "application/vnd.flotilla.bundle+jsonl"
)

// Health states of objects, services and clusters, worst last.
const (
	HealthHealthy     = "Healthy"
	HealthProgressing = "Progressing"
	HealthUnknown     = "Unknown"
	HealthDegraded    = "Degraded"
	HealthFailed      = "Failed"
)

// BootstrapTokenRequest asks for a one-time token that registers a cluster's agent.
type BootstrapTokenRequest struct {
	// TTL is how long the token may be redeemed; default 1h, at most 24h.
	TTL Duration `json:"ttl,omitempty"`
}

// BootstrapToken is a one-time registration token, shown only in the answer that creates it.
type BootstrapToken struct {
	Cluster   string    `json:"cluster"`
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// RegisterRequest exchanges a bootstrap token for the cluster's agent credential.
type RegisterRequest struct {
	Token             string `json:"token"`
	AgentVersion      string `json:"agentVersion,omitempty"`
	KubernetesVersion string `json:"kubernetesVersion,omitempty"`
}

// RegisterResponse carries the agent credential; it is shown only once and stored hashed.
type RegisterResponse struct {
	Cluster    string `json:"cluster"`
	Credential string `json:"credential"`
}

// LeaseRequest takes or renews the caller's cluster lease for Holder, a name unique to one agent
// process (for example the pod name plus a random suffix).
type LeaseRequest struct {
	Holder string `json:"holder"`
}

// Lease is the cluster's lease as granted. Epoch grows whenever another holder takes it; the agent
// sends it with every status post. RenewAfter says when to renew.
type Lease struct {
	Cluster    string    `json:"cluster"`
	Holder     string    `json:"holder"`
	Epoch      int64     `json:"epoch"`
	ExpiresAt  time.Time `json:"expiresAt"`
	RenewAfter Duration  `json:"renewAfter"`
}

// AssignmentOptions are what an agent needs besides the bundle to apply a service, taken from the
// release when it is assigned.
type AssignmentOptions struct {
	Namespace string `json:"namespace,omitempty"`
	Prune     bool   `json:"prune,omitempty"`
	SelfHeal  bool   `json:"selfHeal,omitempty"`
}

// Assignment is what one service should run on the caller's cluster.
type Assignment struct {
	Service string             `json:"service"`
	Release string             `json:"release"`
	Bundle  string             `json:"bundle"`
	Options *AssignmentOptions `json:"options,omitempty"`
}

// DesiredState is a cluster's whole desired state and its digest; the agent long-polls for a
// different digest.
type DesiredState struct {
	Cluster     string       `json:"cluster"`
	Digest      string       `json:"digest"`
	Assignments []Assignment `json:"assignments"`
}

// AssignRequest sets which release Service runs on each of Clusters; an empty Release removes the
// service from them.
type AssignRequest struct {
	Service  string   `json:"service"`
	Release  string   `json:"release,omitempty"`
	Clusters []string `json:"clusters"`
}

// ClusterDigest is a cluster's desired-state digest after a change.
type ClusterDigest struct {
	Cluster string `json:"cluster"`
	Digest  string `json:"digest"`
}

// AssignResponse lists the clusters whose desired state changed.
type AssignResponse struct {
	Changed []ClusterDigest `json:"changed"`
}

// BundleUploaded answers a bundle upload.
type BundleUploaded struct {
	Digest  string `json:"digest"`
	Size    int    `json:"size"`
	Created bool   `json:"created"`
}

// ObjectReport is the state of one applied object.
type ObjectReport struct {
	Group     string `json:"group,omitempty"`
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	Health    string `json:"health"`
	Drifted   bool   `json:"drifted,omitempty"`
	Message   string `json:"message,omitempty"`
}

// AgentError is an error the agent met, naming the object when there is one
// ("apps/Deployment/web/api").
type AgentError struct {
	Object  string `json:"object,omitempty"`
	Message string `json:"message"`
}

// ServiceReport is the state of one service on the cluster.
type ServiceReport struct {
	Service string         `json:"service"`
	Release string         `json:"release,omitempty"`
	Bundle  string         `json:"bundle,omitempty"`
	Health  string         `json:"health"`
	Objects []ObjectReport `json:"objects,omitempty"`
	Errors  []AgentError   `json:"errors,omitempty"`
}

// AgentStatusReport is one batched status post. Seq grows by one per new report; a retry resends
// the same Seq and is answered as a duplicate without being stored twice. A report also serves as
// the agent's heartbeat.
type AgentStatusReport struct {
	Seq               int64           `json:"seq"`
	AgentVersion      string          `json:"agentVersion,omitempty"`
	KubernetesVersion string          `json:"kubernetesVersion,omitempty"`
	Health            string          `json:"health"`
	DesiredDigest     string          `json:"desiredDigest,omitempty"`
	AppliedDigest     string          `json:"appliedDigest,omitempty"`
	Services          []ServiceReport `json:"services,omitempty"`
	Errors            []AgentError    `json:"errors,omitempty"`
	// Offline is the agent's latest period without the server: what it enforced from its saved
	// desired state meanwhile. The first report the server acknowledges after the period ends it;
	// later reports carry it unchanged until a newer period replaces it.
	Offline *OfflinePeriod `json:"offline,omitempty"`
}

// OfflinePeriod is what an agent did while it could not reach the server, from its first failed
// call (Since) to the first status report acknowledged after it (Until; zero while it lasts).
type OfflinePeriod struct {
	Since time.Time `json:"since"`
	Until time.Time `json:"until,omitzero"`
	// Corrections counts drifted objects put back, Applies services applied from the saved desired
	// state, Errors failed applies, reads and corrections, Restarts agent starts during the period.
	Corrections int `json:"corrections"`
	Applies     int `json:"applies,omitempty"`
	Errors      int `json:"errors,omitempty"`
	Restarts    int `json:"restarts,omitempty"`
	// Events are the latest things the agent did (at most 100, oldest first); Dropped counts the
	// older ones left out.
	Events  []AgentEvent `json:"events,omitempty"`
	Dropped int          `json:"dropped,omitempty"`
}

// Reasons of agent events.
const (
	EventDriftCorrected = "DriftCorrected"
	EventApplied        = "Applied"
	EventFailed         = "Failed"
	EventRestarted      = "Restarted"
)

// AgentEvent is one thing an agent did or met, naming the service and object when there are some.
type AgentEvent struct {
	Time    time.Time `json:"time"`
	Reason  string    `json:"reason"`
	Service string    `json:"service,omitempty"`
	Object  string    `json:"object,omitempty"`
	Message string    `json:"message,omitempty"`
}

// StatusAck answers a status post: Duplicate is true when Seq was already recorded.
type StatusAck struct {
	Seq       int64 `json:"seq"`
	Duplicate bool  `json:"duplicate,omitempty"`
}

// AgentReport is the latest report of a cluster's agent, as people read it.
type AgentReport struct {
	Cluster       string            `json:"cluster"`
	Epoch         int64             `json:"epoch"`
	LastHeartbeat time.Time         `json:"lastHeartbeat"`
	Report        AgentStatusReport `json:"report"`
}
