package capacity

import (
	"fmt"
	"slices"
	"strings"
)

// Cluster is one cluster's place in a router.
type Cluster struct {
	Name string
	// Weight is the cluster's weight now, 0 to 100 (relative to the
	// others: shares are weight / sum of weights).
	Weight int
	// Capacity is the largest share of the router's traffic, in percent,
	// that the cluster can carry (v1.ClusterTraffic.Capacity).
	Capacity int
}

// Result is the answer of Check.
type Result struct {
	OK bool
	// Reason says which cluster would be overloaded, and by how much, when
	// OK is false.
	Reason string
	// Shares are each cluster's share of the traffic after the drain, in
	// percent.
	Shares map[string]float64
}

// Check says whether draining the clusters in drain leaves the others
// able to carry the traffic: their weights are kept, so the drained
// clusters' traffic goes to the clusters still in rotation in proportion
// to their weights, and each of those must stay at or below its capacity.
// Draining every cluster that carries traffic is never OK.
func Check(clusters []Cluster, drain []string) Result {
	total, left := 0, 0
	for _, c := range clusters {
		total += max(c.Weight, 0)
		if !slices.Contains(drain, c.Name) {
			left += max(c.Weight, 0)
		}
	}
	res := Result{OK: true, Shares: map[string]float64{}}
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
		if slices.Contains(drain, c.Name) {
			res.Shares[c.Name] = 0
			continue
		}
		share := 100 * float64(max(c.Weight, 0)) / float64(left)
		res.Shares[c.Name] = share
		if share > float64(c.Capacity)+1e-9 {
			over = append(over, fmt.Sprintf("%s would carry %.0f%% of the traffic, its capacity is %d%%", c.Name, share, c.Capacity))
		}
	}
	if len(over) > 0 {
		res.OK = false
		res.Reason = "not enough capacity to drain " + strings.Join(drain, ", ") + ": " + strings.Join(over, "; ")
	}
	return res
}
