// Package fleet runs several independent, real Kubernetes clusters inside one process for
// Flotilla's demo and tests: one embedded etcd shared by all clusters (each under its own key
// prefix) and, per cluster, a kube-apiserver, kube-controller-manager, kube-scheduler and a KWOK
// controller that simulates one node, so Deployments become Available with no container runtime.
//
// Invariants: every listening port is chosen at run time on 127.0.0.1; every certificate is made
// at start-up; clusters share nothing but the etcd process, so an object created in one cluster is
// never visible in another. Start returns only when every cluster serves /readyz, its node is
// Ready and the default service account exists; cancelling the context stops every component.
//
// Several Kubernetes components in one process trip over process-wide registries (configz,
// informer names, signal handlers); the workarounds are in components.go and pin this module to
// Kubernetes v1.36.
package fleet
