package cli

import (
	"github.com/spf13/cobra"

	"flotilla.dev/flotilla/internal/cli/agentcmd"
)

// newAgentCmd is `flotilla agent`; the command itself is in package agentcmd, shared with the
// agent-only binary cmd/flotilla-agent.
func newAgentCmd(g *globals) *cobra.Command {
	cmd := agentcmd.New(agentcmd.Options{Server: &g.server, Token: &g.token, Err: g.streams.Err})
	// Errors and usage are the root command's to print, as for every other command.
	cmd.SilenceUsage, cmd.SilenceErrors = false, false
	return cmd
}
