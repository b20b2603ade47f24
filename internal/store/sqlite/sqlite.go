package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"net/url"
	"runtime"

	"modernc.org/sqlite"

	"flotilla.dev/flotilla/internal/store/sqlstore"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Options tune Open; zero values take defaults.
type Options struct {
	// BusyTimeoutMillis is how long a write waits for another process's
	// write lock; default 10000.
	BusyTimeoutMillis int
	// ReadConns is the size of the read pool; default max(4, GOMAXPROCS).
	ReadConns int
	// Store passes options to the store itself.
	Store sqlstore.Options
}

// Open opens (creating if needed) the SQLite database at path, migrates it
// and returns the store.
func Open(ctx context.Context, path string, opts Options) (*sqlstore.Store, error) {
	if path == "" {
		return nil, fmt.Errorf("open sqlite: empty path")
	}
	if opts.BusyTimeoutMillis <= 0 {
		opts.BusyTimeoutMillis = 10000
	}
	if opts.ReadConns <= 0 {
		opts.ReadConns = max(4, runtime.GOMAXPROCS(0))
	}
	dsn := func(txlock string) string {
		q := url.Values{}
		q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", opts.BusyTimeoutMillis))
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "synchronous(NORMAL)")
		q.Add("_pragma", "foreign_keys(1)")
		q.Set("_txlock", txlock)
		return "file:" + path + "?" + q.Encode()
	}
	w, err := sql.Open("sqlite", dsn("immediate"))
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	b := &backend{w: w}
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	// Create the schema before the read pool opens, so WAL mode is set.
	ms, err := sqlstore.LoadMigrations(migrationFiles, "migrations")
	if err == nil {
		err = sqlstore.Migrate(ctx, b.Write, ms)
	}
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	r, err := sql.Open("sqlite", dsn("deferred"))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	r.SetMaxOpenConns(opts.ReadConns)
	r.SetMaxIdleConns(opts.ReadConns)
	b.r = r
	return sqlstore.New(b, opts.Store), nil
}

// backend adapts database/sql on modernc.org/sqlite to sqlstore.Backend.
type backend struct {
	w *sql.DB // one connection, BEGIN IMMEDIATE
	r *sql.DB // readers
}

var _ sqlstore.Backend = (*backend)(nil)

func (b *backend) Write(ctx context.Context, fn func(ctx context.Context, q sqlstore.Querier) error) error {
	return runTx(ctx, b.w, nil, fn)
}

func (b *backend) Read(ctx context.Context, fn func(ctx context.Context, q sqlstore.Querier) error) error {
	return runTx(ctx, b.r, nil, fn)
}

func runTx(ctx context.Context, db *sql.DB, opts *sql.TxOptions, fn func(ctx context.Context, q sqlstore.Querier) error) (err error) {
	tx, err := db.BeginTx(ctx, opts)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() {
		if p := recover(); p != nil {
			_ = tx.Rollback()
			panic(p)
		}
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if err = fn(ctx, querier{tx}); err != nil {
		return err
	}
	if err = tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

func (b *backend) Querier() sqlstore.Querier { return querier{b.r} }

// SQLite extended result codes for unique and primary-key violations.
const (
	sqliteConstraintPrimaryKey = 1555
	sqliteConstraintUnique     = 2067
)

func (b *backend) IsUniqueViolation(err error) bool {
	var e *sqlite.Error
	if errors.As(err, &e) {
		return e.Code() == sqliteConstraintPrimaryKey || e.Code() == sqliteConstraintUnique
	}
	return false
}

func (b *backend) IsNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }

func (b *backend) Ping(ctx context.Context) error {
	if err := b.r.PingContext(ctx); err != nil {
		return fmt.Errorf("ping sqlite: %w", err)
	}
	return nil
}

func (b *backend) Close() error {
	return errors.Join(b.r.Close(), b.w.Close())
}

// execQuerier is what *sql.DB and *sql.Tx share.
type execQuerier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

type querier struct{ db execQuerier }

func (q querier) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := q.db.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (q querier) Query(ctx context.Context, query string, args ...any) (sqlstore.Rows, error) {
	rows, err := q.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return sqlRows{rows}, nil
}

func (q querier) QueryRow(ctx context.Context, query string, args ...any) sqlstore.Row {
	return q.db.QueryRowContext(ctx, query, args...)
}

type sqlRows struct{ *sql.Rows }

func (r sqlRows) Close() { _ = r.Rows.Close() }
