// Package localfleet starts and stops the local fleet: the flotilla-devfleet program (built by
// `make fleet` from the devfleet module) running N real Kubernetes API servers in one process.
//
// Start runs the program in its own process group, waits for the fleet.json it writes when every
// cluster is ready, and returns a Fleet with a client per cluster. The process is killed when the
// starting process dies (Pdeathsig), so a crashed test or demo never leaves a fleet behind; Stop
// ends it with SIGTERM and waits. The test harness (internal/testfleet) and `flotilla demo` both
// use it.
package localfleet
