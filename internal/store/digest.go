package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
)

// Digest returns the SHA-256 (hex) of the canonical JSON form of an object's
// labels, annotations and spec: keys sorted, no insignificant whitespace,
// numbers as written, nil and empty maps alike. Two objects with equal
// digests have equal user-visible content; status is not part of it.
func Digest(o *Object) (string, error) {
	spec, err := Canonical(o.Spec)
	if err != nil {
		return "", fmt.Errorf("digest %s %s: spec: %w", o.Kind, o.Name, err)
	}
	doc := struct {
		Annotations map[string]string `json:"annotations,omitempty"`
		Labels      map[string]string `json:"labels,omitempty"`
		Spec        json.RawMessage   `json:"spec"`
	}{o.Annotations, o.Labels, spec}
	data, err := json.Marshal(doc)
	if err != nil {
		return "", fmt.Errorf("digest %s %s: %w", o.Kind, o.Name, err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]), nil
}

// Canonical rewrites a JSON document with sorted keys and no insignificant
// whitespace, keeping numbers exactly as written. Empty input becomes
// "null".
func Canonical(raw json.RawMessage) (json.RawMessage, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return json.RawMessage("null"), nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("not JSON: %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("not JSON: data after the value")
	}
	out, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return out, nil
}
