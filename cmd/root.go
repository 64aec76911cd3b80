// Package cmd is the seedfleet command line: the seed daemon and the device
// commands, one binary.
package cmd

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/seedfleet/seedfleet/internal/version"
)

// Execute runs the command line and returns the process exit code.
func Execute() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRoot()
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		return 1
	}
	return 0
}

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
			var lvl slog.Level
			if err := lvl.UnmarshalText([]byte(g.logLevel)); err != nil {
				return fmt.Errorf("--log-level %q: use debug, info, warn or error", g.logLevel)
			}
			slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl})))
			return nil
		},
	}
	root.PersistentFlags().StringVar(&g.home, "home", defaultHome(), "device home directory (device key, vault keys, local replica); env SEEDFLEET_HOME")
	root.PersistentFlags().StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	root.AddCommand(newSeedNodeCmd(), newKeyCmd(g), newVaultCmd(g), newPutCmd(g), newGetCmd(g), newListCmd(g), newSyncCmd(g), newBlobCmd(g), newServeCmd(g), newAgentCmd(g), newDeviceCmd(g), newOperatorCmd(), newVersionCmd())
	root.SetVersionTemplate(versionTemplate)
	return root
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
