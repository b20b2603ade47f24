// Package bundle holds the canonical form of a rendered manifest set: the
// unit that Flotilla stores once, addresses by digest and hands to agents.
//
// A Bundle is built from decoded Kubernetes objects by New, which
//
//   - normalises every object: the status stanza and server-populated
//     metadata (uid, resourceVersion, generation, creationTimestamp,
//     deletion fields, managedFields, selfLink and the kubectl
//     last-applied annotation) are dropped, empty label and annotation maps
//     are removed;
//   - rejects objects without apiVersion, kind or metadata.name, and two
//     objects with the same identity (group, kind, namespace, name; the
//     version is not part of the identity because the API server stores one
//     object whatever version it is written in);
//   - sorts them stably: CustomResourceDefinitions first, then Namespaces,
//     then everything else by group, kind, namespace and name, so that an
//     agent can apply the bundle in order;
//   - encodes them as JSON lines and addresses the result by
//     "sha256:<hex>" of exactly those bytes.
//
// # Why JSON lines
//
// The encoding is one object per line, each line the encoding/json form of
// the object (map keys sorted, no HTML escaping, no insignificant space),
// each line ended by '\n'. JSON was chosen over canonical YAML because the
// standard library already produces one deterministic byte form for a value
// (sorted keys, shortest float form), JSON has no implicit typing, anchors,
// tags or multi-line styles that make two texts of one value differ, and a
// line per object lets readers stream a large bundle and tools such as jq
// read it directly. Numbers are kept exact: integers stay integers and
// Decode reads numbers as json.Number, so Decode followed by Encode gives
// the same bytes.
//
// # Invariants
//
// A Bundle is immutable: the bytes, the digest and the objects never change
// after New or Decode, and callers must not modify the maps returned by
// Objects. Decode accepts only bytes that are already canonical (the digest
// matches, every line re-encodes to itself, order and uniqueness hold), so a
// bundle that was tampered with or produced by another encoder is refused
// rather than silently re-addressed.
package bundle
