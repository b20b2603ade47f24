package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/client"
	"flotilla.dev/flotilla/internal/server"
)

// decodeStatus reads a Status answer body.
func decodeStatus(t *testing.T, body []byte) v1.Status {
	t.Helper()
	var st v1.Status
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatalf("answer is not a Status: %v: %s", err, body)
	}
	return st
}

// assertNothingWritten fails if the store has recorded any change since the env was set up.
func assertNothingWritten(t *testing.T, e *env) {
	t.Helper()
	ctx := context.Background()
	seq, err := e.store.LatestSeq(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if seq != e.baseSeq {
		evs, _ := e.admin.Audit(ctx, client.AuditOptions{After: e.baseSeq})
		t.Fatalf("store has events up to %d, want none after the set-up's %d: %+v", seq, e.baseSeq, evs)
	}
}

func TestMalformedYAMLNamesDocumentAndLine(t *testing.T) {
	e := newEnv(t)
	body := []byte("apiVersion: flotilla.dev/v1alpha1\nkind: Cluster\nmetadata: {name: a}\n---\napiVersion: flotilla.dev/v1alpha1\nkind: Cluster\nmetadata:\n  name: b\n   labels: x\n")
	resp, data := e.raw("POST", "/api/v1/apply", e.secrets["deployer"], "application/yaml", body)
	st := decodeStatus(t, data)
	if resp.StatusCode != 400 || st.Reason != v1.ReasonBadRequest {
		t.Fatalf("malformed YAML: %d %s, want 400 BadRequest", resp.StatusCode, st.Reason)
	}
	if !strings.Contains(st.Message, "document 2") || !strings.Contains(st.Message, "line 9") {
		t.Errorf("message %q must name document 2 and line 9", st.Message)
	}
	if !strings.Contains(st.Message, "nothing was written") {
		t.Errorf("message %q must say nothing was written", st.Message)
	}
	assertNothingWritten(t, e)
}

func TestMalformedJSONSaysWhere(t *testing.T) {
	e := newEnv(t)
	body := []byte("{\n  \"apiVersion\": \"flotilla.dev/v1alpha1\",\n  \"kind\": \"Cluster\",\n  \"metadata\": {\"name\": \"a\"},,\n}")
	resp, data := e.raw("POST", "/api/v1/clusters", e.secrets["deployer"], "application/json", body)
	st := decodeStatus(t, data)
	if resp.StatusCode != 400 || !strings.Contains(st.Message, "line 4") {
		t.Fatalf("malformed JSON: %d %q, want 400 naming line 4", resp.StatusCode, st.Message)
	}
	resp, data = e.raw("PATCH", "/api/v1/clusters/a", e.secrets["deployer"], "application/merge-patch+json", []byte("{\"metadata\": [}"))
	if st := decodeStatus(t, data); resp.StatusCode != 400 || !strings.Contains(st.Message, "line 1") {
		t.Errorf("malformed patch: %d %q, want 400 naming line 1", resp.StatusCode, st.Message)
	}
}

func TestUnknownKindAndAPIVersion(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	items := []string{
		`{"apiVersion":"flotilla.dev/v1alpha1","kind":"Cluster","metadata":{"name":"ok"}}`,
		`{"apiVersion":"flotilla.dev/v1alpha1","kind":"Spaceship","metadata":{"name":"x"}}`,
		`{"apiVersion":"flotilla.dev/v9","kind":"Cluster","metadata":{"name":"y"}}`,
	}
	body := []byte(`{"items":[` + strings.Join(items, ",") + `]}`)
	resp, data := e.raw("POST", "/api/v1/apply", e.secrets["deployer"], "application/json", body)
	st := decodeStatus(t, data)
	if resp.StatusCode != 400 {
		t.Fatalf("unknown kind and apiVersion: %d %q, want 400", resp.StatusCode, st.Message)
	}
	if !hasField(st.Fields, "items[1]") || !hasField(st.Fields, "items[2]") || hasField(st.Fields, "items[0]") {
		t.Errorf("fields = %+v, want items[1] (kind) and items[2] (apiVersion) only", st.Fields)
	}
	joined := fmt.Sprint(st.Fields)
	if !strings.Contains(joined, "Spaceship") || !strings.Contains(joined, "flotilla.dev/v9") {
		t.Errorf("fields %s must name the unknown kind and apiVersion", joined)
	}
	assertNothingWritten(t, e)

	// A single create with an unknown apiVersion, and a kind that does not match the URL.
	resp, data = e.raw("POST", "/api/v1/clusters", e.secrets["deployer"], "", []byte(items[2]))
	if resp.StatusCode != 400 {
		t.Errorf("create with apiVersion v9: %d %s, want 400", resp.StatusCode, data)
	}
	_, err := e.deploy.Create(ctx, fleet(t)[v1.KindService])
	if err != nil {
		t.Fatal(err)
	}
	resp, data = e.raw("POST", "/api/v1/services", e.secrets["deployer"], "", []byte(items[0]))
	if st := decodeStatus(t, data); resp.StatusCode != 400 || !strings.Contains(st.Message, "Cluster") {
		t.Errorf("a Cluster posted to /services: %d %q, want 400 naming the kind", resp.StatusCode, st.Message)
	}
	// Unknown kinds in URLs, queries and the client.
	if resp, _ := e.raw("GET", "/api/v1/spaceships", e.secrets["viewer"], "", nil); resp.StatusCode != 404 {
		t.Errorf("GET /api/v1/spaceships: %d, want 404", resp.StatusCode)
	}
	if resp, _ := e.raw("GET", "/api/v1/audit?kind=spaceship", e.secrets["viewer"], "", nil); resp.StatusCode != 400 {
		t.Errorf("audit ?kind=spaceship: %d, want 400", resp.StatusCode)
	}
	if _, err := e.viewer.Get(ctx, "spaceship", "x"); err == nil || !strings.Contains(err.Error(), "unknown kind") {
		t.Errorf("client Get of an unknown kind = %v, want an unknown kind error", err)
	}
}

func TestInvalidFieldsAllReportedWithPaths(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	strat := fleet(t)[v1.KindRolloutStrategy].(*v1.RolloutStrategy)
	strat.Spec.Waves[1].MaxParallel = "0"
	strat.Spec.Waves[2].MaxParallel = "250%"
	strat.Spec.OnFailure = "explode"
	_, err := e.deploy.Create(ctx, strat)
	st := wantStatus(t, err, 422, v1.ReasonInvalid)
	for _, p := range []string{"spec.waves[1].maxParallel", "spec.waves[2].maxParallel", "spec.onFailure"} {
		if !hasField(st.Fields, p) {
			t.Errorf("fields %+v lack %s", st.Fields, p)
		}
	}

	src := fleet(t)[v1.KindSource].(*v1.Source)
	src.Spec.Git.URL = ""
	src.Spec.Git.Ref = v1.GitRef{}
	_, err = e.deploy.Create(ctx, src)
	st = wantStatus(t, err, 422, v1.ReasonInvalid)
	if !hasField(st.Fields, "spec.git.url") || !hasField(st.Fields, "spec.git.ref") {
		t.Errorf("missing fields: %+v, want spec.git.url and spec.git.ref", st.Fields)
	}
	assertNothingWritten(t, e)
}

func TestNamesMustBeDNSLabels(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, name := range []string{"Prod_EU", "-a", "a.b", strings.Repeat("x", 64)} {
		_, err := e.deploy.Create(ctx, cluster(name, nil))
		st := wantStatus(t, err, 422, v1.ReasonInvalid)
		if !hasField(st.Fields, "metadata.name") {
			t.Errorf("name %q: fields %+v, want metadata.name", name, st.Fields)
		}
	}
	_, err := e.deploy.Create(ctx, cluster("", nil))
	st := wantStatus(t, err, 422, v1.ReasonInvalid)
	if !hasField(st.Fields, "metadata.name") {
		t.Errorf("empty name: fields %+v, want metadata.name", st.Fields)
	}
	assertNothingWritten(t, e)
}

func TestApplyDuplicateAndOneBadWritesNothing(t *testing.T) {
	onEveryBackend(t, testApplyDuplicateAndOneBadWritesNothing)
}

func testApplyDuplicateAndOneBadWritesNothing(t *testing.T, newEnv envMaker) {
	e := newEnv(t)
	ctx := context.Background()
	objs := fleetList(t)
	objs = append(objs, cluster("prod-eu-1", map[string]string{"env": "dev"})) // duplicate of items[0]
	_, err := e.deploy.Apply(ctx, objs)
	st := wantStatus(t, err, 422, v1.ReasonInvalid)
	dup := fmt.Sprintf("items[%d].metadata.name", len(objs)-1)
	if !hasField(st.Fields, dup) || !strings.Contains(st.Message, "nothing was written") {
		t.Errorf("duplicate: %q %+v, want %s and 'nothing was written'", st.Message, st.Fields, dup)
	}
	assertNothingWritten(t, e)

	// Ten objects, one invalid: none is written.
	var ten []v1.Object
	for i := range 10 {
		ten = append(ten, cluster(fmt.Sprintf("c%d", i), nil))
	}
	ten[6].GetMetadata().Labels = map[string]string{"bad key!": "v"}
	_, err = e.deploy.Apply(ctx, ten)
	st = wantStatus(t, err, 422, v1.ReasonInvalid)
	if len(st.Fields) != 1 || !strings.HasPrefix(st.Fields[0].Path, "items[6].metadata.labels") {
		t.Errorf("fields = %+v, want one problem at items[6].metadata.labels", st.Fields)
	}
	l, err := e.admin.List(ctx, "clusters", client.ListOptions{})
	if err != nil || len(l.Items) != 0 {
		t.Errorf("after a failed apply of ten: %d clusters, %v; want none", len(l.Items), err)
	}
	assertNothingWritten(t, e)
}

func TestOversizedBody(t *testing.T) {
	e := newEnv(t, func(o *server.Options) { o.MaxBodyBytes = 64 << 10 })
	c := cluster("big", nil)
	c.Metadata.Annotations = map[string]string{"blob": strings.Repeat("x", 100<<10)}
	_, err := e.deploy.Create(context.Background(), c)
	st := wantStatus(t, err, 413, v1.ReasonTooLarge)
	if !strings.Contains(st.Message, "65536") {
		t.Errorf("413 message %q should state the limit", st.Message)
	}
	assertNothingWritten(t, e)
}

func TestStaleResourceVersionConflicts(t *testing.T) {
	onEveryBackend(t, testStaleResourceVersionConflicts)
}

func testStaleResourceVersionConflicts(t *testing.T, newEnv envMaker) {
	e := newEnv(t)
	ctx := context.Background()
	first, err := e.deploy.Create(ctx, cluster("a", nil))
	if err != nil {
		t.Fatal(err)
	}
	second := first.(*v1.Cluster)
	second.Metadata.Labels = map[string]string{"v": "2"}
	if _, err := e.deploy.Update(ctx, second); err != nil {
		t.Fatalf("first update: %v", err)
	}
	stale := first.(*v1.Cluster)
	stale.Metadata.Labels = map[string]string{"v": "stale"}
	_, err = e.deploy.Update(ctx, stale)
	wantStatus(t, err, 409, v1.ReasonConflict)
	if !client.IsConflict(err) {
		t.Errorf("IsConflict(%v) = false", err)
	}
	_, err = e.deploy.Patch(ctx, "cluster", "a", []byte(`{"metadata":{"resourceVersion":"`+first.GetMetadata().ResourceVersion+`","labels":{"v":"p"}}}`))
	wantStatus(t, err, 409, v1.ReasonConflict)
	_, err = e.deploy.Delete(ctx, "cluster", "a", client.DeleteOptions{ResourceVersion: first.GetMetadata().ResourceVersion})
	wantStatus(t, err, 409, v1.ReasonConflict)
	_, err = e.admin.UpdateStatus(ctx, stale)
	wantStatus(t, err, 409, v1.ReasonConflict)

	noVersion := cluster("a", nil)
	_, err = e.deploy.Update(ctx, noVersion)
	st := wantStatus(t, err, 422, v1.ReasonInvalid)
	if !hasField(st.Fields, "metadata.resourceVersion") {
		t.Errorf("update without resourceVersion: fields %+v, want metadata.resourceVersion", st.Fields)
	}
	_, err = e.deploy.Create(ctx, cluster("a", nil))
	wantStatus(t, err, 409, v1.ReasonAlreadyExists)
}

func TestUnknownObjectIsNotFound(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, err := e.viewer.Get(ctx, "service", "nope")
	if st := wantStatus(t, err, 404, v1.ReasonNotFound); st.Message != `Service "nope" not found` {
		t.Errorf("404 message = %q, want it to name the kind and the object", st.Message)
	}
	_, err = e.deploy.Delete(ctx, "service", "nope", client.DeleteOptions{})
	wantStatus(t, err, 404, v1.ReasonNotFound)
	_, err = e.deploy.Patch(ctx, "service", "nope", []byte(`{}`))
	wantStatus(t, err, 404, v1.ReasonNotFound)
	svc := fleet(t)[v1.KindService]
	svc.GetMetadata().ResourceVersion = "7"
	_, err = e.deploy.Update(ctx, svc)
	if !client.IsNotFound(err) {
		t.Errorf("update of a missing object = %v, want not found", err)
	}
	if resp, data := e.raw("GET", "/api/v1/nowhere", "", "", nil); resp.StatusCode != 404 || decodeStatus(t, data).Code != 404 {
		t.Errorf("unknown route: %d %s, want a 404 Status", resp.StatusCode, data)
	}
	if resp, data := e.raw("POST", "/api/v1/whoami", e.secrets["admin"], "", []byte("{}")); resp.StatusCode != 405 || resp.Header.Get("Allow") == "" {
		t.Errorf("POST /api/v1/whoami: %d %s (Allow %q), want a 405 Status with Allow", resp.StatusCode, data, resp.Header.Get("Allow"))
	}
}

func TestUnauthorizedAndForbidden(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, err := e.viewer.Create(ctx, cluster("a", nil))
	st := wantStatus(t, err, 403, v1.ReasonForbidden)
	if !strings.Contains(st.Message, "viewer-token") || !strings.Contains(st.Message, "create clusters") {
		t.Errorf("403 message %q should name the caller and the permission", st.Message)
	}
	if !client.IsForbidden(err) {
		t.Error("IsForbidden = false for a 403")
	}
	_, err = e.viewer.Apply(ctx, fleetList(t))
	wantStatus(t, err, 403, v1.ReasonForbidden)

	for name, token := range map[string]string{
		"no token":        "",
		"malformed token": "hunter2",
		"unknown token":   "flt_" + strings.Repeat("A", 43),
	} {
		_, err := e.client(token).List(ctx, "clusters", client.ListOptions{})
		if !client.IsUnauthorized(err) {
			t.Errorf("%s: %v, want 401", name, err)
		}
	}
	resp, _ := e.raw("GET", "/api/v1/clusters", "", "", nil)
	if resp.Header.Get("WWW-Authenticate") == "" {
		t.Error("401 without a WWW-Authenticate header")
	}
	assertNothingWritten(t, e)
}

func TestOtherBadRequests(t *testing.T) {
	e := newEnv(t)
	tok := e.secrets["deployer"]
	cases := []struct {
		name, method, path, ct string
		body                   string
		code                   int
	}{
		{"bad selector", "GET", "/api/v1/clusters?labelSelector=env%3D%3D%3Dprod", "", "", 400},
		{"bad limit", "GET", "/api/v1/clusters?limit=-1", "", "", 400},
		{"bad continue", "GET", "/api/v1/clusters?continue=garbage!", "", "", 400},
		{"bad since", "GET", "/api/v1/audit?since=yesterday", "", "", 400},
		{"bad after", "GET", "/api/v1/watch?after=x", "", "", 400},
		{"unknown watch kind", "GET", "/api/v1/watch?kinds=spaceship", "", "", 400},
		{"empty body", "POST", "/api/v1/clusters", "application/json", "", 400},
		{"unknown field", "POST", "/api/v1/clusters", "application/json", `{"apiVersion":"flotilla.dev/v1alpha1","kind":"Cluster","metadata":{"name":"a"},"spec":{"colour":"red"}}`, 400},
		{"media type", "POST", "/api/v1/clusters", "text/plain", `x`, 415},
		{"patch media type", "PATCH", "/api/v1/clusters/a", "application/json", `{}`, 415},
		{"patch not an object", "PATCH", "/api/v1/clusters/a", "application/merge-patch+json", `[1]`, 400},
		{"name mismatch", "PUT", "/api/v1/clusters/b", "application/json", `{"apiVersion":"flotilla.dev/v1alpha1","kind":"Cluster","metadata":{"name":"a","resourceVersion":"1"}}`, 400},
		{"two objects in a create", "POST", "/api/v1/clusters", "application/yaml", "apiVersion: flotilla.dev/v1alpha1\nkind: Cluster\nmetadata: {name: a}\n---\napiVersion: flotilla.dev/v1alpha1\nkind: Cluster\nmetadata: {name: b}\n", 400},
		{"empty apply", "POST", "/api/v1/apply", "application/json", `{"items":[]}`, 400},
	}
	for _, c := range cases {
		var body []byte
		if c.body != "" {
			body = []byte(c.body)
		} else if c.method != "GET" {
			body = []byte{}
		}
		resp, data := e.raw(c.method, c.path, tok, c.ct, body)
		st := decodeStatus(t, data)
		if resp.StatusCode != c.code || st.Code != c.code || st.Message == "" {
			t.Errorf("%s: %d %+v, want %d with a message", c.name, resp.StatusCode, st, c.code)
		}
	}
	assertNothingWritten(t, e)
}

func TestYAMLBodies(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	y := "apiVersion: flotilla.dev/v1alpha1\nkind: Cluster\nmetadata:\n  name: from-yaml\n  labels: {env: prod}\n"
	resp, data := e.raw("POST", "/api/v1/clusters", e.secrets["deployer"], "application/yaml", []byte(y))
	if resp.StatusCode != 201 {
		t.Fatalf("YAML create: %d %s", resp.StatusCode, data)
	}
	res, err := e.deploy.ApplyYAML(ctx, []byte(y+"---\n"+strings.Replace(y, "from-yaml", "second", 1)))
	if err != nil || len(res.Items) != 2 || res.Items[0].Action != v1.ActionUnchanged || res.Items[1].Action != v1.ActionCreated {
		t.Fatalf("YAML apply = %+v, %v; want unchanged then created", res, err)
	}
}
