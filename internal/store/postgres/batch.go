package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"flotilla.dev/flotilla/internal/store/sqlstore"
)

// Group commit. Writes are serialised by the event-sequence row lock, which
// PostgreSQL holds until the commit is flushed to disk; one transaction per
// write would therefore cap throughput at one WAL flush per write. Instead
// one goroutine per store takes the writes that are waiting, runs them one
// after another in a single transaction, each under its own savepoint, and
// commits once. A write that fails is rolled back to its savepoint and gets
// its error; the others are unaffected. If the commit itself fails, every
// write of the batch gets that error and none is stored, so each caller
// still sees all or nothing.

// maxBatch bounds the writes per transaction; it stays under PostgreSQL's
// 64 cached subtransactions per backend.
const maxBatch = 32

// batchTimeout bounds one batch transaction.
const batchTimeout = 60 * time.Second

var errClosed = errors.New("store is closed")

type writeReq struct {
	ctx  context.Context
	fn   func(ctx context.Context, q sqlstore.Querier) error
	done chan error
}

// Write implements sqlstore.Backend by queueing fn for the batcher. Once
// queued, a write runs to its end even if ctx ends meanwhile, so the answer
// always tells whether it was stored.
func (b *backend) Write(ctx context.Context, fn func(ctx context.Context, q sqlstore.Querier) error) error {
	req := &writeReq{ctx: ctx, fn: fn, done: make(chan error, 1)}
	select {
	case b.writes <- req:
	case <-ctx.Done():
		return ctx.Err()
	case <-b.stopped:
		return errClosed
	}
	return <-req.done
}

// batcher runs queued writes until stop is closed; it owns the writes
// channel's receiving side.
func (b *backend) batcher(stop <-chan struct{}) {
	defer close(b.batcherDone)
	for {
		var first *writeReq
		select {
		case first = <-b.writes:
		case <-stop:
			b.drain()
			return
		}
		batch := []*writeReq{first}
	more:
		for len(batch) < maxBatch {
			select {
			case r := <-b.writes:
				batch = append(batch, r)
			default:
				break more
			}
		}
		b.runBatch(batch)
	}
}

// drain fails writes queued after the stop.
func (b *backend) drain() {
	for {
		select {
		case r := <-b.writes:
			r.done <- errClosed
		default:
			return
		}
	}
}

func (b *backend) runBatch(batch []*writeReq) {
	live := batch[:0]
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.done <- err
			continue
		}
		live = append(live, r)
	}
	switch len(live) {
	case 0:
		return
	case 1:
		r := live[0]
		r.done <- b.runTx(r.ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, r.fn)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
	defer cancel()
	results, err := b.tryBatch(ctx, live)
	if err != nil {
		// The batch transaction broke (not one write's failure): run each
		// write alone so that one bad write cannot fail the others.
		for _, r := range live {
			r.done <- b.runTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, r.fn)
		}
		return
	}
	for i, r := range live {
		r.done <- results[i]
	}
}

// tryBatch runs every write of batch in one transaction. It returns each
// write's result, or an error if the transaction as a whole failed before
// commit; a failed commit is reported as every successful write's result.
func (b *backend) tryBatch(ctx context.Context, batch []*writeReq) ([]error, error) {
	tx, err := b.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	// Take the sequence lock once; writes then number their events in
	// memory and the final value is stored just before commit.
	var start int64
	if err := tx.QueryRow(ctx, `SELECT value FROM flotilla_seq WHERE id = 1 FOR UPDATE`).Scan(&start); err != nil {
		_ = tx.Rollback(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("lock sequence: %w", err)
	}
	seq := start
	results := make([]error, len(batch))
	for i, r := range batch {
		before := seq
		q := &savepointQuerier{tx: tx, seq: &seq}
		err := runGuarded(ctx, r.fn, q)
		if err == nil {
			continue
		}
		results[i] = err
		seq = before
		if q.set {
			if _, rbErr := tx.Exec(ctx, "ROLLBACK TO SAVEPOINT w"); rbErr != nil {
				_ = tx.Rollback(context.WithoutCancel(ctx))
				return nil, fmt.Errorf("rollback to savepoint: %w", rbErr)
			}
		}
	}
	if seq != start {
		if _, err := tx.Exec(ctx, `UPDATE flotilla_seq SET value = $1 WHERE id = 1`, seq); err != nil {
			_ = tx.Rollback(context.WithoutCancel(ctx))
			return nil, fmt.Errorf("store sequence: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		for i := range results {
			if results[i] == nil {
				results[i] = fmt.Errorf("commit: %w", err)
			}
		}
	}
	return results, nil
}

// runGuarded turns a panic in fn into an error so the batch survives it.
func runGuarded(ctx context.Context, fn func(ctx context.Context, q sqlstore.Querier) error, q sqlstore.Querier) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("write panicked: %v", p)
		}
	}()
	return fn(ctx, q)
}

