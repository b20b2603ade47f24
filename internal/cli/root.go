package cli

import (
	"context"
	"errors"
	"io"

	"github.com/spf13/cobra"
)

// ExitError carries a process exit code through the command tree to main.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// ExitCode returns the exit code main should use for err: the code of an ExitError, else 1.
func ExitCode(err error) int {
	if ee, ok := errors.AsType[*ExitError](err); ok {
		return ee.Code
	}
	return 1
}

// Streams are the standard streams a command reads and writes; tests pass buffers.
type Streams struct {
	In       io.Reader
	Out, Err io.Writer
}

// Execute runs the flotilla command line with args (without the program name).
func Execute(ctx context.Context, args []string, in io.Reader, out, errOut io.Writer) error {
	root := NewRoot(Streams{In: in, Out: out, Err: errOut})
	root.SetArgs(args)
	return root.ExecuteContext(ctx)
}

// NewRoot builds the command tree.
func NewRoot(s Streams) *cobra.Command {
	root := &cobra.Command{
		Use:           "flotilla",
		Short:         "Ship a change to a fleet of Kubernetes clusters safely",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(s.In)
	root.SetOut(s.Out)
	root.SetErr(s.Err)
	root.AddCommand(newVersionCmd(s))
	return root
}
