package cli

import (
	"crypto/rand"
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/apiserver/pkg/authentication/user"

	"github.com/setpoint/setpoint/internal/authn"
)

func newTokenCommand(env Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Make bearer tokens for the --token-auth-file of setpoint serve",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newTokenCreateCommand(env))
	return cmd
}

func newTokenCreateCommand(env Env) *cobra.Command {
	var u user.DefaultInfo
	cmd := &cobra.Command{
		Use:   "create --user NAME [--groups G1,G2]",
		Short: "Print a new random token, and the line that lets it in",
		Long: `Print a new random bearer token (130 bits) on the first line of the output,
and on the second the line to append to the file of setpoint serve's
--token-auth-file, which holds only the token's SHA-256: the token itself is
shown once and kept nowhere. Give the token to its user, who sends it as
"Authorization: Bearer <token>" (kubectl --token, or token: in a kubeconfig).
Restart the server to read the file again.

File format: ` + authn.TokenFileFormat,
		Example: `  setpoint token create --user alice --groups dev,ops
  setpoint token create --user ci | { read token; read line; echo "$line" >> tokens; }`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if u.Name == "" {
				return newUsageError("setpoint token create --user alice", "--user is required")
			}
			if u.UID == "" {
				u.UID = rand.Text()
			}
			token := authn.NewToken()
			line, err := authn.TokenLine(token, &u)
			if err != nil {
				return newUsageError("setpoint token create --user alice --groups dev,ops", "cannot write this user in a token file: %v", err)
			}
			fmt.Fprintln(env.Out, token)
			fmt.Fprintln(env.Out, line)
			fmt.Fprintln(env.ErrOut, "The first line is the token: give it to "+u.Name+"; it is not stored and cannot be shown again.\n"+
				"Append the second line to the --token-auth-file and restart the server.")
			return nil
		},
	}
	cmd.Flags().StringVar(&u.Name, "user", "", "user name the token authenticates as")
	cmd.Flags().StringSliceVar(&u.Groups, "groups", nil, "groups of the user, comma-separated")
	cmd.Flags().StringVar(&u.UID, "uid", "", "user ID (default: a random one)")
	return cmd
}
