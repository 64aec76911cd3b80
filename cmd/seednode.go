package cmd

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"github.com/seedfleet/seedfleet/seednode/node"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

func newSeedNodeCmd() *cobra.Command {
	var (
		cfg        node.Config
		hosted     []string
		maxEntries uint64
		maxBytes   uint64
		skew       time.Duration
	)
	c := &cobra.Command{
		Use:   "seednode",
		Short: "Run a seed node (standalone: its own identity and Pebble store under --data)",
		Example: `  seedfleet seednode --data ./seed-data
  seedfleet seednode --data ./seed-data --host-vault <namespace ID> --listen /ip4/0.0.0.0/tcp/7400`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, h := range hosted {
				ns, err := vault.ParseNamespaceID(h)
				if err != nil {
					return fmt.Errorf("--host-vault: %w", err)
				}
				cfg.HostedVaults = append(cfg.HostedVaults, ns)
			}
			cfg.Limits = vault.Limits{MaxEntries: maxEntries, MaxBytes: maxBytes, MaxClockSkew: skew}
			cfg.Logger = slog.Default()
			n, err := node.New(cfg)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "seed node %s\n", n.Host().ID())
			for _, a := range n.Addrs() {
				fmt.Fprintf(out, "  listening on %s\n", a)
			}
			fmt.Fprintf(out, "  hosting %d vault(s); data in %s\n", len(n.Hosted().List()), cfg.DataDir)
			err = n.Run(cmd.Context())
			fmt.Fprintln(out, "seed node stopped")
			return err
		},
	}
	f := c.Flags()
	f.StringVar(&cfg.DataDir, "data", "seed-data", "data directory (identity key and vault store)")
	f.StringSliceVar(&cfg.Listen, "listen", node.DefaultListen, "libp2p listen multiaddrs")
	f.StringSliceVar(&cfg.Announce, "announce", nil, "multiaddrs to announce instead of the listen addresses")
	f.StringSliceVar(&hosted, "host-vault", nil, "namespace ID of a vault to host (repeatable)")
	f.StringVar(&cfg.VaultsFile, "vaults-file", "", "file listing hosted namespace IDs, one per line; re-read when it changes")
	f.Uint64Var(&maxEntries, "max-entries", vault.DefaultLimits.MaxEntries, "entries allowed per vault")
	f.Uint64Var(&maxBytes, "max-bytes", vault.DefaultLimits.MaxBytes, "value bytes a vault's entries may reference")
	f.DurationVar(&skew, "max-clock-skew", vault.DefaultLimits.MaxClockSkew, "refuse entries timestamped further than this in the future")
	f.DurationVar(&cfg.IdleTimeout, "idle-timeout", 30*time.Second, "end a sync whose peer sends nothing for this long")
	return c
}
