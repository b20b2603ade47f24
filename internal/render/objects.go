package render

import (
	"fmt"
	"strings"

	"flotilla.dev/flotilla/internal/bundle"
	"flotilla.dev/flotilla/internal/render/manifest"
)

// clusterScoped lists built-in kinds that have no namespace, by group and
// kind. Kinds not listed are taken as namespaced unless a
// CustomResourceDefinition in the same render declares them cluster-scoped.
var clusterScoped = map[string]bool{
	"/Namespace": true, "/Node": true, "/PersistentVolume": true, "/ComponentStatus": true,
	"rbac.authorization.k8s.io/ClusterRole": true, "rbac.authorization.k8s.io/ClusterRoleBinding": true,
	"apiextensions.k8s.io/CustomResourceDefinition":                 true,
	"apiregistration.k8s.io/APIService":                             true,
	"admissionregistration.k8s.io/ValidatingWebhookConfiguration":   true,
	"admissionregistration.k8s.io/MutatingWebhookConfiguration":     true,
	"admissionregistration.k8s.io/ValidatingAdmissionPolicy":        true,
	"admissionregistration.k8s.io/ValidatingAdmissionPolicyBinding": true,
	"admissionregistration.k8s.io/MutatingAdmissionPolicy":          true,
	"admissionregistration.k8s.io/MutatingAdmissionPolicyBinding":   true,
	"storage.k8s.io/StorageClass":                                   true, "storage.k8s.io/CSIDriver": true, "storage.k8s.io/CSINode": true,
	"storage.k8s.io/VolumeAttachment": true, "storage.k8s.io/VolumeAttributesClass": true,
	"scheduling.k8s.io/PriorityClass":                         true,
	"node.k8s.io/RuntimeClass":                                true,
	"networking.k8s.io/IngressClass":                          true,
	"networking.k8s.io/IPAddress":                             true,
	"networking.k8s.io/ServiceCIDR":                           true,
	"policy/PodSecurityPolicy":                                true,
	"certificates.k8s.io/CertificateSigningRequest":           true,
	"certificates.k8s.io/ClusterTrustBundle":                  true,
	"flowcontrol.apiserver.k8s.io/FlowSchema":                 true,
	"flowcontrol.apiserver.k8s.io/PriorityLevelConfiguration": true,
	"resource.k8s.io/DeviceClass":                             true,
	"gateway.networking.k8s.io/GatewayClass":                  true,
}

// convert turns parsed documents into objects for one cluster: ${cluster.*}
// substitution when sub is set, List kinds expanded, the default namespace
// set on namespaced objects without one, then the canonical bundle.
func convert(docs []*manifest.Source, lim Limits, sub manifest.Substituter, namespace string) (*bundle.Bundle, error) {
	budget := &manifest.Budget{}
	type located struct {
		obj  map[string]any
		file string
		line int
	}
	var objs []located
	for _, d := range docs {
		o, err := d.Object(lim.decode(), budget, sub)
		if err != nil {
			return nil, err
		}
		if items, ok := o["items"].([]any); ok && isList(o) {
			for i, it := range items {
				m, ok := it.(map[string]any)
				if !ok {
					return nil, fmt.Errorf("%s:%d: items[%d] is not an object", d.File, d.Line, i)
				}
				objs = append(objs, located{m, d.File, d.Line})
			}
			continue
		}
		objs = append(objs, located{o, d.File, d.Line})
	}
	if len(objs) == 0 {
		return nil, ErrEmpty
	}
	scoped := map[string]bool{}
	for _, o := range objs {
		if o.obj["kind"] == "CustomResourceDefinition" {
			spec, _ := o.obj["spec"].(map[string]any)
			names, _ := spec["names"].(map[string]any)
			if spec["scope"] == "Cluster" {
				g, _ := spec["group"].(string)
				k, _ := names["kind"].(string)
				scoped[g+"/"+k] = true
			}
		}
	}
	plain := make([]map[string]any, len(objs))
	for i, o := range objs {
		id, err := bundle.IDOf(o.obj)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", o.file, o.line, err)
		}
		key := id.Group + "/" + id.Kind
		if id.Namespace == "" && namespace != "" && !clusterScoped[key] && !scoped[key] {
			meta := o.obj["metadata"].(map[string]any)
			meta["namespace"] = namespace
		}
		plain[i] = o.obj
	}
	b, err := bundle.New(plain)
	if err != nil {
		return nil, fmt.Errorf("render: %w", err)
	}
	return b, nil
}

func isList(o map[string]any) bool {
	k, _ := o["kind"].(string)
	av, _ := o["apiVersion"].(string)
	return av == "v1" && strings.HasSuffix(k, "List")
}
