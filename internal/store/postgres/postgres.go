package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"flotilla.dev/flotilla/internal/store/sqlstore"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// notifyChannel is the LISTEN/NOTIFY channel the events trigger uses.
const notifyChannel = "flotilla_events"

// migrationLockID is the advisory lock key migrations hold.
const migrationLockID = 0x666c6f7469 // "floti"

// Options tune Open; zero values take defaults.
type Options struct {
	// MaxConns is the pool size; default pgxpool's (max(4, CPUs)).
	MaxConns int32
	// Store passes options to the store itself.
	Store sqlstore.Options
}

// Open connects to the database named by dsn (a postgres:// URL or a
// key=value string), migrates it and returns the store with its listener
// running; Close stops the listener.
func Open(ctx context.Context, dsn string, opts Options) (*sqlstore.Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres %s@%s/%s: %w", cfg.ConnConfig.User, cfg.ConnConfig.Host, cfg.ConnConfig.Database, err)
	}
	b := &backend{pool: pool, writes: make(chan *writeReq), stopped: make(chan struct{}),
		batcherDone: make(chan struct{})}
	go b.batcher(b.stopped)
	ms, err := sqlstore.LoadMigrations(migrationFiles, "migrations")
	if err == nil {
		err = sqlstore.Migrate(ctx, b.migrateTx, ms)
	}
	if err != nil {
		_ = b.Close()
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	s := sqlstore.New(b, opts.Store)
	lctx, cancel := context.WithCancel(context.Background())
	b.stopListen = cancel
	b.listenDone = make(chan struct{})
	ready := make(chan struct{})
	go b.listen(lctx, s.Wake, ready)
	select {
	case <-ready:
	case <-ctx.Done():
		_ = s.Close()
		return nil, fmt.Errorf("open postgres: start listener: %w", ctx.Err())
	case <-time.After(10 * time.Second):
		// The listener keeps retrying; WaitForEvent polls meanwhile.
	}
	return s, nil
}

// backend adapts pgxpool to sqlstore.Backend.
type backend struct {
	pool       *pgxpool.Pool
	stopListen context.CancelFunc
	listenDone chan struct{}
	closeOnce  sync.Once

	writes      chan *writeReq
	stopped     chan struct{} // closed when Close begins
	batcherDone chan struct{}
}

var _ sqlstore.Backend = (*backend)(nil)

func (b *backend) Read(ctx context.Context, fn func(ctx context.Context, q sqlstore.Querier) error) error {
	return b.runTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, fn)
}

func (b *backend) migrateTx(ctx context.Context, fn func(ctx context.Context, q sqlstore.Querier) error) error {
	return b.runTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(ctx context.Context, q sqlstore.Querier) error {
		if _, err := q.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrationLockID)); err != nil {
			return fmt.Errorf("lock migrations: %w", err)
		}
		return fn(ctx, q)
	})
}

func (b *backend) runTx(ctx context.Context, opts pgx.TxOptions, fn func(ctx context.Context, q sqlstore.Querier) error) (err error) {
	tx, err := b.pool.BeginTx(ctx, opts)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() {
		if p := recover(); p != nil {
			_ = tx.Rollback(context.WithoutCancel(ctx))
			panic(p)
		}
		if err != nil {
			_ = tx.Rollback(context.WithoutCancel(ctx))
		}
	}()
	if err = fn(ctx, querier{tx}); err != nil {
		return err
	}
	if err = tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

func (b *backend) Querier() sqlstore.Querier { return querier{b.pool} }

func (b *backend) IsUniqueViolation(err error) bool {
	var e *pgconn.PgError
	return errors.As(err, &e) && e.Code == "23505"
}

func (b *backend) IsNoRows(err error) bool { return errors.Is(err, pgx.ErrNoRows) }

func (b *backend) Ping(ctx context.Context) error {
	if err := b.pool.Ping(ctx); err != nil {
		return fmt.Errorf("ping postgres: %w", err)
	}
	return nil
}

func (b *backend) Close() error {
	b.closeOnce.Do(func() {
		close(b.stopped)
		<-b.batcherDone
		if b.stopListen != nil {
			b.stopListen()
			<-b.listenDone
		}
		b.pool.Close()
	})
	return nil
}

// listen keeps one connection LISTENing and calls wake on every
// notification, and after every (re)connect so that waiters re-check what
// they may have missed. It closes ready once listening the first time and
// ends when ctx is cancelled.
func (b *backend) listen(ctx context.Context, wake func(), ready chan struct{}) {
	defer close(b.listenDone)
	readyOnce := sync.OnceFunc(func() { close(ready) })
	for ctx.Err() == nil {
		conn, err := pgx.ConnectConfig(ctx, b.pool.Config().ConnConfig.Copy())
		if err == nil {
			_, err = conn.Exec(ctx, "LISTEN "+notifyChannel)
			if err == nil {
				readyOnce()
				wake()
				for err == nil {
					_, err = conn.WaitForNotification(ctx)
					if err == nil {
						wake()
					}
				}
			}
			conn.Close(context.Background())
		}
		wake()
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// pgxQuerier is what *pgxpool.Pool and pgx.Tx share.
type pgxQuerier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

type querier struct{ db pgxQuerier }

func (q querier) Exec(ctx context.Context, sql string, args ...any) (int64, error) {
	tag, err := q.db.Exec(ctx, sql, args...)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

func (q querier) Query(ctx context.Context, sql string, args ...any) (sqlstore.Rows, error) {
	rows, err := q.db.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return rows, nil
}

func (q querier) QueryRow(ctx context.Context, sql string, args ...any) sqlstore.Row {
	return q.db.QueryRow(ctx, sql, args...)
}
