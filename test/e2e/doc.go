// Package e2e holds Flotilla's end-to-end scenarios. They run on the local fleet of real
// Kubernetes clusters (see internal/testfleet) and talk to Flotilla only the way a user would.
package e2e
