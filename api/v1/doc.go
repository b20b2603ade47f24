// Package v1 holds Flotilla's declarative API objects (apiVersion
// flotilla.dev/v1alpha1): their wire types, defaulting, validation and
// decoding from JSON and YAML.
//
// Model: every object is {apiVersion, kind, metadata, spec, status} in the
// Kubernetes style and implements [Object]. Users write the spec; the system
// writes the status. Default fills omitted fields in place and is idempotent;
// Validate reports every problem at once as a *[ValidationError] whose field
// paths look like "spec.waves[2].maxParallel".
//
// Invariants:
//   - Names are DNS labels (RFC 1123, at most 63 characters); label keys and
//     values follow Kubernetes' rules.
//   - Durations are strings in Go's time.ParseDuration syntax ("90s", "2m").
//   - Decoding is strict: unknown fields, duplicate keys, a wrong apiVersion or
//     an unknown kind are errors that say where they are. Decoding does not
//     default or validate; [LoadYAML] does all three.
//
// The package depends only on the standard library, sigs.k8s.io/yaml and
// k8s.io/apimachinery's label and validation helpers, so clients and agents
// can import it cheaply.
package v1
