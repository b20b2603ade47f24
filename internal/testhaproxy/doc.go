// Package testhaproxy gives tests a real HAProxy (Debian's haproxy package)
// on loopback, and tools to measure what it does: small HTTP backends that
// answer with their name and a load generator that counts who answered.
//
// Start writes a configuration into a temporary directory (one HTTP
// frontend, one backend with a server per Server, no health checks so a
// server's weight and admin state alone decide its traffic), starts
// `haproxy -db` with an admin-level runtime API on a unix socket and on a
// loopback TCP port, and stops it when the test ends. Ports are chosen at
// run time. Without the binary a test is skipped with the install command,
// or fails when CI=true, because CI installs it.
//
// Load sends requests through HAProxy from a few workers until stopped and
// records, for each request, when it started and who answered it (or the
// error), so a test can count the answers to requests started after a
// change took effect.
package testhaproxy
