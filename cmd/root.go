// Package cmd is the seedfleet command line: the seed daemon and the device
// commands, one binary.
package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/seedfleet/seedfleet/internal/version"
	"github.com/seedfleet/seedfleet/seednode/config"
)

// exitInterrupted is the exit code of a command ended by Ctrl-C, as shells
// expect (128 + SIGINT).
const exitInterrupted = 130

// Execute runs the command line and returns the process exit code.
func Execute() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return report(os.Stderr, ctx, newRoot().ExecuteContext(ctx))
}

// report prints a command's error and returns its exit code. A command that
// was interrupted fails with whatever its transport said when the context
// ended ("stream reset", "connect: context canceled"): that is reported as
// an interruption, not as a fault of the peer.
func report(w io.Writer, ctx context.Context, err error) int {
	if err == nil {
		return 0
	}
	if ctx.Err() != nil || errors.Is(err, context.Canceled) {
		msg := "interrupted"
		if errors.Is(err, errResumable) {
			msg += " (run the same command again to resume: verified data is kept)"
		}
		fmt.Fprintln(w, msg)
		return exitInterrupted
	}
	fmt.Fprintln(w, "error:", err)
	return 1
}

// errResumable marks a failed transfer that a second run resumes.
var errResumable = errors.New("run the same command again to resume: verified data is kept")

// resumable adds the resume hint to a failed transfer's error.
func resumable(err error) error { return fmt.Errorf("%w\n(%w)", err, errResumable) }

type globals struct {
	home     string
	logLevel string
}

func newRoot() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:   "seedfleet",
		Short: "Seed nodes and devices for personal agents' encrypted vaults",
		Long: `seedfleet runs always-on seed nodes that host vault replicas for personal agents,
and the device commands that create vaults, write entries and sync them.`,
		Version:       version.String(),
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			// The seed's own level type: one spelling for the flag, the
			// seed's config file and the SeedNode API (CamelCase, read in any case).
			lvl := config.ParseLogLevel(g.logLevel)
			if !slices.Contains(config.LogLevels(), lvl) {
				return fmt.Errorf("--log-level %q: use Debug, Info, Warn or Error (in any case)", g.logLevel)
			}
			slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl})))
			return nil
		},
	}
	root.PersistentFlags().StringVar(&g.home, "home", defaultHome(), "device home directory (device key, vault keys, local replica); env SEEDFLEET_HOME")
	root.PersistentFlags().StringVar(&g.logLevel, "log-level", string(config.LogInfo), "log level: Debug, Info, Warn or Error, in any case")
	root.AddCommand(newSeedNodeCmd(), newKeyCmd(g), newVaultCmd(g), newPutCmd(g), newDelCmd(g), newGetCmd(g), newListCmd(g), newSyncCmd(g), newBlobCmd(g), newServeCmd(g), newAgentCmd(g), newDeviceCmd(g), newOperatorCmd(), newVersionCmd(), newHostCmd(g), newFleetCmd(g), newStateCmd(g))
	root.SetVersionTemplate(versionTemplate)
	usageOnArgErrors(root)
	return root
}

// usageOnArgErrors makes every command that gets the wrong arguments print
// its usage after the error: usage is silenced for other errors (a failed
// sync is not a usage mistake), and "accepts between 2 and 3 arg(s),
// received 1" alone does not say which arguments were missing.
func usageOnArgErrors(c *cobra.Command) {
	for _, sub := range c.Commands() {
		usageOnArgErrors(sub)
	}
	if c.Args == nil {
		return
	}
	check := c.Args
	c.Args = func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return fmt.Errorf("%w\n\n%s", err, strings.TrimRight(cmd.UsageString(), "\n"))
		}
		return nil
	}
}

func defaultHome() string {
	if h := os.Getenv("SEEDFLEET_HOME"); h != "" {
		return h
	}
	if d, err := os.UserHomeDir(); err == nil {
		return filepath.Join(d, ".seedfleet")
	}
	return ".seedfleet"
}
