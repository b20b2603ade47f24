package traffic

import (
	"fmt"
	"slices"
	"strings"
)

// Capacity is one cluster's place in a router for the capacity check.
type Capacity struct {
	Cluster string
	// Weight is the cluster's weight now, 0 to 100 (relative to the
	// others: shares are weight / sum of weights).
	Weight int
	// Capacity is the largest share of the router's traffic, in percent,
	// that the cluster can carry (v1.ClusterTraffic.Capacity).
	Capacity int
}

// CapacityResult is the answer of HasCapacity.
type CapacityResult struct {
	OK bool
	// Reason says which cluster would be overloaded, and by how much, when
	// OK is false.
	Reason string
	// Shares are each cluster's share of the traffic after the drain, in
	// percent.
	Shares map[string]float64
}

// HasCapacity says whether draining the clusters in drain leaves the
// others able to carry the traffic: their weights are kept, so the drained
// clusters' traffic goes to the clusters still in rotation in proportion
// to their weights, and each of those must stay at or below its capacity.
// Draining every cluster that carries traffic is never OK.
func HasCapacity(clusters []Capacity, drain []string) CapacityResult {
	total, left := 0, 0
	for _, c := range clusters {
		total += max(c.Weight, 0)
		if !slices.Contains(drain, c.Cluster) {
			left += max(c.Weight, 0)
		}
	}
	res := CapacityResult{OK: true, Shares: map[string]float64{}}
	if total == 0 {
		// Nothing carries traffic, so draining moves nothing.
		return res
	}
	if left == 0 {
		res.OK = false
		res.Reason = fmt.Sprintf("draining %s would leave no cluster in rotation", strings.Join(drain, ", "))
		return res
	}
	var over []string
	for _, c := range clusters {
		if slices.Contains(drain, c.Cluster) {
			res.Shares[c.Cluster] = 0
			continue
		}
		share := 100 * float64(max(c.Weight, 0)) / float64(left)
		res.Shares[c.Cluster] = share
		if share > float64(c.Capacity)+1e-9 {
			over = append(over, fmt.Sprintf("%s would carry %.0f%% of the traffic, its capacity is %d%%", c.Cluster, share, c.Capacity))
		}
	}
	if len(over) > 0 {
		res.OK = false
		res.Reason = "not enough capacity to drain " + strings.Join(drain, ", ") + ": " + strings.Join(over, "; ")
	}
	return res
}
