package sqlstore

import "context"

// Querier runs SQL inside a transaction or on a connection.
type Querier interface {
	// Exec runs a statement and returns the number of rows it affected.
	Exec(ctx context.Context, query string, args ...any) (int64, error)
	// Query runs a statement that returns rows; the caller closes them.
	Query(ctx context.Context, query string, args ...any) (Rows, error)
	// QueryRow runs a statement that returns at most one row; Scan reports
	// ErrNoRows (as the backend's own error, see Backend.IsNoRows) when
	// there is none.
	QueryRow(ctx context.Context, query string, args ...any) Row
}

// Stmt is one statement with its arguments.
type Stmt struct {
	SQL  string
	Args []any
}

// Pipeliner is implemented by queriers that can send several statements in
// one round trip; they stop at the first failing statement and return its
// error.
type Pipeliner interface {
	ExecAll(ctx context.Context, stmts []Stmt) error
}

// execAll runs stmts in order, in one round trip where q can pipeline.
func execAll(ctx context.Context, q Querier, stmts ...Stmt) error {
	if p, ok := q.(Pipeliner); ok {
		return p.ExecAll(ctx, stmts)
	}
	for _, st := range stmts {
		if _, err := q.Exec(ctx, st.SQL, st.Args...); err != nil {
			return err
		}
	}
	return nil
}

// Rows is the cursor Query returns.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

// Row is the result of QueryRow.
type Row interface {
	Scan(dest ...any) error
}

// Backend is what a database must provide to host the store.
type Backend interface {
	// Write runs fn in a transaction that no other write overlaps once it
	// has taken the sequence row, and commits if fn returns nil.
	Write(ctx context.Context, fn func(ctx context.Context, q Querier) error) error
	// Read runs fn in a read-only transaction on one snapshot.
	Read(ctx context.Context, fn func(ctx context.Context, q Querier) error) error
	// Querier runs single statements outside a transaction.
	Querier() Querier
	// IsUniqueViolation reports whether err is a unique-key violation.
	IsUniqueViolation(err error) bool
	// IsNoRows reports whether err means QueryRow found no row.
	IsNoRows(err error) bool
	Ping(ctx context.Context) error
	Close() error
}
