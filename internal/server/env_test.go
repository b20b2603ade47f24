package server_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/client"
	"flotilla.dev/flotilla/internal/server"
	"flotilla.dev/flotilla/internal/store"
	"flotilla.dev/flotilla/internal/store/open"
	"flotilla.dev/flotilla/internal/store/postgres/pgtest"
)

// env is a real server on a real SQLite store in a temporary directory, served over loopback,
// with a client per built-in role.
type env struct {
	t       testing.TB
	srv     *server.Server
	ts      *httptest.Server
	store   store.Store
	clock   *clock
	secrets map[string]string // role -> token
	admin   *client.Client
	deploy  *client.Client
	viewer  *client.Client
	anon    *client.Client
	// baseSeq is the last event of the env's own set-up (its tokens are audited).
	baseSeq int64
}

// clock is a settable clock for token expiry; it starts at the real time.
type clock struct{ offset atomic.Int64 }

func (c *clock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

// envMaker builds an env; tests that run on every backend take one as their newEnv.
type envMaker func(t testing.TB, tune ...func(*server.Options)) *env

// newEnv builds an env on SQLite.
func newEnv(t testing.TB, tune ...func(*server.Options)) *env {
	t.Helper()
	return newEnvOn(t, filepath.Join(t.TempDir(), "flotilla.db"), tune...)
}

// onEveryBackend runs f once on SQLite and once on a fresh PostgreSQL database (from
// FLOTILLA_TEST_POSTGRES, see internal/store/postgres/pgtest).
func onEveryBackend(t *testing.T, f func(t *testing.T, newEnv envMaker)) {
	t.Run("sqlite", func(t *testing.T) { f(t, newEnv) })
	t.Run("postgres", func(t *testing.T) {
		f(t, func(t testing.TB, tune ...func(*server.Options)) *env {
			t.Helper()
			return newEnvOn(t, pgtest.NewDatabase(t), tune...)
		})
	})
}

// newEnvOn builds an env on the store named by dsn.
func newEnvOn(t testing.TB, dsn string, tune ...func(*server.Options)) *env {
	t.Helper()
	return newEnvAt(t, dsn, nil, tune...)
}

// newEnvAt builds an env on the store named by dsn; tuneURL, when given, sets options that need
// the server's own URL (an OIDC redirect URL), known because the listener opens first.
func newEnvAt(t testing.TB, dsn string, tuneURL func(serverURL string, o *server.Options), tune ...func(*server.Options)) *env {
	t.Helper()
	ctx := context.Background()
	st, err := open.Open(ctx, dsn)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	e := &env{t: t, store: st, clock: &clock{}, secrets: map[string]string{}}
	opts := server.Options{
		Store:             st,
		Logger:            slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})),
		HeartbeatInterval: 100 * time.Millisecond,
		Now:               e.clock.Now,
	}
	for _, f := range tune {
		f(&opts)
	}
	e.ts = httptest.NewUnstartedServer(nil)
	if tuneURL != nil {
		tuneURL("http://"+e.ts.Listener.Addr().String(), &opts)
	}
	e.srv, err = server.New(opts)
	if err != nil {
		e.ts.Close()
		t.Fatalf("server.New: %v", err)
	}
	e.ts.Config.Handler = e.srv.Handler()
	e.ts.Start()
	t.Cleanup(func() {
		e.srv.StopStreams()
		e.ts.Close()
		st.Close()
	})
	admin, created, err := server.BootstrapAdminToken(ctx, st)
	if err != nil || !created {
		t.Fatalf("BootstrapAdminToken = %v, %v; want a new token", created, err)
	}
	e.secrets["admin"] = admin
	e.admin = e.client(admin)
	for _, role := range []string{"deployer", "viewer"} {
		tok, err := e.admin.CreateToken(ctx, v1.TokenRequest{Name: role + "-token", Role: role})
		if err != nil {
			t.Fatalf("create %s token: %v", role, err)
		}
		e.secrets[role] = tok.Secret
	}
	e.deploy = e.client(e.secrets["deployer"])
	e.viewer = e.client(e.secrets["viewer"])
	e.anon = e.client("")
	if e.baseSeq, err = st.LatestSeq(ctx); err != nil {
		t.Fatalf("LatestSeq: %v", err)
	}
	return e
}

// client returns a client of the env's server using token.
func (e *env) client(token string) *client.Client {
	e.t.Helper()
	c, err := client.New(client.Options{Server: e.ts.URL, Token: token})
	if err != nil {
		e.t.Fatalf("client.New: %v", err)
	}
	return c
}

// fleet returns one fresh, valid object of every kind from testdata/fleet.yaml, by kind.
func fleet(t testing.TB) map[string]v1.Object {
	t.Helper()
	data, err := os.ReadFile("testdata/fleet.yaml")
	if err != nil {
		t.Fatal(err)
	}
	objs, err := v1.LoadYAML("testdata/fleet.yaml", data)
	if err != nil {
		t.Fatalf("testdata/fleet.yaml: %v", err)
	}
	out := map[string]v1.Object{}
	for _, o := range objs {
		out[o.GetTypeMeta().Kind] = o
	}
	if len(out) != len(v1.Kinds()) {
		t.Fatalf("testdata/fleet.yaml has %d kinds, want one object of each of %d", len(out), len(v1.Kinds()))
	}
	return out
}

// fleetList returns the fleet objects in kind order.
func fleetList(t testing.TB) []v1.Object {
	t.Helper()
	m := fleet(t)
	var out []v1.Object
	for _, k := range v1.Kinds() {
		out = append(out, m[k.Kind])
	}
	return out
}

// cluster returns a valid Cluster named name with labels.
func cluster(name string, labels map[string]string) *v1.Cluster {
	c := &v1.Cluster{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindCluster}}
	c.Metadata.Name = name
	c.Metadata.Labels = labels
	return c
}

// raw sends a request with an optional token and body and returns the answer with its Status
// decoded when it is an error.
func (e *env) raw(method, path, token, contentType string, body []byte) (*http.Response, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.ts.URL+path, bytesOrNil(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := readAll(resp)
	if err != nil {
		e.t.Fatalf("%s %s: read: %v", method, path, err)
	}
	return resp, data
}
