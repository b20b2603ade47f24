// Command flotilla-agent is the Flotilla cluster agent alone: `flotilla agent` without the server,
// the renderers and the other commands, for a smaller image and a smaller resident footprint.
// It takes the same flags; a leading "agent" argument is accepted, so the two binaries can run
// from the same install manifest. main only wires signals and turns an error into an exit code.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"flotilla.dev/flotilla/internal/cli/agentcmd"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	args := os.Args[1:]
	if len(args) > 0 && args[0] == "agent" {
		args = args[1:]
	}
	cmd := agentcmd.New(agentcmd.Options{Err: os.Stderr})
	cmd.Use = "flotilla-agent"
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}
