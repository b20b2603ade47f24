// Package browser holds the dashboard's browser tests: a real `flotilla server` on SQLite, objects
// and agent reports written through the API (and, for what only the rollout runner writes, its
// store), and headless Chromium (Debian's chromium package) driven with chromedp.
//
// The tests need the chromium binary. When it is missing they fail under CI=true and are
// skipped otherwise, naming the package to install. `go test ./test/browser -update-screenshots`
// writes the pages' screenshots to docs/screenshots.
package browser
