// Package demo runs Flotilla's demonstration on one machine: a control plane, a local fleet of
// real Kubernetes API servers with one agent each, a Git repository holding a sample application,
// a simulated user load whose error rate follows the release each cluster runs, and a Prometheus
// that scrapes it. It then cuts a good release that a canary rollout carries to every cluster, and
// a bad one that the canary's metric analysis stops and rolls back by itself, narrating each step.
//
// # Model
//
// Everything the demo starts is a real part run the way a user would run it: `flotilla server`
// and `flotilla agent` are child processes of the same binary, the fleet is the devfleet program
// (internal/localfleet), Prometheus is the system's binary. The sample application's behaviour is
// data: each release carries a ConfigMap whose errorRate the load simulator reads from the cluster
// itself, so the metric changes only when an agent has applied the release there.
//
// # Invariants
//
//   - Every child process runs in its own process group and dies with the demo (Pdeathsig);
//     Run stops them all, in reverse order of start, before it returns.
//   - The demo's state lives under Options.Dir, cleared at start, so each run begins fresh.
//   - Run returns an error only for a failure to set up or, with ExitAfterScenario, a scenario
//     whose outcome differs from the expected one (the good release everywhere, the bad one
//     rolled back and never outside the canary wave).
package demo
