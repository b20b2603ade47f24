// Package traffic sets how users' requests are split across clusters: the
// weights of one service's backends in a traffic router (an HAProxy
// backend, a Gateway API HTTPRoute, or a webhook in front of another load
// balancer).
//
// # Model
//
// A TrafficRouter object says where the router is; each Cluster names its
// backend in that router in spec.traffic (with a capacity). The rollout
// engine speaks in percent, 0 to 100 per cluster; a Provider speaks in its
// own scale (HAProxy's server weights go to 256, the Gateway API and the
// webhook use 100), and shares are relative to the sum of the weights.
//
// Manager.SetWeights resolves the router and each cluster's backend from
// the store, scales the percentages to the provider, sets them, reads them
// back and returns the weights in force, in percent. A change either
// completes and reads back as asked, or returns an error naming the router
// and the backend (unreachable router, unknown backend, a change refused
// or not in force); the caller (the rollout runner) pauses the rollout with
// that reason rather than carry on. After each attempt the router's
// status records the weights read back, or the reason of the failure.
//
// capacity.Check is the check made before draining: with weights
// redistributed in proportion to the weights left, every cluster still in
// rotation must stay within its declared capacity, the largest share of
// the router's traffic (in percent) it can carry.
//
// # Invariants
//
//   - Nothing is sent to a router before every cluster of the change has
//     a backend there and every weight is in range.
//   - Providers raise weights before lowering others, so a switch never
//     passes through a moment with no backend in rotation.
//   - Providers are cached per router and resource version: an edited
//     TrafficRouter takes effect on the next change.
//
// Each provider lives in a subpackage named after what it drives
// (haproxy, gatewayapi, webhook); providertest is the conformance suite
// their tests run against a real router.
package traffic
