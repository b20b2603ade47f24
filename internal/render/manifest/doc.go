// Package manifest decodes files of Kubernetes manifests (YAML, possibly
// multi-document, or JSON) into plain Go values, refusing hostile input.
//
// Parse splits a file into Sources (parsed YAML trees with their file and
// line) without converting them; Source.Object converts one, optionally
// rewriting string scalars through a Substituter, which is how package
// render applies per-cluster substitution to a file parsed once. Decode
// does both and returns one Document per non-empty YAML document, each a
// map[string]any whose leaves are string, bool, nil, int64, uint64 or
// float64, with the line where the document starts. YAML timestamps and
// binary scalars stay strings, as the Kubernetes YAML-to-JSON conversion
// keeps them. Mapping keys must be scalars and unique.
//
// Invariants that hold for any input, enforced while decoding rather than
// afterwards so that hostile input costs little:
//
//   - nesting deeper than Limits.MaxDepth is refused;
//   - alias expansion is budgeted: the decoded value of a file may hold at
//     most Limits.MaxNodes nodes, so a "billion laughs" document fails after
//     a bounded amount of work instead of exhausting memory;
//   - every error is an *Error carrying the file and the line.
package manifest
