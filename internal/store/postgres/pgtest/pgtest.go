// Package pgtest gives tests a fresh PostgreSQL database of their own.
//
// The server is named by FLOTILLA_TEST_POSTGRES (a postgres:// URL; default
// postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable). Each call
// creates a database with a random name and drops it when the test ends, so
// concurrent test runs never collide. If the server cannot be reached the
// test fails, unless FLOTILLA_TEST_SKIP_POSTGRES=1, which skips it instead;
// with CI=true the skip variable is ignored, so CI never silently skips.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultDSN is the server tests use when FLOTILLA_TEST_POSTGRES is unset.
const DefaultDSN = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// ServerDSN returns the DSN of the test server.
func ServerDSN() string {
	if dsn := os.Getenv("FLOTILLA_TEST_POSTGRES"); dsn != "" {
		return dsn
	}
	return DefaultDSN
}

// NewDatabase creates an empty database for t and returns its DSN; the
// database is dropped (forcibly) when t ends.
func NewDatabase(t testing.TB) string {
	t.Helper()
	server := ServerDSN()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, server)
	if err != nil {
		unreachable(t, server, err)
	}
	defer conn.Close(context.Background())
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "flotilla_test_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("postgres test server %s: create database %s: %v", redact(server), name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, server)
		if err != nil {
			t.Errorf("drop database %s: %v", name, err)
			return
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	if u, err := url.Parse(server); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		u.Path = "/" + name
		return u.String()
	}
	// key=value form: append the database; a later key wins.
	return server + " dbname=" + name
}

func unreachable(t testing.TB, server string, err error) {
	t.Helper()
	msg := "PostgreSQL test server " + redact(server) + " is unreachable: " + err.Error() +
		" (set FLOTILLA_TEST_POSTGRES to a reachable server, or FLOTILLA_TEST_SKIP_POSTGRES=1 to skip outside CI)"
	if os.Getenv("FLOTILLA_TEST_SKIP_POSTGRES") == "1" && os.Getenv("CI") != "true" {
		t.Skip("FLOTILLA_TEST_SKIP_POSTGRES=1: " + msg)
	}
	if os.Getenv("CI") == "true" {
		msg += "; CI=true, so FLOTILLA_TEST_SKIP_POSTGRES is ignored"
	}
	t.Fatal(msg)
}

// redact hides a password in a URL DSN.
func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.User == nil {
		return dsn
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}
