package cmd

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/seedfleet/seedfleet/internal/version"
)

// versionTemplate is what both `seedfleet version` and `seedfleet --version`
// print: one line, the same one, so scripts can read either.
const versionTemplate = "seedfleet {{.Version}}\n"

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the build's version (the same as --version)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "seedfleet %s\n", version.String())
			return err
		},
	}
}
