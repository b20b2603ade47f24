package server

import (
	"encoding/json"
	"testing"

	"flotilla.dev/flotilla/internal/store"
)

// The shared pre-encoded answer is byte for byte what encoding the wire state would give, for
// every cluster sharing a digest.
func TestHubDesiredBodyMatchesEncoding(t *testing.T) {
	h := newAgentHub()
	as := []store.Assignment{
		{Service: "api", Release: "api-1", Bundle: "sha256:aa", Options: json.RawMessage(`{"prune":true,"namespace":"a<b>&c"}`)},
		{Service: "web", Release: "web-2", Bundle: "sha256:bb", Options: json.RawMessage(`{}`)},
		{Service: "x", Release: "x-1", Bundle: "sha256:cc"},
	}
	states := []*store.DesiredState{
		{Cluster: "eu-1", Digest: store.DesiredDigest(as), Assignments: as},
		{Cluster: "eu-2", Digest: store.DesiredDigest(as), Assignments: as},
		{Cluster: "us-1", Digest: store.DesiredDigest(nil), Assignments: []store.Assignment{}},
	}
	for range 2 { // the second round answers from the cache
		for _, ds := range states {
			want, err := json.Marshal(toWireDesired(ds))
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, '\n')
			if got := h.desiredBody(ds); string(got) != string(want) {
				t.Errorf("%s: body\n%s\nwant\n%s", ds.Cluster, got, want)
			}
		}
	}
}

// Events this replica published are skipped once, and older marks are dropped with them.
func TestHubTakeLocal(t *testing.T) {
	h := newAgentHub()
	h.publishedLocally(5)
	h.publishedLocally(7)
	if h.takeLocal(4) {
		t.Error("seq 4 taken as local")
	}
	if !h.takeLocal(5) || h.takeLocal(5) {
		t.Error("seq 5 not taken exactly once")
	}
	if h.takeLocal(8) || len(h.local) != 0 {
		t.Errorf("seq 8 taken, or marks left: %v", h.local)
	}
}
