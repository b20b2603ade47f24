// Package capacity answers whether clusters can be drained: whether the
// clusters left in a traffic router's rotation can carry the traffic the
// drained ones carried, within their declared capacities. It is pure and
// has no dependencies, so the rollout engine can use it as well as the
// traffic manager.
//
// Weights are relative (a cluster's share is its weight over the sum of
// the weights); a drained cluster's traffic goes to the others in
// proportion to their weights, which is what a load balancer does when a
// server's weight drops to 0. A cluster's capacity is the largest share of
// the router's traffic, in percent, it can carry.
package capacity
