package cmd

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/seedfleet/seedfleet/seednode/config"
	"github.com/seedfleet/seedfleet/seednode/node"
)

func newSeedNodeCmd() *cobra.Command {
	var (
		configPath string
		example    bool
	)
	def := config.Default()
	// The config package's flags; --log-level is the root command's.
	cfgFlags := pflag.NewFlagSet("seednode", pflag.ContinueOnError)
	def.BindFlags(cfgFlags)
	c := &cobra.Command{
		Use:   "seednode",
		Short: "Run a seed node (standalone: its own identity and stores under --data, nothing else needed)",
		Long: `Run a seed node. Settings come from built-in defaults, then the --config file, then flags.
By default it listens on loopback only (TCP 7400, QUIC 7400/udp, WebSocket 7402), serves its admin API
on 127.0.0.1:7401, runs a DHT server with no bootstrap peers and a relay for the devices of the vaults
it hosts, and dials nothing but the other seeds its vaults file (or admin API) names as a vault's replica
peers: each line of --vaults-file is a namespace ID, optionally followed by those seeds' full multiaddrs,
and the seed syncs the vault with them on its own. Its key is identity.key in --data, created on first
start, unless --identity-file names a key that must already exist (a pod's, made by the operator).
--example-config prints a commented configuration file.`,
		Example: `  seedfleet seednode --data ./seed-data
  seedfleet seednode --data ./seed-data --host-vault <namespace ID> --listen /ip4/0.0.0.0/tcp/7400
  seedfleet seednode --data ./seed-data --identity-file /run/seed/identity.key --vaults-file /run/seed/vaults
  seedfleet seednode --config seed.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			if example {
				fmt.Fprint(out, config.Example())
				return nil
			}
			cfg := config.Default()
			if configPath != "" {
				var err error
				if cfg, err = config.Load(configPath); err != nil {
					return err
				}
			}
			if err := cfg.ApplyFlags(cfgFlags); err != nil {
				return err
			}
			if err := cfg.Validate(); err != nil {
				return fmt.Errorf("invalid configuration:\n%w", err)
			}
			if lf := cmd.Flags().Lookup("log-level"); lf == nil || !lf.Changed {
				slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.SlogLevel()})))
			}
			ncfg, err := node.FromConfig(cfg)
			if err != nil {
				return err
			}
			ncfg.Logger = slog.Default()
			n, err := node.New(ncfg)
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "seed node %s\n", n.Host().ID())
			for _, a := range n.Addrs() {
				fmt.Fprintf(out, "  listening on %s\n", a)
			}
			if u := n.AdminURL(); u != "" {
				fmt.Fprintf(out, "  admin API on %s (/healthz /readyz /metrics /status)\n", u)
			}
			fmt.Fprintf(out, "  hosting %d vault(s); data in %s\n", len(n.Hosted().List()), cfg.DataDir)
			err = n.Run(cmd.Context())
			fmt.Fprintln(out, "seed node stopped")
			return err
		},
	}
	f := c.Flags()
	f.StringVar(&configPath, "config", "", "YAML configuration file (flags given on the command line override it)")
	f.BoolVar(&example, "example-config", false, "print a commented configuration file with every default, and exit")
	cfgFlags.VisitAll(func(fl *pflag.Flag) {
		if fl.Name != config.FlagLogLevel {
			f.AddFlag(fl)
		}
	})
	return c
}
