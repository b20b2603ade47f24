package capacity_test

import (
	"testing"

	"flotilla.dev/flotilla/internal/traffic/capacity"
)

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name     string
		clusters []capacity.Cluster
		drain    []string
		ok       bool
	}{
		{"defaults carry everything", []capacity.Cluster{{"a", 50, 100}, {"b", 50, 100}}, []string{"a"}, true},
		{"exactly at capacity", []capacity.Cluster{{"a", 50, 100}, {"b", 25, 50}, {"c", 25, 50}}, []string{"a"}, true},
		{"one over", []capacity.Cluster{{"a", 50, 100}, {"b", 30, 50}, {"c", 20, 50}}, []string{"a"}, false},
		{"last one", []capacity.Cluster{{"a", 100, 100}, {"b", 0, 100}}, []string{"a"}, false},
		{"nothing carries traffic", []capacity.Cluster{{"a", 0, 10}, {"b", 0, 10}}, []string{"a"}, true},
		{"already drained", []capacity.Cluster{{"a", 0, 10}, {"b", 100, 100}}, []string{"a"}, true},
	} {
		res := capacity.Check(tc.clusters, tc.drain)
		if res.OK != tc.ok || (!res.OK && res.Reason == "") {
			t.Errorf("%s: %+v, want OK %v", tc.name, res, tc.ok)
		}
	}
}
