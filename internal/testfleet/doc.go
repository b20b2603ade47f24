// Package testfleet gives tests a running local fleet of real Kubernetes clusters: the
// flotilla-devfleet program (built by `make fleet`) started once per test binary and shared by
// its tests, each of which works in namespaces of its own.
//
// A test that needs the fleet calls Get; the first call starts the fleet and every later call
// reuses it. TestMain must call Main so the fleet is stopped when the tests end. When the fleet
// cannot start, Get fails the test with the reason and the fleet's log; it skips only when the
// person running the tests opted out with FLOTILLA_TEST_NO_FLEET=1, and never in CI.
package testfleet
