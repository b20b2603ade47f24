// Package sqlite hosts the store on a SQLite file through modernc.org/sqlite
// (pure Go, no cgo). It is Flotilla's default database: a file next to the
// server.
//
// Model: two connection pools on one file in WAL mode. Writes go through a
// pool of exactly one connection whose transactions begin with BEGIN
// IMMEDIATE, so writers in this process queue in Go and writers in other
// processes wait on the busy timeout instead of failing. Reads use a
// separate pool and see a consistent snapshot per transaction while writes
// proceed. synchronous=NORMAL: a committed transaction survives a crash of
// the process; a power loss may drop the last commits but never corrupts the
// file.
package sqlite
