package server

import (
	"testing"
	"time"

	"flotilla.dev/flotilla/internal/store"
)

func TestHubCredentialCache(t *testing.T) {
	h := newAgentHub()
	now := time.Now()
	gen := h.credentialGen()
	h.rememberAgent("ha", "a", gen, now)
	h.rememberAgent("hb", "b", gen, now)
	if c, ok := h.cachedAgent("ha", now); !ok || c != "a" {
		t.Fatalf("cachedAgent(ha) = %q, %v", c, ok)
	}
	// A change of a's credential drops a's entries only, and a read that began before it is not
	// cached.
	stale := h.credentialGen()
	h.credentialChanged("a")
	if _, ok := h.cachedAgent("ha", now); ok {
		t.Error("a's credential is still trusted after its change")
	}
	if _, ok := h.cachedAgent("hb", now); !ok {
		t.Error("b's credential was dropped by a change of a's")
	}
	h.rememberAgent("ha", "a", stale, now)
	if _, ok := h.cachedAgent("ha", now); ok {
		t.Error("a store read that raced with the change was cached")
	}
	if _, ok := h.cachedAgent("hb", now.Add(credentialTTL+time.Second)); ok {
		t.Error("an entry is trusted past credentialTTL")
	}
}

func TestHubPublishWakesOnlyItsCluster(t *testing.T) {
	h := newAgentHub()
	a, b := h.wait("a"), h.wait("b")
	h.publish(&store.DesiredState{Cluster: "a", Digest: "d2", Seq: 2})
	select {
	case <-a:
	default:
		t.Fatal("publish did not wake a's waiters")
	}
	select {
	case <-b:
		t.Fatal("publish for a woke b's waiters")
	default:
	}
	// An older state neither replaces the cached one nor wakes anyone.
	a2 := h.wait("a")
	h.publish(&store.DesiredState{Cluster: "a", Digest: "d1", Seq: 1})
	select {
	case <-a2:
		t.Fatal("an older state woke a's waiters")
	default:
	}
	if got := h.cached("a"); got.Digest != "d2" {
		t.Errorf("cached state of a = %s, want d2", got.Digest)
	}
}
