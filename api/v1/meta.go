package v1

import (
	"encoding/json"
	"time"
)

// Group is the API group of every Flotilla object.
const Group = "flotilla.dev"

// Version is the API version of the objects in this package.
const Version = "v1alpha1"

// APIVersion is the apiVersion field every object in this package carries.
const APIVersion = Group + "/" + Version

// TypeMeta says which kind of object a document holds; it is inlined at the
// top of every object.
type TypeMeta struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
}

// ObjectMeta is the metadata every object carries. Users set Name, Labels and
// Annotations; the store sets the rest.
type ObjectMeta struct {
	Name        string            `json:"name"`
	UID         string            `json:"uid,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	// ResourceVersion is the decimal form of the store's int64 version; an
	// update must carry the version it read.
	ResourceVersion string `json:"resourceVersion,omitempty"`
	// Generation grows by one whenever spec, labels or annotations change.
	Generation        int64      `json:"generation,omitempty"`
	CreationTimestamp *time.Time `json:"creationTimestamp,omitempty"`
	UpdateTimestamp   *time.Time `json:"updateTimestamp,omitempty"`
}

// Object is implemented (with pointer receivers) by every kind in this
// package, so that the server, store adapters and CLI can handle objects
// without knowing their kind.
type Object interface {
	// GetTypeMeta returns the object's apiVersion and kind for reading or
	// setting.
	GetTypeMeta() *TypeMeta
	// GetMetadata returns the object's metadata for reading or setting.
	GetMetadata() *ObjectMeta
	// Default fills omitted fields with their defaults, in place; calling it
	// twice changes nothing the second time.
	Default()
	// Validate returns nil or a *ValidationError listing every problem.
	Validate() error
}

// List is the wire form of a list response; Items holds the objects' JSON.
type List struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"` // e.g. "ServiceList"
	Metadata   ListMeta          `json:"metadata"`
	Items      []json.RawMessage `json:"items"`
}

// ListMeta carries the store version a list was read at and the token for the
// next page.
type ListMeta struct {
	ResourceVersion string `json:"resourceVersion,omitempty"`
	Continue        string `json:"continue,omitempty"`
}

// Reasons used in [Status].
const (
	ReasonInvalid       = "Invalid"
	ReasonNotFound      = "NotFound"
	ReasonConflict      = "Conflict"
	ReasonUnauthorized  = "Unauthorized"
	ReasonForbidden     = "Forbidden"
	ReasonAlreadyExists = "AlreadyExists"
	ReasonTooLarge      = "TooLarge"
	ReasonBadRequest    = "BadRequest"
	ReasonInternal      = "InternalError"
)

// Status is the body of every non-2xx API answer: an HTTP code, a short
// machine-readable reason, a message for people and, for validation failures,
// the field paths.
type Status struct {
	Code    int          `json:"code"`
	Reason  string       `json:"reason"`
	Message string       `json:"message"`
	Fields  []FieldError `json:"fields,omitempty"`
}

// Condition is one observation about an object, in the Kubernetes shape.
type Condition struct {
	Type               string     `json:"type"`
	Status             string     `json:"status"` // True | False | Unknown
	Reason             string     `json:"reason,omitempty"`
	Message            string     `json:"message,omitempty"`
	LastTransitionTime *time.Time `json:"lastTransitionTime,omitempty"`
}

func (m *ObjectMeta) validate(v *validator) {
	v.dnsLabel("metadata.name", m.Name)
	v.labels("metadata.labels", m.Labels)
	v.annotations("metadata.annotations", m.Annotations)
}

func (t *TypeMeta) validate(v *validator, kind string) {
	if t.APIVersion != APIVersion {
		v.add("apiVersion", "must be %q, got %q", APIVersion, t.APIVersion)
	}
	if t.Kind != kind {
		v.add("kind", "must be %q, got %q", kind, t.Kind)
	}
}

func (t *TypeMeta) setDefaults(kind string) {
	if t.APIVersion == "" {
		t.APIVersion = APIVersion
	}
	if t.Kind == "" {
		t.Kind = kind
	}
}
