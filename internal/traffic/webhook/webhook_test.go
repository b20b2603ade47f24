package webhook_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"flotilla.dev/flotilla/internal/traffic/providertest"
	"flotilla.dev/flotilla/internal/traffic/webhook"
)

// receiver is a hook that verifies every request with its own key and
// records the weights it accepted.
type receiver struct {
	key     []byte
	mu      sync.Mutex
	got     []webhook.Request
	refused []error
	answer  func(w http.ResponseWriter, req webhook.Request)
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := webhook.Verify(r, rc.key, time.Now(), time.Minute)
	if err != nil {
		rc.mu.Lock()
		rc.refused = append(rc.refused, err)
		rc.mu.Unlock()
		http.Error(w, "refused: "+err.Error(), http.StatusUnauthorized)
		return
	}
	var req webhook.Request
	if err := json.Unmarshal(body, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rc.mu.Lock()
	rc.got = append(rc.got, req)
	rc.mu.Unlock()
	if rc.answer != nil {
		rc.answer(w, req)
	}
}

func TestWebhookSignedAndAccepted(t *testing.T) {
	rc := &receiver{key: []byte("shared-secret")}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	h, err := webhook.New(webhook.Options{URL: srv.URL + "/weights", Key: []byte("shared-secret"), Router: "edge"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := h.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if err := h.SetWeights(ctx, map[string]int{"eu-1": 25, "us-1": 75}); err != nil {
		t.Fatalf("SetWeights: %v", err)
	}
	got, err := h.Weights(ctx, []string{"eu-1", "us-1"})
	if err != nil || got["eu-1"] != 25 || got["us-1"] != 75 {
		t.Fatalf("Weights = %v, %v", got, err)
	}
	want := []webhook.Request{
		{Router: "edge", MaxWeight: 100, Weights: []webhook.Weight{}},
		{Router: "edge", MaxWeight: 100, Weights: []webhook.Weight{{Backend: "eu-1", Weight: 25}, {Backend: "us-1", Weight: 75}}},
	}
	if d := cmp.Diff(want, rc.got); d != "" {
		t.Errorf("requests the hook accepted (-want +got):\n%s", d)
	}
	if len(rc.refused) != 0 {
		t.Errorf("refused: %v", rc.refused)
	}
	if _, err := h.Weights(ctx, []string{"ap-1"}); err == nil {
		t.Error("Weights of a backend never set: no error")
	}
}

func TestWebhookWrongKeyIsRejected(t *testing.T) {
	rc := &receiver{key: []byte("the-real-key")}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	h, _ := webhook.New(webhook.Options{URL: srv.URL, Key: []byte("a-guessed-key"), Router: "edge"})
	err := h.SetWeights(context.Background(), map[string]int{"eu-1": 0})
	if err == nil || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "signature does not match") {
		t.Fatalf("error %v, want the hook's 401 with its reason", err)
	}
	if len(rc.got) != 0 || len(rc.refused) != 1 || !errors.Is(rc.refused[0], webhook.ErrBadSignature) {
		t.Fatalf("hook accepted %v, refused %v", rc.got, rc.refused)
	}
	if _, err := h.Weights(context.Background(), []string{"eu-1"}); err == nil {
		t.Error("a refused change reads back as in force")
	}
}

func TestVerify(t *testing.T) {
	key := []byte("k")
	body := `{"router":"edge","maxWeight":100,"weights":[]}`
	now := time.Unix(1_800_000_000, 0)
	mk := func(ts, sig, b string) *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(b))
		r.Header.Set(webhook.HeaderTimestamp, ts)
		r.Header.Set(webhook.HeaderSignature, sig)
		return r
	}
	ts := "1800000000"
	good := webhook.Sign(key, ts, []byte(body))
	if _, err := webhook.Verify(mk(ts, good, body), key, now, time.Minute); err != nil {
		t.Fatalf("good request: %v", err)
	}
	for name, tc := range map[string]struct {
		r    *http.Request
		want error
	}{
		"body changed":       {mk(ts, good, strings.Replace(body, "[]", `[{"backend":"a","weight":0}]`, 1)), webhook.ErrBadSignature},
		"timestamp replayed": {mk("1799999000", webhook.Sign(key, "1799999000", []byte(body)), body), webhook.ErrStale},
		"timestamp changed":  {mk("1800000001", good, body), webhook.ErrBadSignature},
		"no signature":       {mk(ts, "", body), webhook.ErrBadSignature},
		"no timestamp":       {mk("", good, body), webhook.ErrStale},
	} {
		if _, err := webhook.Verify(tc.r, key, now, time.Minute); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
	big := strings.Repeat("x", webhook.MaxRequestBody+1)
	if _, err := webhook.Verify(mk(ts, webhook.Sign(key, ts, []byte(big)), big), key, now, time.Minute); err == nil {
		t.Error("an oversized body was accepted")
	}
}

func TestWebhookAnswers(t *testing.T) {
	ctx := context.Background()
	t.Run("weights in force from the answer", func(t *testing.T) {
		rc := &receiver{key: []byte("k"), answer: func(w http.ResponseWriter, req webhook.Request) {
			// The balancer rounds to multiples of 10.
			var ans webhook.Answer
			for _, x := range req.Weights {
				ans.Weights = append(ans.Weights, webhook.Weight{Backend: x.Backend, Weight: x.Weight / 10 * 10})
			}
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(ans)
		}}
		srv := httptest.NewServer(rc)
		defer srv.Close()
		h, _ := webhook.New(webhook.Options{URL: srv.URL, Key: []byte("k")})
		if err := h.SetWeights(ctx, map[string]int{"a": 25}); err != nil {
			t.Fatal(err)
		}
		if got, _ := h.Weights(ctx, []string{"a"}); got["a"] != 20 {
			t.Fatalf("read back %v, want the answer's 20", got)
		}
	})
	t.Run("server error", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "backend eu-1 unknown", http.StatusUnprocessableEntity)
		}))
		defer srv.Close()
		h, _ := webhook.New(webhook.Options{URL: srv.URL, Key: []byte("k")})
		err := h.SetWeights(ctx, map[string]int{"eu-1": 5})
		if err == nil || !strings.Contains(err.Error(), "422") || !strings.Contains(err.Error(), "backend eu-1 unknown") {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("redirect not followed", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "http://169.254.169.254/", http.StatusTemporaryRedirect)
		}))
		defer srv.Close()
		h, _ := webhook.New(webhook.Options{URL: srv.URL, Key: []byte("k")})
		if err := h.Ping(ctx); err == nil || !strings.Contains(err.Error(), "307") {
			t.Fatalf("error %v, want the 307 as a failure", err)
		}
	})
	t.Run("answer too large", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"weights":[`+strings.Repeat(`{"backend":"a","weight":1},`, 5000)+`{"backend":"a","weight":1}]}`)
		}))
		defer srv.Close()
		h, _ := webhook.New(webhook.Options{URL: srv.URL, Key: []byte("k")})
		if err := h.SetWeights(ctx, map[string]int{"a": 1}); err == nil || !strings.Contains(err.Error(), "larger than") {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		release := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}))
		defer srv.Close()
		defer close(release)
		h, _ := webhook.New(webhook.Options{URL: srv.URL, Key: []byte("k")})
		ctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		err := h.SetWeights(ctx, map[string]int{"a": 1})
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 2*time.Second {
			t.Fatalf("error %v after %s", err, time.Since(start))
		}
	})
	t.Run("bad options", func(t *testing.T) {
		if _, err := webhook.New(webhook.Options{URL: "http://x"}); err == nil {
			t.Error("empty key accepted")
		}
		if _, err := webhook.New(webhook.Options{URL: "file:///etc/passwd", Key: []byte("k")}); err == nil {
			t.Error("file URL accepted")
		}
	})
}

// table is a hook in front of a balancer with backends a and b: it refuses
// a change naming any other backend, whole.
func table(t *testing.T, key []byte) *httptest.Server {
	t.Helper()
	var mu sync.Mutex
	weights := map[string]int{"a": 1, "b": 1}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := webhook.Verify(r, key, time.Now(), time.Minute)
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		var req webhook.Request
		if err := json.Unmarshal(body, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		for _, x := range req.Weights {
			if _, ok := weights[x.Backend]; !ok {
				http.Error(w, "unknown backend "+x.Backend, http.StatusUnprocessableEntity)
				return
			}
		}
		var ans webhook.Answer
		for _, x := range req.Weights {
			weights[x.Backend] = x.Weight
			ans.Weights = append(ans.Weights, x)
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(ans)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestConformance(t *testing.T) {
	srv := table(t, []byte("k"))
	h, err := webhook.New(webhook.Options{URL: srv.URL, Key: []byte("k"), Router: "edge"})
	if err != nil {
		t.Fatal(err)
	}
	providertest.Run(t, h, "a", "b")
}
