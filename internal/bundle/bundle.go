package bundle

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// DigestPrefix starts every bundle digest; the rest is the lowercase hex
// SHA-256 of the encoded bundle.
const DigestPrefix = "sha256:"

// Errors returned by New and Decode; callers branch on them with errors.Is.
var (
	// ErrInvalidObject means an object lacks apiVersion, kind or metadata.name,
	// or has a field of the wrong type.
	ErrInvalidObject = errors.New("invalid object")
	// ErrDuplicate means two objects share one identity.
	ErrDuplicate = errors.New("duplicate object")
	// ErrDigestMismatch means the bytes do not hash to the expected digest.
	ErrDigestMismatch = errors.New("digest mismatch")
	// ErrNotCanonical means the bytes are not the canonical encoding of their
	// objects (wrong order, spacing, key order or normalisation).
	ErrNotCanonical = errors.New("bundle not canonical")
	// ErrBadDigest means a digest string is not "sha256:" and 64 hex digits.
	ErrBadDigest = errors.New("malformed digest")
)

// ID is the identity of an object within a bundle and a cluster. The API
// version is deliberately absent: one object may be written in any served
// version.
type ID struct {
	Group     string `json:"group,omitempty"`
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
}

// String returns the identity in the form group/kind/namespace/name, with
// empty parts kept so the form is unambiguous.
func (id ID) String() string {
	g := id.Group
	if g == "" {
		g = "core"
	}
	if id.Namespace == "" {
		return g + "/" + id.Kind + "/" + id.Name
	}
	return g + "/" + id.Kind + "/" + id.Namespace + "/" + id.Name
}

// Bundle is an immutable, canonical, content-addressed set of Kubernetes
// objects. The zero value is not usable; build one with New or Decode.
type Bundle struct {
	objects []map[string]any
	ids     []ID
	data    []byte
	digest  string
}

// New normalises, validates and sorts objects and returns their bundle. The
// maps passed in are copied as they are normalised, so the caller may reuse
// them. An error names the offending object by its position and identity.
func New(objects []map[string]any) (*Bundle, error) {
	type entry struct {
		id  ID
		obj map[string]any
	}
	entries := make([]entry, 0, len(objects))
	for i, o := range objects {
		n, ok := normaliseValue(o).(map[string]any)
		if !ok || n == nil {
			return nil, fmt.Errorf("bundle: object %d: %w: not a mapping", i, ErrInvalidObject)
		}
		normaliseObject(n)
		id, err := IDOf(n)
		if err != nil {
			return nil, fmt.Errorf("bundle: object %d: %w", i, err)
		}
		entries = append(entries, entry{id: id, obj: n})
	}
	slices.SortStableFunc(entries, func(a, b entry) int { return compareIDs(a.id, b.id) })
	b := &Bundle{
		objects: make([]map[string]any, len(entries)),
		ids:     make([]ID, len(entries)),
	}
	var buf bytes.Buffer
	for i, e := range entries {
		if i > 0 && compareIDs(entries[i-1].id, e.id) == 0 {
			return nil, fmt.Errorf("bundle: %s: %w", e.id, ErrDuplicate)
		}
		b.objects[i] = e.obj
		b.ids[i] = e.id
		if err := encodeLine(&buf, e.obj); err != nil {
			return nil, fmt.Errorf("bundle: %s: %w", e.id, err)
		}
	}
	b.data = buf.Bytes()
	b.digest = Digest(b.data)
	return b, nil
}

// Decode parses the canonical encoding of a bundle and checks that it hashes
// to digest before anything else is read. It refuses bytes that are not in
// canonical form, so Decode(b.Bytes(), b.Digest()) is the only way to get a
// bundle back and always reproduces it exactly.
func Decode(data []byte, digest string) (*Bundle, error) {
	if err := ValidDigest(digest); err != nil {
		return nil, err
	}
	if got := Digest(data); got != digest {
		return nil, fmt.Errorf("bundle: got %s, want %s: %w", got, digest, ErrDigestMismatch)
	}
	b := &Bundle{data: slices.Clone(data), digest: digest}
	rest := b.data
	var buf bytes.Buffer
	for line := 1; len(rest) > 0; line++ {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			return nil, fmt.Errorf("bundle: line %d: missing final newline: %w", line, ErrNotCanonical)
		}
		text := rest[:i]
		rest = rest[i+1:]
		dec := json.NewDecoder(bytes.NewReader(text))
		dec.UseNumber()
		var obj map[string]any
		if err := dec.Decode(&obj); err != nil {
			return nil, fmt.Errorf("bundle: line %d: %w: %w", line, ErrNotCanonical, err)
		}
		id, err := IDOf(obj)
		if err != nil {
			return nil, fmt.Errorf("bundle: line %d: %w", line, err)
		}
		buf.Reset()
		if err := encodeLine(&buf, obj); err != nil {
			return nil, fmt.Errorf("bundle: line %d: %w", line, err)
		}
		if !bytes.Equal(buf.Bytes()[:buf.Len()-1], text) {
			return nil, fmt.Errorf("bundle: line %d (%s): %w", line, id, ErrNotCanonical)
		}
		if n := len(b.ids); n > 0 {
			switch c := compareIDs(b.ids[n-1], id); {
			case c == 0:
				return nil, fmt.Errorf("bundle: line %d: %s: %w", line, id, ErrDuplicate)
			case c > 0:
				return nil, fmt.Errorf("bundle: line %d: %s out of order: %w", line, id, ErrNotCanonical)
			}
		}
		n := normaliseValue(obj).(map[string]any)
		normaliseObject(n)
		if !equalJSON(n, obj) {
			return nil, fmt.Errorf("bundle: line %d (%s): not normalised: %w", line, id, ErrNotCanonical)
		}
		b.objects = append(b.objects, obj)
		b.ids = append(b.ids, id)
	}
	return b, nil
}

