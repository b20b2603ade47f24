package state

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"

	"flotilla.dev/flotilla/internal/bundle"
)

// Names of the Secrets the in-cluster store keeps.
const (
	SecretState      = "flotilla-agent-state"
	SecretCredential = "flotilla-agent-credential"
	// BundleSecretPrefix + the digest's hex names a bundle's Secret.
	BundleSecretPrefix = "flotilla-agent-bundle-"
	// LabelState marks the store's Secrets (value "state", "credential" or "bundle"). It is not
	// Flotilla's managed-by label, so the store's Secrets are never taken for applied objects.
	LabelState = "flotilla.dev/agent-state"

	keyState      = "state.json.gz"
	keyCredential = "credential"
	keyBundle     = "bundle.jsonl.gz"
	annDigest     = "flotilla.dev/digest"
	// maxSecretData keeps a Secret under the API server's limit of 1 MiB with room for metadata.
	maxSecretData = 1000 * 1024
)

// Secrets keeps the agent state in Secrets of one namespace of the managed cluster, so that an
// agent run as a Deployment keeps it across restarts and rescheduling without a volume.
type Secrets struct {
	namespace string
	secrets   typedcorev1.SecretInterface
}

var _ Store = (*Secrets)(nil)

// NewSecrets returns the store in namespace of the cluster cfg points at. The namespace must
// exist; the agent needs get, list, create, update and delete on Secrets there.
func NewSecrets(cfg *rest.Config, namespace string) (*Secrets, error) {
	c, err := typedcorev1.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("agent state: %w", err)
	}
	return &Secrets{namespace: namespace, secrets: c.Secrets(namespace)}, nil
}

func (s *Secrets) String() string { return "Secrets in namespace " + s.namespace }

// read returns the gunzipped value of key in Secret name; nil when the Secret does not exist.
func (s *Secrets) read(ctx context.Context, name, key string) ([]byte, error) {
	sec, err := s.secrets.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("agent state: read Secret %s/%s: %w", s.namespace, name, err)
	}
	raw, ok := sec.Data[key]
	if !ok {
		return nil, fmt.Errorf("agent state: Secret %s/%s has no key %s: %w", s.namespace, name, key, ErrCorrupt)
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("agent state: Secret %s/%s: %w: %w", s.namespace, name, ErrCorrupt, err)
	}
	data, err := io.ReadAll(io.LimitReader(zr, 256<<20))
	if err != nil {
		return nil, fmt.Errorf("agent state: Secret %s/%s: %w: %w", s.namespace, name, ErrCorrupt, err)
	}
	return data, nil
}

// write creates or replaces Secret name holding data gzipped under key.
func (s *Secrets) write(ctx context.Context, name, kind, key string, data []byte, ann map[string]string) error {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if _, err := zw.Write(data); err != nil {
		return fmt.Errorf("agent state: compress: %w", err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("agent state: compress: %w", err)
	}
	if buf.Len() > maxSecretData {
		return fmt.Errorf("agent state: Secret %s/%s would hold %d bytes compressed, more than %d: %w (keep the state in a directory with --state-dir)",
			s.namespace, name, buf.Len(), maxSecretData, ErrTooLarge)
	}
	want := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: s.namespace, Labels: map[string]string{LabelState: kind}, Annotations: ann},
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{key: buf.Bytes()},
	}
	for try := 0; ; try++ {
		cur, err := s.secrets.Get(ctx, name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			_, err = s.secrets.Create(ctx, want, metav1.CreateOptions{})
		case err == nil:
			want.ResourceVersion = cur.ResourceVersion
			_, err = s.secrets.Update(ctx, want, metav1.UpdateOptions{})
		}
		if (apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err)) && try < 3 {
			continue
		}
		if err != nil {
			return fmt.Errorf("agent state: write Secret %s/%s: %w", s.namespace, name, err)
		}
		return nil
	}
}

// Load implements Store.
func (s *Secrets) Load(ctx context.Context) (*Snapshot, error) {
	data, err := s.read(ctx, SecretState, keyState)
	if err != nil || data == nil {
		return nil, err
	}
	return Decode("Secret "+s.namespace+"/"+SecretState, data)
}

// Save implements Store.
func (s *Secrets) Save(ctx context.Context, snap *Snapshot) error {
	data, err := Encode(snap)
	if err != nil {
		return err
	}
	return s.write(ctx, SecretState, "state", keyState, data, nil)
}

func bundleSecret(digest string) string { return BundleSecretPrefix + hexOf(digest) }

// Bundle implements Store.
func (s *Secrets) Bundle(ctx context.Context, digest string) ([]byte, error) {
	if err := bundle.ValidDigest(digest); err != nil {
		return nil, err
	}
	name := bundleSecret(digest)
	data, err := s.read(ctx, name, keyBundle)
	if err != nil || data == nil {
		return nil, err
	}
	if err := checkBundle("Secret "+s.namespace+"/"+name, digest, data); err != nil {
		return nil, err
	}
	return data, nil
}

// PutBundle implements Store.
func (s *Secrets) PutBundle(ctx context.Context, digest string, data []byte) error {
	if err := checkBundle("bundle to store", digest, data); err != nil {
		return err
	}
	name := bundleSecret(digest)
	if _, err := s.secrets.Get(ctx, name, metav1.GetOptions{}); err == nil {
		return nil // content-addressed: already there
	}
	return s.write(ctx, name, "bundle", keyBundle, data, map[string]string{annDigest: digest})
}

// RetainBundles implements Store.
func (s *Secrets) RetainBundles(ctx context.Context, keep []string) error {
	want := map[string]bool{}
	for _, k := range keep {
		if bundle.ValidDigest(k) == nil {
			want[bundleSecret(k)] = true
		}
	}
	list, err := s.secrets.List(ctx, metav1.ListOptions{LabelSelector: LabelState + "=bundle"})
	if err != nil {
		return fmt.Errorf("agent state: list bundle Secrets in %s: %w", s.namespace, err)
	}
	var errs []error
	for _, sec := range list.Items {
		if want[sec.Name] {
			continue
		}
		if err := s.secrets.Delete(ctx, sec.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("agent state: remove old bundle Secrets: %w", err)
	}
	return nil
}

// Credential implements Store.
func (s *Secrets) Credential(ctx context.Context) (string, error) {
	data, err := s.read(ctx, SecretCredential, keyCredential)
	return string(bytes.TrimSpace(data)), err
}

// SaveCredential implements Store.
func (s *Secrets) SaveCredential(ctx context.Context, cred string) error {
	return s.write(ctx, SecretCredential, "credential", keyCredential, []byte(cred), nil)
}
