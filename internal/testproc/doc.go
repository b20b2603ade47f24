// Package testproc builds Flotilla's commands and runs them as subprocesses of a test: the
// end-to-end and browser tests run the product as a user would, as its own processes.
//
// # Model
//
// It is for tests only. Build compiles a package once per package path per test binary, into a
// temporary directory, however many tests ask for it. Start runs a binary until the test that
// started it ends: its output is kept (and logged when the test failed), it is stopped with
// SIGTERM in t.Cleanup (and killed if it has not ended 20 s later), and it is killed when the
// test binary dies (Linux's parent-death signal), so no process outlives its test.
//
// StartServer runs `flotilla server` listening on a port the kernel chose (127.0.0.1:0) and
// learns the address from the server's log line "flotilla server listening", so it needs the
// server's log level at info or lower; it returns the URL, the first admin token (from
// --admin-token-file) and an admin client.
package testproc