// Digest returns "sha256:<hex>" of data.
func Digest(data []byte) string {
	sum := sha256.Sum256(data)
	return DigestPrefix + hex.EncodeToString(sum[:])
}

// ValidDigest reports whether d has the form "sha256:" followed by 64
// lowercase hex digits.
func ValidDigest(d string) error {
	h, ok := strings.CutPrefix(d, DigestPrefix)
	if !ok || len(h) != 64 || strings.ToLower(h) != h {
		return fmt.Errorf("bundle: %q: %w", d, ErrBadDigest)
	}
	if _, err := hex.DecodeString(h); err != nil {
		return fmt.Errorf("bundle: %q: %w", d, ErrBadDigest)
	}
	return nil
}

// Digest returns the bundle's address, "sha256:<hex>".
func (b *Bundle) Digest() string { return b.digest }

// Bytes returns the canonical encoding. The slice must not be modified.
func (b *Bundle) Bytes() []byte { return b.data }

// Encode writes the canonical encoding to w.
func (b *Bundle) Encode(w io.Writer) error {
	_, err := w.Write(b.data)
	return err
}

// Len returns the number of objects.
func (b *Bundle) Len() int { return len(b.objects) }

// Objects returns the objects in bundle order. The maps are shared with the
// bundle and must not be modified.
func (b *Bundle) Objects() []map[string]any { return b.objects }

// IDs returns the identities of the objects, in bundle order.
func (b *Bundle) IDs() []ID { return slices.Clone(b.ids) }

// IDOf returns the identity of a Kubernetes object given as a decoded map.
func IDOf(obj map[string]any) (ID, error) {
	apiVersion, _ := obj["apiVersion"].(string)
	kind, _ := obj["kind"].(string)
	if apiVersion == "" || kind == "" {
		return ID{}, fmt.Errorf("%w: apiVersion and kind are required", ErrInvalidObject)
	}
	meta, ok := obj["metadata"].(map[string]any)
	if !ok {
		return ID{}, fmt.Errorf("%w: %s %s: metadata is required", ErrInvalidObject, apiVersion, kind)
	}
	name, _ := meta["name"].(string)
	if name == "" {
		return ID{}, fmt.Errorf("%w: %s %s: metadata.name is required", ErrInvalidObject, apiVersion, kind)
	}
	ns, isString := meta["namespace"].(string)
	if meta["namespace"] != nil && !isString {
		return ID{}, fmt.Errorf("%w: %s %s %s: metadata.namespace must be a string", ErrInvalidObject, apiVersion, kind, name)
	}
	group := ""
	if g, _, ok := strings.Cut(apiVersion, "/"); ok {
		group = g
	}
	return ID{Group: group, Kind: kind, Namespace: ns, Name: name}, nil
}

// rank orders kinds that must exist before others can be applied.
func rank(id ID) int {
	switch {
	case id.Group == "apiextensions.k8s.io" && id.Kind == "CustomResourceDefinition":
		return 0
	case id.Group == "" && id.Kind == "Namespace":
		return 1
	default:
		return 2
	}
}

func compareIDs(a, b ID) int {
	return cmp.Or(
		cmp.Compare(rank(a), rank(b)),
		cmp.Compare(a.Group, b.Group),
		cmp.Compare(a.Kind, b.Kind),
		cmp.Compare(a.Namespace, b.Namespace),
		cmp.Compare(a.Name, b.Name),
	)
}

func encodeLine(buf *bytes.Buffer, obj map[string]any) error {
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(obj); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidObject, err)
	}
	return nil
}

func equalJSON(a, b map[string]any) bool {
	var x, y bytes.Buffer
	if encodeLine(&x, a) != nil || encodeLine(&y, b) != nil {
		return false
	}
	return bytes.Equal(x.Bytes(), y.Bytes())
}
