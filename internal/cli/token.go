package cli

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	v1 "flotilla.dev/flotilla/api/v1"
)

func newTokenCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Create, list and revoke API tokens (admin only)",
	}
	cmd.AddCommand(newTokenCreateCmd(g), newTokenListCmd(g), newTokenDeleteCmd(g))
	return cmd
}

func newTokenCreateCmd(g *globals) *cobra.Command {
	var (
		role    string
		expires time.Duration
	)
	cmd := &cobra.Command{
		Use:   "create NAME --role admin|deployer|viewer",
		Short: "Create an API token and print it once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := v1.TokenRequest{Name: args[0], Role: role}
			if expires < 0 {
				return fmt.Errorf("--expires %s: must not be negative", expires)
			}
			if expires > 0 {
				t := time.Now().Add(expires).UTC()
				req.ExpiresAt = &t
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			tok, err := c.CreateToken(cmd.Context(), req)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.streams.Err, "Token %q (id %s, role %s) created. It is shown only this once:\n", tok.Name, tok.ID, tok.Role)
			_, err = fmt.Fprintln(g.streams.Out, tok.Secret)
			return err
		},
	}
	cmd.Flags().StringVar(&role, "role", "", "role of the token: admin, deployer or viewer")
	cmd.Flags().DurationVar(&expires, "expires", 0, "lifetime of the token, e.g. 720h (0: never expires)")
	_ = cmd.MarkFlagRequired("role")
	_ = cmd.RegisterFlagCompletionFunc("role", cobra.FixedCompletions([]string{"admin", "deployer", "viewer"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func newTokenListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List API tokens (never their secrets)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			toks, err := c.Tokens(cmd.Context())
			if err != nil {
				return err
			}
			now := time.Now()
			tw := tabwriter.NewWriter(g.streams.Out, 0, 8, 3, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tROLE\tCREATED BY\tAGE\tEXPIRES")
			for _, t := range toks {
				exp := "never"
				if t.ExpiresAt != nil {
					exp = t.ExpiresAt.UTC().Format(time.RFC3339)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, t.Role, firstSet(t.CreatedBy, "<none>"), humanAge(now.Sub(t.CreatedAt)), exp)
			}
			return tw.Flush()
		},
	}
}

func newTokenDeleteCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "delete ID|NAME",
		Short: "Revoke an API token (by name: every token of that name); it stops working at once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			toks, err := c.Tokens(cmd.Context())
			if err != nil {
				return err
			}
			// A name can match several tokens: a person's single sign-on sessions (one per
			// `login --sso`) all bear their name, and revoking by name ends every one of them.
			var ids []string
			for _, t := range toks {
				if t.Name == args[0] {
					ids = append(ids, t.ID)
				}
			}
			if len(ids) == 0 {
				ids = []string{args[0]}
			}
			for _, id := range ids {
				if err := c.DeleteToken(cmd.Context(), id); err != nil {
					return err
				}
			}
			if len(ids) > 1 {
				_, err = fmt.Fprintf(g.streams.Out, "%d tokens named %s deleted\n", len(ids), args[0])
				return err
			}
			_, err = fmt.Fprintf(g.streams.Out, "token %s deleted\n", args[0])
			return err
		},
	}
}
