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
// write's result, or an error if the transaction as a whole failed; a
// failed commit is reported as every successful write's result.
//
// Statements whose results a write does not need (its final inserts and
// updates) are not sent at once: they wait in a pipeline and go out with
// the next read, or with the batch's last statement. A batch of creates
// thus costs one round trip plus the commit. An error from a deferred
// statement cannot be pinned on one write, so it breaks the batch and
// runBatch runs every write again on its own.
func (b *backend) tryBatch(ctx context.Context, batch []*writeReq) ([]error, error) {
	tx, err := b.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	fail := func(err error) ([]error, error) {
		_ = tx.Rollback(context.WithoutCancel(ctx))
		return nil, err
	}
	// Take the sequence lock once; writes then number their events in
	// memory and the final value is stored just before commit.
	var start int64
	if err := tx.QueryRow(ctx, `SELECT value FROM flotilla_seq WHERE id = 1 FOR UPDATE`).Scan(&start); err != nil {
		return fail(fmt.Errorf("lock sequence: %w", err))
	}
	p := &pipeline{tx: tx}
	seq := start
	results := make([]error, len(batch))
	for i, r := range batch {
		before := seq
		q := &batchQuerier{p: p, seq: &seq, start: -1}
		p.cur = q
		err := runGuarded(ctx, r.fn, q)
		p.cur = nil
		if p.broken != nil {
			return fail(p.broken)
		}
		if err == nil {
			continue
		}
		results[i] = err
		seq = before
		switch {
		case q.start < 0:
			// It wrote nothing.
		case q.savepointSent:
			p.queue(sqlstore.Stmt{SQL: "ROLLBACK TO SAVEPOINT w"})
		default:
			p.pending = p.pending[:q.start-p.sent] // its writes never left
		}
	}
	if seq != start {
		p.queue(sqlstore.Stmt{SQL: `UPDATE flotilla_seq SET value = $1 WHERE id = 1`, Args: []any{seq}})
	}
	if err := p.flush(ctx); err != nil {
		return fail(err)
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

// pipeline holds statements of a batch transaction not sent yet.
type pipeline struct {
	tx      pgx.Tx
	pending []sqlstore.Stmt
	sent    int           // statements sent so far
	broken  error         // set once a statement failed: the transaction is aborted
	cur     *batchQuerier // the write running now
}

func (p *pipeline) queue(stmts ...sqlstore.Stmt) { p.pending = append(p.pending, stmts...) }

// send sends the pending statements and then last (if any) in one round
// trip, checks the pending ones, and returns the results positioned at
// last's; the caller closes them. Without last it closes them itself.
func (p *pipeline) send(ctx context.Context, last *sqlstore.Stmt) (pgx.BatchResults, error) {
	if p.broken != nil {
		return nil, p.broken
	}
	if len(p.pending) == 0 && last == nil {
		return nil, nil
	}
	if c := p.cur; c != nil && c.start >= 0 && !c.savepointSent {
		// The running write's own writes are about to leave while it may
		// still fail: put a savepoint in front of them.
		at := c.start - p.sent
		p.pending = append(p.pending[:at], append([]sqlstore.Stmt{{SQL: "SAVEPOINT w"}}, p.pending[at:]...)...)
		c.savepointSent = true
	}
	var batch pgx.Batch
	for _, st := range p.pending {
		batch.Queue(st.SQL, st.Args...)
	}
	if last != nil {
		batch.Queue(last.SQL, last.Args...)
	}
	n := len(p.pending)
	p.pending = p.pending[:0]
	p.sent += batch.Len()
	br := p.tx.SendBatch(ctx, &batch)
	for range n {
		if _, err := br.Exec(); err != nil {
			_ = br.Close()
			p.broken = fmt.Errorf("batched write: %w", err)
			return nil, p.broken
		}
	}
	if last == nil {
		if err := br.Close(); err != nil {
			p.broken = fmt.Errorf("batched write: %w", err)
			return nil, p.broken
		}
		return nil, nil
	}
	return br, nil
}

func (p *pipeline) flush(ctx context.Context) error {
	_, err := p.send(ctx, nil)
	return err
}

// batchQuerier is one write's view of the batch: reads go out at once
// (with whatever is pending), writes wait in the pipeline. A write whose
// statements are all still pending when it fails is undone by dropping
// them; only when a read of the same write sends them early does a
// "SAVEPOINT w" go in front of them, to roll back to. Single-object writes
// queue their statements last, so they need no savepoint at all.
type batchQuerier struct {
	p             *pipeline
	seq           *int64 // the batch's event sequence, see sqlstore.SeqCounter
	start         int    // position of its first statement among all, -1 if none
	savepointSent bool
}

// Seq implements sqlstore.SeqCounter.
func (q *batchQuerier) Seq() int64 { return *q.seq }

// SetSeq implements sqlstore.SeqCounter.
func (q *batchQuerier) SetSeq(v int64) { *q.seq = v }

// ExecAll implements sqlstore.Pipeliner by deferring stmts.
func (q *batchQuerier) ExecAll(_ context.Context, stmts []sqlstore.Stmt) error {
	if q.p.broken != nil {
		return q.p.broken
	}
	if q.start < 0 && len(stmts) > 0 {
		q.start = q.p.sent + len(q.p.pending)
	}
	q.p.queue(stmts...)
	return nil
}

func (q *batchQuerier) Exec(ctx context.Context, sql string, args ...any) (int64, error) {
	if q.p.broken != nil {
		return 0, q.p.broken
	}
	if q.start < 0 {
		q.start = q.p.sent + len(q.p.pending)
	}
	// Sent as the last statement, after the savepoint send inserts.
	br, err := q.p.send(ctx, &sqlstore.Stmt{SQL: sql, Args: args})
	if err != nil {
		return 0, err
	}
	tag, err := br.Exec()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		q.p.broken = fmt.Errorf("batched write: %w", err)
		return 0, q.p.broken
	}
	return tag.RowsAffected(), nil
}

func (q *batchQuerier) Query(ctx context.Context, sql string, args ...any) (sqlstore.Rows, error) {
	br, err := q.p.send(ctx, &sqlstore.Stmt{SQL: sql, Args: args})
	if err != nil {
		return nil, err
	}
	rows, err := br.Query()
	if err != nil {
		_ = br.Close()
		q.p.broken = fmt.Errorf("batched read: %w", err)
		return nil, q.p.broken
	}
	return &batchRows{Rows: rows, br: br}, nil
}

func (q *batchQuerier) QueryRow(ctx context.Context, sql string, args ...any) sqlstore.Row {
	br, err := q.p.send(ctx, &sqlstore.Stmt{SQL: sql, Args: args})
	if err != nil {
		return errRow{err}
	}
	return &batchRow{br: br, p: q.p}
}

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

type batchRows struct {
	pgx.Rows
	br pgx.BatchResults
}

func (r *batchRows) Close() {
	r.Rows.Close()
	_ = r.br.Close()
}

type batchRow struct {
	br pgx.BatchResults
	p  *pipeline
}

// Scan reads the row; "no rows" is an answer, any other error aborted the
// transaction and breaks the batch.
func (r *batchRow) Scan(dest ...any) error {
	err := r.br.QueryRow().Scan(dest...)
	if cerr := r.br.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		r.p.broken = fmt.Errorf("batched read: %w", err)
		return r.p.broken
	}
	return err
}

// sendBatch pipelines stmts and returns the first error.
func sendBatch(ctx context.Context, db interface {
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}, stmts []sqlstore.Stmt) error {
	var batch pgx.Batch
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
	return sendBatch(ctx, db, stmts)
}
