package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newCompletionCmd(s Streams) *cobra.Command {
	return &cobra.Command{
		Use:   "completion bash|zsh|fish",
		Short: "Print a shell completion script",
		Long: `Print a completion script for the shell. Kinds, object names (from the server) and flag values
complete.

  bash: source <(flotilla completion bash)
  zsh:  flotilla completion zsh > "${fpath[1]}/_flotilla"
  fish: flotilla completion fish > ~/.config/fish/completions/flotilla.fish`,
		Args:      cobra.ExactArgs(1),
		ValidArgs: []string{"bash", "zsh", "fish"},
		RunE: func(cmd *cobra.Command, args []string) error {
			root := cmd.Root()
			switch args[0] {
			case "bash":
				return root.GenBashCompletionV2(s.Out, true)
			case "zsh":
				return root.GenZshCompletion(s.Out)
			case "fish":
				return root.GenFishCompletion(s.Out, true)
			}
			return fmt.Errorf("shell %q: want bash, zsh or fish", args[0])
		},
	}
}
