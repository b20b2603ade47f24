// Package client is the typed Go client of Flotilla's REST API. The CLI, the cluster agent and the
// tests talk to the control plane only through it, exactly as a user would.
//
// Every non-2xx answer becomes an *APIError carrying the server's v1.Status; IsNotFound,
// IsConflict, IsForbidden and the other helpers classify it. Watch consumes the Server-Sent Events
// stream and, when the connection drops, resumes after the last event it delivered, so a caller
// sees every event once and in order.
package client
