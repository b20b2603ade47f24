// Package haproxy is a small client of HAProxy's runtime API (the stats
// socket, unix or TCP) and the traffic provider built on it.
//
// # Protocol
//
// The runtime API is a line protocol. In its non-interactive mode, the one
// used here, a client connects, sends one command and a newline, and reads
// the answer until HAProxy closes the connection. Commands that change
// something answer with an empty line on success and a line of text
// otherwise ("No such server.", "Permission denied", "Absolute weight can
// only be between 0 and 256 inclusive."), so any non-empty answer is an
// error (ErrUnexpectedAnswer) carrying HAProxy's text. `show servers state
// <backend>` answers a format version ("1"), a "# " header naming the
// columns, and one line per server; columns are looked up by name.
//
// # Weights and states
//
// A server's user weight is absolute, 0 to 256, and shares are relative to
// the sum of the backend's weights. Router.SetWeights maps weight 0 to
// "drain" (no new requests, in-flight ones finish) with weight 0, and a
// positive weight to that weight with the server ready. It raises before
// it lowers, so a switch never leaves the backend without a usable server,
// and it checks every server exists before it changes anything.
// A server in maintenance stays there: weight 0 only changes its weight
// ("state drain" would end the maintenance), a positive weight is refused.
// Router.Weights reads the effective weight back: 0 while a server drains
// or is in maintenance.
//
// # Invariants
//
//   - Names sent to HAProxy are validated (v1.IsHAProxyName), and Exec
//     refuses multi-line commands and ';', so no input can add a command.
//   - Every command is bounded by ctx and Client.Timeout; answers by 4 MiB.
package haproxy
