//go:build !cgo

package cmd

import (
	"github.com/spf13/cobra"

	"github.com/seedfleet/seedfleet/seednode/state"
)

// newStateCmd, in a build without cgo, only says what the commands need.
func newStateCmd(*globals) *cobra.Command {
	return &cobra.Command{
		Use:                "state",
		Short:              "Read and change the agent's state (needs a build with cgo)",
		DisableFlagParsing: true,
		RunE:               func(*cobra.Command, []string) error { return state.ErrNeedsCgo },
	}
}