// savepointQuerier sends "SAVEPOINT w" in the same round trip as the first
// statement of a write, so a savepoint per write costs no extra round trip.
type savepointQuerier struct {
	tx  pgx.Tx
	set bool
	seq *int64 // the batch's event sequence, see sqlstore.SeqCounter
}

// Seq implements sqlstore.SeqCounter.
func (q *savepointQuerier) Seq() int64 { return *q.seq }

// SetSeq implements sqlstore.SeqCounter.
func (q *savepointQuerier) SetSeq(v int64) { *q.seq = v }

func (q *savepointQuerier) first(ctx context.Context, sql string, args []any) pgx.BatchResults {
	var batch pgx.Batch
	batch.Queue("SAVEPOINT w")
	batch.Queue(sql, args...)
	br := q.tx.SendBatch(ctx, &batch)
	q.set = true
	return br
}

func (q *savepointQuerier) Exec(ctx context.Context, sql string, args ...any) (int64, error) {
	if q.set {
		return querier{q.tx}.Exec(ctx, sql, args...)
	}
	br := q.first(ctx, sql, args)
	defer br.Close()
	if _, err := br.Exec(); err != nil {
		return 0, err
	}
	tag, err := br.Exec()
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), br.Close()
}

func (q *savepointQuerier) Query(ctx context.Context, sql string, args ...any) (sqlstore.Rows, error) {
	if q.set {
		return querier{q.tx}.Query(ctx, sql, args...)
	}
	br := q.first(ctx, sql, args)
	if _, err := br.Exec(); err != nil {
		br.Close()
		return nil, err
	}
	rows, err := br.Query()
	if err != nil {
		br.Close()
		return nil, err
	}
	return &batchRows{Rows: rows, br: br}, nil
}

func (q *savepointQuerier) QueryRow(ctx context.Context, sql string, args ...any) sqlstore.Row {
	if q.set {
		return querier{q.tx}.QueryRow(ctx, sql, args...)
	}
	br := q.first(ctx, sql, args)
	return &batchRow{br: br}
}

type batchRows struct {
	pgx.Rows
	br pgx.BatchResults
}

func (r *batchRows) Close() {
	r.Rows.Close()
	_ = r.br.Close()
}

type batchRow struct{ br pgx.BatchResults }

func (r *batchRow) Scan(dest ...any) error {
	defer r.br.Close()
	if _, err := r.br.Exec(); err != nil {
		return err
	}
	if err := r.br.QueryRow().Scan(dest...); err != nil {
		return err
	}
	return r.br.Close()
}

// sendBatch pipelines stmts and returns the first error.
func sendBatch(ctx context.Context, db interface {
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}, stmts []sqlstore.Stmt, withSavepoint bool) error {
	var batch pgx.Batch
	if withSavepoint {
		batch.Queue("SAVEPOINT w")
	}
	for _, st := range stmts {
		batch.Queue(st.SQL, st.Args...)
	}
	br := db.SendBatch(ctx, &batch)
	for range batch.Len() {
		if _, err := br.Exec(); err != nil {
			_ = br.Close()
			return err
		}
	}
	return br.Close()
}

// ExecAll implements sqlstore.Pipeliner.
func (q *savepointQuerier) ExecAll(ctx context.Context, stmts []sqlstore.Stmt) error {
	first := !q.set
	q.set = true
	return sendBatch(ctx, q.tx, stmts, first)
}

// ExecAll implements sqlstore.Pipeliner.
func (q querier) ExecAll(ctx context.Context, stmts []sqlstore.Stmt) error {
	db, ok := q.db.(interface {
		SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
	})
	if !ok {
		for _, st := range stmts {
			if _, err := q.Exec(ctx, st.SQL, st.Args...); err != nil {
				return err
			}
		}
		return nil
	}
	return sendBatch(ctx, db, stmts, false)
}
