package v1

import (
	"strings"
	"testing"
)

func TestValidateTrafficRouter(t *testing.T) {
	gw := func(r *TrafficRouter) {
		r.Spec.HAProxy = nil
		r.Spec.GatewayAPI = &GatewayAPIRouter{Cluster: "edge-1", HTTPRoute: NamespacedName{Namespace: "web", Name: "web.route"}}
	}
	hook := func(r *TrafficRouter) {
		r.Spec.HAProxy = nil
		r.Spec.Webhook = &WebhookRouter{URL: "https://lb.example.com/weights", SecretRef: "lb-hmac"}
	}
	runCases(t, KindTrafficRouter, []vcase[TrafficRouter]{
		{"valid haproxy unix", func(r *TrafficRouter) {}, nil},
		{"valid haproxy tcp", func(r *TrafficRouter) { r.Spec.HAProxy.RuntimeAPI = "tcp://127.0.0.1:9999" }, nil},
		{"haproxy tcp ipv6", func(r *TrafficRouter) { r.Spec.HAProxy.RuntimeAPI = "tcp://[::1]:9999" }, nil},
		{"haproxy tcp without port", func(r *TrafficRouter) { r.Spec.HAProxy.RuntimeAPI = "tcp://127.0.0.1" },
			[]string{"spec.haproxy.runtimeAPI"}},
		{"haproxy unix relative", func(r *TrafficRouter) { r.Spec.HAProxy.RuntimeAPI = "unix://run/admin.sock" },
			[]string{"spec.haproxy.runtimeAPI"}},
		{"haproxy http", func(r *TrafficRouter) { r.Spec.HAProxy.RuntimeAPI = "http://127.0.0.1:9999" },
			[]string{"spec.haproxy.runtimeAPI"}},
		{"haproxy no runtime API", func(r *TrafficRouter) { r.Spec.HAProxy.RuntimeAPI = "" }, []string{"spec.haproxy.runtimeAPI"}},
		{"haproxy backend with a space", func(r *TrafficRouter) { r.Spec.HAProxy.Backend = "web; shutdown" },
			[]string{"spec.haproxy.backend"}},
		{"haproxy no backend", func(r *TrafficRouter) { r.Spec.HAProxy.Backend = "" }, []string{"spec.haproxy.backend"}},
		{"valid gateway", gw, nil},
		{"gateway problems", func(r *TrafficRouter) {
			gw(r)
			r.Spec.GatewayAPI.Cluster = ""
			r.Spec.GatewayAPI.HTTPRoute = NamespacedName{Namespace: "Web", Name: "no_route"}
			r.Spec.GatewayAPI.Rule = -1
		}, []string{"spec.gatewayAPI.cluster", "spec.gatewayAPI.httpRoute.namespace", "spec.gatewayAPI.httpRoute.name", "spec.gatewayAPI.rule"}},
		{"gateway no route name", func(r *TrafficRouter) { gw(r); r.Spec.GatewayAPI.HTTPRoute.Name = "" },
			[]string{"spec.gatewayAPI.httpRoute.name"}},
		{"valid webhook", hook, nil},
		{"webhook problems", func(r *TrafficRouter) {
			hook(r)
			r.Spec.Webhook.URL = "ftp://x"
			r.Spec.Webhook.SecretRef = ""
		}, []string{"spec.webhook.url", "spec.webhook.secretRef"}},
		{"none", func(r *TrafficRouter) { r.Spec.HAProxy = nil }, []string{"spec"}},
		{"two", func(r *TrafficRouter) { r.Spec.Webhook = &WebhookRouter{URL: "http://x/", SecretRef: "k"} }, []string{"spec"}},
		{"bad timeout", func(r *TrafficRouter) { r.Spec.Timeout = "soon" }, []string{"spec.timeout"}},
		{"status weight out of range", func(r *TrafficRouter) { r.Status.Weights = []TrafficWeight{{Cluster: "a", Weight: 101}} },
			[]string{"status.weights[0].weight"}},
	})
}

func TestTrafficRouterDefaultsAndType(t *testing.T) {
	r := example[TrafficRouter](t, KindTrafficRouter)
	if r.Spec.Timeout != DefaultRouterTimeout {
		t.Errorf("timeout %q, want %q", r.Spec.Timeout, DefaultRouterTimeout)
	}
	if got := r.Spec.Type(); got != RouterHAProxy {
		t.Errorf("Type() = %q, want %q", got, RouterHAProxy)
	}
	r.Spec.Webhook = &WebhookRouter{}
	if got := r.Spec.Type(); got != "" {
		t.Errorf("Type() of two routers = %q, want empty", got)
	}
	if k, ok := LookupKind("tr"); !ok || k.Kind != KindTrafficRouter {
		t.Errorf("LookupKind(tr) = %v, %v", k.Kind, ok)
	}
}

func TestDecodeTrafficRouter(t *testing.T) {
	good := header + `kind: TrafficRouter
metadata: {name: edge}
spec:
  gatewayAPI: {cluster: edge-1, httpRoute: {namespace: web, name: web}, rule: 1}
  timeout: 5s
`
	objs, err := LoadYAML("in.yaml", []byte(good))
	if err != nil {
		t.Fatalf("LoadYAML: %v", err)
	}
	r := objs[0].(*TrafficRouter)
	if g := r.Spec.GatewayAPI; g == nil || g.Cluster != "edge-1" || g.HTTPRoute.Name != "web" || g.Rule != 1 || r.Spec.Timeout != "5s" {
		t.Errorf("decoded %+v", r.Spec)
	}
	cases := []struct{ name, yaml, want string }{
		{"unknown field", header + "kind: TrafficRouter\nmetadata: {name: e}\nspec: {haproxy: {runtimeAPI: \"tcp://h:1\", backend: b, server: x}}\n",
			"spec.haproxy.server: unknown field"},
		{"case-sensitive", header + "kind: TrafficRouter\nmetadata: {name: e}\nspec: {gatewayApi: {cluster: c}}\n",
			"spec.gatewayApi: unknown field"},
		{"rule a string", header + "kind: TrafficRouter\nmetadata: {name: e}\nspec: {gatewayAPI: {cluster: c, httpRoute: {namespace: n, name: r}, rule: \"0\"}}\n",
			"spec.gatewayAPI.rule: must be a whole number, got a string"},
		{"validation names the path", header + "kind: TrafficRouter\nmetadata: {name: e}\nspec: {webhook: {url: \"https://x/\"}}\n",
			"spec.webhook.secretRef: required"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := LoadYAML("in.yaml", []byte(c.yaml))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want it to contain %q", err, c.want)
			}
		})
	}
}
