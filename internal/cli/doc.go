// Package cli holds the flotilla command tree. Flags, environment variables and configuration
// files are read here and nowhere else; every subcommand turns them into an Options struct of the
// library it drives and talks to the control plane only through the client package.
package cli
