package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/client"
	"flotilla.dev/flotilla/internal/server"
	"flotilla.dev/flotilla/internal/store/open"
)

func TestHealthReadinessMetrics(t *testing.T) {
	e := newEnv(t)
	for _, p := range []string{"/healthz", "/readyz"} {
		resp, data := e.raw("GET", p, "", "", nil)
		if resp.StatusCode != 200 || !strings.Contains(string(data), `"ok"`) {
			t.Errorf("GET %s = %d %s, want 200 ok", p, resp.StatusCode, data)
		}
	}
	if _, err := e.deploy.Create(context.Background(), cluster("m", nil)); err != nil {
		t.Fatal(err)
	}
	_, _ = e.viewer.Get(context.Background(), "cluster", "missing")
	resp, data := e.raw("GET", "/metrics", "", "", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("GET /metrics = %d", resp.StatusCode)
	}
	text := string(data)
	for _, want := range []string{
		`flotilla_http_requests_total{code="201",route="POST /api/v1/clusters"} 1`,
		`flotilla_http_requests_total{code="404",route="GET /api/v1/clusters/{name}"} 1`,
		`flotilla_http_request_duration_seconds_bucket{code="201",route="POST /api/v1/clusters"`,
		`flotilla_store_operation_duration_seconds_count{operation="create",result="ok"} 1`,
		`flotilla_store_operation_duration_seconds_count{operation="get",result="ok"}`,
		`go_goroutines`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestReadinessFailsWithoutStore(t *testing.T) {
	e := newEnv(t)
	e.store.Close()
	resp, data := e.raw("GET", "/readyz", "", "", nil)
	if resp.StatusCode != 503 || !strings.Contains(string(data), "store") {
		t.Errorf("/readyz with a closed store = %d %s, want 503 naming the store", resp.StatusCode, data)
	}
	if resp, _ := e.raw("GET", "/healthz", "", "", nil); resp.StatusCode != 200 {
		t.Errorf("/healthz with a closed store = %d, want 200 (the process is alive)", resp.StatusCode)
	}
}

// TestOpenAPICoversEveryRoute checks that the served document has an operation for every route of
// the table, with the access rule stated, and a schema for every kind.
func TestOpenAPICoversEveryRoute(t *testing.T) {
	e := newEnv(t)
	resp, data := e.raw("GET", "/api/v1/openapi.json", "", "", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("GET openapi.json = %d", resp.StatusCode)
	}
	var doc struct {
		OpenAPI    string                                      `json:"openapi"`
		Paths      map[string]map[string]map[string]any        `json:"paths"`
		Components struct{ Schemas map[string]map[string]any } `json:"components"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Errorf("openapi = %q, want 3.x", doc.OpenAPI)
	}
	ops := 0
	for _, p := range doc.Paths {
		ops += len(p)
	}
	routes := e.srv.Routes()
	if ops != len(routes) {
		t.Errorf("document has %d operations, route table %d routes", ops, len(routes))
	}
	for _, rt := range routes {
		op, ok := doc.Paths[rt.Path][strings.ToLower(rt.Method)]
		if !ok {
			t.Errorf("route %s is not in the OpenAPI document", rt.Pattern())
			continue
		}
		if desc, _ := op["description"].(string); !strings.Contains(desc, "Access: "+rt.Rule.String()) {
			t.Errorf("route %s: description %q does not state its rule %q", rt.Pattern(), desc, rt.Rule)
		}
		if op["operationId"] == "" {
			t.Errorf("route %s has no operationId", rt.Pattern())
		}
	}
	for _, k := range v1.Kinds() {
		s, ok := doc.Components.Schemas[k.Kind]
		if !ok {
			t.Errorf("no schema for %s", k.Kind)
			continue
		}
		props, _ := s["properties"].(map[string]any)
		for _, f := range []string{"apiVersion", "kind", "metadata", "spec"} {
			if _, ok := props[f]; !ok {
				t.Errorf("schema %s lacks property %s", k.Kind, f)
			}
		}
	}
	// Every $ref resolves.
	for _, m := range refPattern.FindAllStringSubmatch(string(data), -1) {
		if _, ok := doc.Components.Schemas[m[1]]; !ok {
			t.Errorf("dangling $ref to %s", m[1])
		}
	}
}

// TestGracefulShutdown starts Serve on a real listener, begins a request whose body is still being
// sent, shuts the server down, and checks that the request still completes and Serve returns nil.
func TestGracefulShutdown(t *testing.T) {
	ctx := context.Background()
	st, err := open.Open(ctx, filepath.Join(t.TempDir(), "f.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	token, _, err := server.BootstrapAdminToken(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Options{Store: st, ShutdownTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveCtx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(serveCtx, ln) }()
	base := "http://" + ln.Addr().String()

	// A watch stream is open during shutdown too; it must not hold the shutdown up.
	c, _ := client.New(client.Options{Server: base, Token: token})
	watchCtx, cancelWatch := context.WithCancel(ctx)
	defer cancelWatch()
	go func() { _ = c.Watch(watchCtx, client.WatchOptions{}, func(v1.Event) error { return nil }) }()

	pr, pw := io.Pipe()
	req, _ := http.NewRequest("POST", base+"/api/v1/clusters", pr)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	answered := make(chan *http.Response, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Errorf("in-flight request: %v", err)
			answered <- nil
			return
		}
		answered <- resp
	}()
	body := `{"apiVersion":"flotilla.dev/v1alpha1","kind":"Cluster","metadata":{"name":"late"}}`
	if _, err := io.WriteString(pw, body[:20]); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // the request is now in flight
	stop()
	time.Sleep(100 * time.Millisecond) // shutdown has begun and waits for it
	if _, err := io.WriteString(pw, body[20:]); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	resp := <-answered
	if resp == nil {
		t.Fatal("no answer to the in-flight request")
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Errorf("in-flight create answered %d, want 201", resp.StatusCode)
	}
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve = %v, want nil after a clean shutdown", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after shutdown")
	}
	if _, err := st.Get(ctx, "Cluster", "late"); err != nil {
		t.Errorf("the in-flight create was not stored: %v", err)
	}
}

func TestBootstrapAdminTokenOnlyOnce(t *testing.T) {
	ctx := context.Background()
	st, err := open.Open(ctx, filepath.Join(t.TempDir(), "f.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	first, created, err := server.BootstrapAdminToken(ctx, st)
	if err != nil || !created || !strings.HasPrefix(first, "flt_") {
		t.Fatalf("first BootstrapAdminToken = %q, %v, %v; want a new flt_ token", first, created, err)
	}
	second, created, err := server.BootstrapAdminToken(ctx, st)
	if err != nil || created || second != "" {
		t.Errorf("second BootstrapAdminToken = %q, %v, %v; want nothing created", second, created, err)
	}
	toks, err := st.ListTokens(ctx)
	if err != nil || len(toks) != 1 || toks[0].Role != "admin" || toks[0].Hash == first {
		t.Errorf("tokens = %+v, %v; want one admin token stored by hash", toks, err)
	}
}
