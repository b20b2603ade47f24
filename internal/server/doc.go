// Package server is Flotilla's HTTP API: REST and JSON under /api/v1 for every object kind, batch
// apply, the audit trail, a Server-Sent Events watch, API tokens, health, readiness, metrics and
// the OpenAPI document.
//
// Invariants:
//   - Every route is declared once, in the route table (routes.go), with the access rule it needs;
//     building the handler panics on a route without a complete rule, and the OpenAPI document is
//     generated from the same table.
//   - Every error reaches the client through one function (writeError in errors.go), which maps it
//     to an HTTP code and a v1.Status body.
//   - Handlers never write to the store without passing the authenticated principal as the actor,
//     so every change is attributed in the event log.
//   - Watch streams end when the server shuts down; ordinary requests are finished first.
//
// The package logs only in its request-logging middleware, with the *slog.Logger it is given.
package server
