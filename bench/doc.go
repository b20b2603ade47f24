// Package bench holds Flotilla's end-to-end benchmarks: scripted runs against real processes
// (the local fleet, the server, agents) that print figures with `go test -bench`. Results, with
// the machine they ran on and the exact command, are kept in docs/performance.md.
package bench
