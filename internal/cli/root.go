// Package cli implements the setpoint command line: the server (serve) and
// the client verbs (apply, get, delete) that talk to any Setpoint or
// Kubernetes API server through its HTTP API.
package cli

import (
	"io"

	"github.com/spf13/cobra"
)

// Env is what a command may touch of the process it runs in. Commands read
// and write only through it, so tests can run them in-process.
type Env struct {
	// In is standard input ("-f -" reads manifests from it).
	In io.Reader
	// Out receives command output.
	Out io.Writer
	// ErrOut receives diagnostics and the serve banner.
	ErrOut io.Writer
	// Getenv looks up environment variables (os.Getenv in main).
	Getenv func(string) string
}

// NewRootCommand returns the setpoint command with every verb attached.
// Errors are returned by Execute, not printed; see FormatError.
func NewRootCommand(env Env) *cobra.Command {
	root := &cobra.Command{
		Use:   "setpoint",
		Short: "Setpoint is a declarative control plane: a Kubernetes-compatible API server on embedded storage",
		Long: `Setpoint is a declarative control plane: a Kubernetes-compatible API server
for CustomResourceDefinitions and custom resources, stored in embedded SQLite.

Start a server with "setpoint serve", then use kubectl or the client verbs
of this binary (apply, get, delete) against it.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(env.In)
	root.SetOut(env.Out)
	root.SetErr(env.ErrOut)

	root.AddCommand(
		newServeCommand(env),
		newApplyCommand(env),
		newGetCommand(env),
		newDeleteCommand(env),
		newTokenCommand(env),
	)
	return root
}
