package v1

import (
	"net"
	"net/url"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
)

// TrafficRouter is a place where users' requests are split across clusters:
// an HAProxy backend, a Gateway API HTTPRoute in an edge cluster, or a
// webhook in front of some other load balancer. Each Cluster names its
// backend in a router in spec.traffic; rollouts set the backends' weights.
type TrafficRouter struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta          `json:"metadata"`
	Spec     TrafficRouterSpec   `json:"spec"`
	Status   TrafficRouterStatus `json:"status,omitempty"`
}

// TrafficRouterSpec sets exactly one of HAProxy, GatewayAPI and Webhook.
type TrafficRouterSpec struct {
	HAProxy    *HAProxyRouter    `json:"haproxy,omitempty"`
	GatewayAPI *GatewayAPIRouter `json:"gatewayAPI,omitempty"`
	Webhook    *WebhookRouter    `json:"webhook,omitempty"`
	// Timeout bounds one change (set and read back); 10s when omitted.
	Timeout Duration `json:"timeout,omitempty"`
}

// HAProxyRouter is one HAProxy backend driven through the runtime API; each
// cluster's backend is the name of a server in it.
type HAProxyRouter struct {
	// RuntimeAPI is the stats socket: unix:///path or tcp://host:port. It
	// must be bound with "level admin" to accept weight changes.
	RuntimeAPI string `json:"runtimeAPI"`
	Backend    string `json:"backend"`
}

// GatewayAPIRouter is an HTTPRoute in an edge cluster; each cluster's
// backend is the name of a backendRef of the route's rule.
type GatewayAPIRouter struct {
	// Cluster is the Flotilla cluster that holds the HTTPRoute.
	Cluster   string         `json:"cluster"`
	HTTPRoute NamespacedName `json:"httpRoute"`
	// Rule is the index of the route's rule whose backendRefs carry the
	// weights; 0 when omitted.
	Rule int `json:"rule,omitempty"`
}

// NamespacedName names a namespaced Kubernetes object.
type NamespacedName struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
}

// WebhookRouter receives the desired weights as a signed JSON POST and
// answers 2xx once they are in force.
type WebhookRouter struct {
	URL string `json:"url"`
	// SecretRef names the HMAC-SHA256 key, resolved by the server.
	SecretRef string `json:"secretRef"`
}

// Router types, as TrafficRouterSpec.Type reports them.
const (
	RouterHAProxy    = "haproxy"
	RouterGatewayAPI = "gatewayAPI"
	RouterWebhook    = "webhook"
)

// DefaultRouterTimeout bounds one change of a router's weights.
const DefaultRouterTimeout Duration = "10s"

// Type names the kind of router the spec sets, "" when none or several.
func (s TrafficRouterSpec) Type() string {
	var t []string
	if s.HAProxy != nil {
		t = append(t, RouterHAProxy)
	}
	if s.GatewayAPI != nil {
		t = append(t, RouterGatewayAPI)
	}
	if s.Webhook != nil {
		t = append(t, RouterWebhook)
	}
	if len(t) != 1 {
		return ""
	}
	return t[0]
}

// TrafficRouterStatus is written by the server each time it sets weights.
type TrafficRouterStatus struct {
	// Weights are the weights read back after the last change, in percent.
	Weights   []TrafficWeight `json:"weights,omitempty"`
	UpdatedAt *time.Time      `json:"updatedAt,omitempty"`
	// Message says why the last change failed; empty after a success.
	Message string `json:"message,omitempty"`
}

// GetTypeMeta implements Object.
func (r *TrafficRouter) GetTypeMeta() *TypeMeta { return &r.TypeMeta }

// GetMetadata implements Object.
func (r *TrafficRouter) GetMetadata() *ObjectMeta { return &r.Metadata }

// Default implements Object.
func (r *TrafficRouter) Default() {
	r.TypeMeta.setDefaults(KindTrafficRouter)
	if r.Spec.Timeout == "" {
		r.Spec.Timeout = DefaultRouterTimeout
	}
}

// Validate implements Object.
func (r *TrafficRouter) Validate() error {
	v := newValidator(KindTrafficRouter, &r.Metadata)
	r.TypeMeta.validate(v, KindTrafficRouter)
	r.Metadata.validate(v)
	s := r.Spec
	set := 0
	if h := s.HAProxy; h != nil {
		set++
		runtimeAPI(v, "spec.haproxy.runtimeAPI", h.RuntimeAPI)
		haproxyName(v, "spec.haproxy.backend", h.Backend)
	}
	if g := s.GatewayAPI; g != nil {
		set++
		v.dnsLabel("spec.gatewayAPI.cluster", g.Cluster)
		v.dnsLabel("spec.gatewayAPI.httpRoute.namespace", g.HTTPRoute.Namespace)
		if g.HTTPRoute.Name == "" {
			v.add("spec.gatewayAPI.httpRoute.name", "required")
		} else {
			for _, msg := range validation.IsDNS1123Subdomain(g.HTTPRoute.Name) {
				v.add("spec.gatewayAPI.httpRoute.name", "%q is not a DNS subdomain: %s", g.HTTPRoute.Name, msg)
			}
		}
		v.nonNegative("spec.gatewayAPI.rule", g.Rule)
	}
	if w := s.Webhook; w != nil {
		set++
		httpURL(v, "spec.webhook.url", w.URL)
		v.dnsLabel("spec.webhook.secretRef", w.SecretRef)
	}
	if set != 1 {
		v.add("spec", "must set exactly one of haproxy, gatewayAPI or webhook, has %d", set)
	}
	v.duration("spec.timeout", s.Timeout, false)
	for i, w := range r.Status.Weights {
		if w.Weight < 0 || w.Weight > 100 {
			v.add(index("status.weights", i)+".weight", "must be from 0 to 100, got %d", w.Weight)
		}
	}
	return v.err()
}

// runtimeAPI requires unix:///absolute/path or tcp://host:port.
func runtimeAPI(v *validator, p, raw string) {
	if raw == "" {
		v.add(p, "required")
		return
	}
	u, err := url.Parse(raw)
	if err != nil {
		v.add(p, "%q is not unix:///path or tcp://host:port", raw)
		return
	}
	switch u.Scheme {
	case "unix":
		if u.Host != "" || !strings.HasPrefix(u.Path, "/") || u.Path == "/" {
			v.add(p, "%q: a unix socket needs an absolute path, as in unix:///run/haproxy/admin.sock", raw)
		}
	case "tcp":
		host, port, err := net.SplitHostPort(u.Host)
		if err != nil || host == "" || port == "" || (u.Path != "" && u.Path != "/") {
			v.add(p, "%q: a TCP address needs host:port and nothing else, as in tcp://127.0.0.1:9999", raw)
		}
	default:
		v.add(p, "%q: scheme must be unix or tcp", raw)
	}
}

// haproxyName requires a name HAProxy accepts for a proxy or server, which
// also keeps spaces and separators out of runtime API commands.
func haproxyName(v *validator, p, s string) {
	if s == "" {
		v.add(p, "required")
		return
	}
	if !IsHAProxyName(s) {
		v.add(p, "%q may hold only letters, digits, '-', '_', '.' and ':'", s)
	}
}

// IsHAProxyName reports whether s is a valid HAProxy proxy or server name.
func IsHAProxyName(s string) bool {
	if s == "" || len(s) > 255 {
		return false
	}
	for _, c := range s {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':'
		if !ok {
			return false
		}
	}
	return true
}
