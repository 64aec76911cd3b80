package cmd

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/seedfleet/seedfleet/internal/dirlock"
	"github.com/seedfleet/seedfleet/seednode/client"
)

// homeUse says whether a command may create the device home.
type homeUse int

const (
	// existingHome: the command reads or writes a home that must exist.
	// A mistyped --home would otherwise become a new device with a new key
	// and an empty replica, and the command would print nothing or a
	// misleading "no write capability".
	existingHome homeUse = iota
	// newHome: the command makes an identity (key create, vault create,
	// agent init, device pair) and creates the home on first use.
	newHome
)

// openHome opens --home for cmd, held in cmd's name while it runs.
func openHome(cmd *cobra.Command, g *globals, use homeUse) (*client.Home, error) {
	opts := []client.OpenOption{client.HeldBy(holderKind(cmd))}
	if use == existingHome {
		opts = append(opts, client.MustExist())
	}
	h, err := client.Open(g.home, opts...)
	if errors.Is(err, client.ErrNoHome) {
		return nil, fmt.Errorf("%w: check --home (or SEEDFLEET_HOME); to make a new device here, run `seedfleet key create --home %s` (vault create, agent init and device pair create a home too)", err, g.home)
	}
	if held, ok := errors.AsType[*dirlock.HeldError](err); ok {
		return nil, fmt.Errorf("device home %s is in use by %s: one command at a time uses a home; wait for it or stop it (Ctrl-C where it runs, or kill %d), or use another --home", g.home, held.Holder(), held.PID)
	}
	if err != nil {
		return nil, fmt.Errorf("open device home %s: %w", g.home, err)
	}
	return h, nil
}

// holderKind names a command in another command's "in use by" message:
// its path, and --live when set (a live sync holds a home until stopped).
// Arguments are left out: a ticket may carry a write key.
func holderKind(cmd *cobra.Command) string {
	kind := cmd.CommandPath()
	if f := cmd.Flags().Lookup("live"); f != nil && f.Changed {
		kind += " --live"
	}
	return kind
}

// withHome is a RunE that opens the existing device home, runs run with it
// and closes it.
func withHome(g *globals, run func(cmd *cobra.Command, args []string, h *client.Home) error) func(*cobra.Command, []string) error {
	return withHomeFor(existingHome, g, run)
}

// withNewHome is withHome for the commands that may create the home.
func withNewHome(g *globals, run func(cmd *cobra.Command, args []string, h *client.Home) error) func(*cobra.Command, []string) error {
	return withHomeFor(newHome, g, run)
}

func withHomeFor(use homeUse, g *globals, run func(cmd *cobra.Command, args []string, h *client.Home) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		h, err := openHome(cmd, g, use)
		if err != nil {
			return err
		}
		defer h.Close()
		return run(cmd, args, h)
	}
}
