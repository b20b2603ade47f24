// Package storetest is the conformance suite every store.Store must pass.
// An implementation's test calls Run with a function that opens a fresh,
// empty store per subtest (the suite closes it). The suite runs each
// subtest sequentially; several of them start many goroutines of their own,
// so run it with -race.
package storetest
