package apply

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// inventoryKey is the ConfigMap key holding the gzip-compressed JSON inventory.
const inventoryKey = "inventory.json.gz"

var (
	configMaps = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	namespaces = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
	crds       = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
)

// Entry is one object in an inventory.
type Entry struct {
	ObjectRef
	// Hash is the hash of the desired object at its last successful apply;
	// empty means the object must be applied again.
	Hash string `json:"hash,omitempty"`
	// Live is the hash of the applied fields as the API server returned them.
	Live string `json:"live,omitempty"`
	// UID and ResourceVersion are the object's at its last apply.
	UID             string `json:"uid,omitempty"`
	ResourceVersion string `json:"resourceVersion,omitempty"`
}

// Inventory is what Flotilla applied for one service in one cluster, in
// apply order. It is stored in the cluster itself.
type Inventory struct {
	Service string  `json:"service"`
	Release string  `json:"release,omitempty"`
	Entries []Entry `json:"entries"`
}

func (inv *Inventory) index() map[string]int {
	m := make(map[string]int, len(inv.Entries))
	for i, e := range inv.Entries {
		m[e.Key()] = i
	}
	return m
}

func inventoryName(service string) string { return "inventory-" + service }

// Inventory returns the stored inventory of a service; an empty one when the
// service has none.
func (e *Engine) Inventory(ctx context.Context, service string) (*Inventory, error) {
	if err := validService(service); err != nil {
		return nil, err
	}
	return e.readInventory(ctx, service)
}

func (e *Engine) readInventory(ctx context.Context, service string) (*Inventory, error) {
	cm, err := e.dyn.Resource(configMaps).Namespace(e.opts.InventoryNamespace).Get(ctx, inventoryName(service), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return &Inventory{Service: service}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("service %s: read inventory: %w: %w", service, ErrInventory, err)
	}
	raw, found, err := unstructured.NestedString(cm.Object, "binaryData", inventoryKey)
	if err != nil || !found {
		return nil, fmt.Errorf("service %s: inventory %s/%s has no %s: %w", service, e.opts.InventoryNamespace, cm.GetName(), inventoryKey, ErrInventory)
	}
	inv, err := decodeInventory(raw)
	if err != nil {
		return nil, fmt.Errorf("service %s: inventory %s/%s: %w: %w", service, e.opts.InventoryNamespace, cm.GetName(), ErrInventory, err)
	}
	if inv.Service != service {
		return nil, fmt.Errorf("service %s: inventory %s/%s belongs to service %q: %w", service, e.opts.InventoryNamespace, cm.GetName(), inv.Service, ErrInventory)
	}
	return inv, nil
}

func decodeInventory(b64 string) (*Inventory, error) {
	gz, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("decode base64: %w", err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return nil, fmt.Errorf("gunzip: %w", err)
	}
	data, err := io.ReadAll(io.LimitReader(zr, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("gunzip: %w", err)
	}
	var inv Inventory
	if err := json.Unmarshal(data, &inv); err != nil {
		return nil, fmt.Errorf("decode json: %w", err)
	}
	return &inv, nil
}

func encodeInventory(inv *Inventory) ([]byte, error) {
	data, err := json.Marshal(inv)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if _, err := zw.Write(data); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// writeInventory stores inv, creating the inventory namespace when missing.
// An inventory with no entries is deleted.
func (e *Engine) writeInventory(ctx context.Context, inv *Inventory) error {
	ns := e.opts.InventoryNamespace
	name := inventoryName(inv.Service)
	if len(inv.Entries) == 0 {
		err := e.dyn.Resource(configMaps).Namespace(ns).Delete(ctx, name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("service %s: delete inventory: %w: %w", inv.Service, ErrInventory, err)
		}
		return nil
	}
	gz, err := encodeInventory(inv)
	if err != nil {
		return fmt.Errorf("service %s: encode inventory: %w", inv.Service, err)
	}
	cm := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1",
		"kind":       "ConfigMap",
		"metadata": map[string]any{
			"name":        name,
			"namespace":   ns,
			"labels":      map[string]any{LabelManagedBy: ManagedByValue, "flotilla.dev/inventory": "true"},
			"annotations": map[string]any{AnnotationService: inv.Service, "flotilla.dev/release": inv.Release},
		},
		"binaryData": map[string]any{inventoryKey: base64.StdEncoding.EncodeToString(gz)},
	}}
	opts := metav1.ApplyOptions{FieldManager: e.opts.FieldManager, Force: true}
	_, err = e.dyn.Resource(configMaps).Namespace(ns).Apply(ctx, name, cm, opts)
	if apierrors.IsNotFound(err) {
		nsObj := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "v1", "kind": "Namespace",
			"metadata": map[string]any{"name": ns, "labels": map[string]any{LabelManagedBy: ManagedByValue}},
		}}
		if _, err = e.dyn.Resource(namespaces).Apply(ctx, ns, nsObj, opts); err == nil {
			_, err = e.dyn.Resource(configMaps).Namespace(ns).Apply(ctx, name, cm, opts)
		}
	}
	if err != nil {
		return fmt.Errorf("service %s: write inventory: %w: %w", inv.Service, ErrInventory, err)
	}
	return nil
}

// Services returns the services that have an inventory in the cluster, sorted: what Flotilla
// applied there, whatever the agent's desired state says now.
func (e *Engine) Services(ctx context.Context) ([]string, error) {
	list, err := e.dyn.Resource(configMaps).Namespace(e.opts.InventoryNamespace).List(ctx,
		metav1.ListOptions{LabelSelector: "flotilla.dev/inventory=true"})
	if err != nil {
		return nil, fmt.Errorf("list inventories: %w: %w", ErrInventory, err)
	}
	var out []string
	for _, cm := range list.Items {
		if s, ok := strings.CutPrefix(cm.GetName(), "inventory-"); ok && cm.GetAnnotations()[AnnotationService] == s {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out, nil
}
