// Package version holds the build's version, stamped at link time by the Makefile.
package version

import "runtime/debug"

// Version is the release version, set with -ldflags "-X flotilla.dev/flotilla/internal/version.Version=...".
var Version = "dev"

// Commit is the source commit, set at link time like Version.
var Commit = ""

// String returns the version with the commit and the Go toolchain that built it.
func String() string {
	s := Version
	if Commit != "" {
		s += " (" + Commit + ")"
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		s += " " + bi.GoVersion
	}
	return s
}
