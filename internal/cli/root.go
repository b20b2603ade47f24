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
	g := &globals{streams: s}
	pf := root.PersistentFlags()
	pf.StringVar(&g.server, "server", "", "control plane URL (default: the context's server; env "+EnvServer+")")
	pf.StringVar(&g.token, "token", "", "API token (default: the context's token; env "+EnvToken+")")
	pf.StringVar(&g.context, "context", "", "context of the config file to use (default: its current context; env "+EnvContext+")")
	root.AddCommand(
		newVersionCmd(s),
		newServerCmd(s),
		newLoginCmd(g),
		newApplyCmd(g),
		newGetCmd(g),
		newDescribeCmd(g),
		newDeleteCmd(g),
		newAuditCmd(g),
		newTokenCmd(g),
		newClusterCmd(g),
		newAgentCmd(g),
		newWhoAmICmd(g),
		newRolloutCmd(g),
		newReleaseCmd(g),
		newServiceCmd(g),
		newCompletionCmd(s),
		newDemoCmd(s),
	)
	return root
}
