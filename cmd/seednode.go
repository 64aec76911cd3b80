package cmd

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/seedfleet/seedfleet/internal/dirlock"
	"github.com/seedfleet/seedfleet/internal/memlimit"
	"github.com/seedfleet/seedfleet/seednode/config"
	"github.com/seedfleet/seedfleet/seednode/identity"
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
The data directory records its peer ID (peer-id): a seed whose key is lost or is another peer's is
refused, unless --new-identity says to start under the new peer ID. Changes through the admin API need
a token: --config's admin.tokenFile, or admin.token in --data, generated on first start; "seedfleet
seednode vaults" uses it. A pod of a public fleet (the fleet section) re-reads the fleet's members from
--config when the file changes and applies them without a restart. --example-config prints a commented
configuration file.`,
		Example: `  seedfleet seednode --data ./seed-data
  seedfleet seednode --data ./seed-data --host-vault <namespace ID> --listen /ip4/0.0.0.0/tcp/7400
  seedfleet seednode --data ./seed-data --identity-file /run/seed/identity.key --vaults-file /run/seed/vaults
  seedfleet seednode --config seed.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if example {
				_, err := fmt.Fprint(cmd.OutOrStdout(), config.Example())
				return err
			}
			cfg, err := seedConfig(configPath, cfgFlags)
			if err != nil {
				return err
			}
			return runSeed(cmd, cfg, configPath, func() (config.Config, error) { return seedConfig(configPath, cfgFlags) })
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
	c.AddCommand(newInstallKeyCmd(), newSeedVaultsCmd(), newSeedVerifyCmd())
	return c
}

// seedConfig reads the settings: defaults, then the --config file, then flags.
func seedConfig(configPath string, cfgFlags *pflag.FlagSet) (config.Config, error) {
	cfg := config.Default()
	if configPath != "" {
		var err error
		if cfg, err = config.Load(configPath); err != nil {
			return cfg, err
		}
	}
	if err := cfg.ApplyFlags(cfgFlags); err != nil {
		return cfg, err
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("invalid configuration:\n%w", err)
	}
	return cfg, nil
}

// runSeed runs a seed with cfg until the command's context ends. The data
// directory is locked first, so a second seed on it is told which process
// holds it rather than Pebble's "resource temporarily unavailable".
// A fleet pod's membership is read again from configPath whenever the file
// changes (reload reads it as at start).
func runSeed(cmd *cobra.Command, cfg config.Config, configPath string, reload func() (config.Config, error)) error {
	if lf := cmd.Flags().Lookup("log-level"); lf == nil || !lf.Changed {
		slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.SlogLevel()})))
	}
	applyMemoryLimit()
	lock, err := dirlock.Acquire(cfg.DataDir, "seed node")
	if held, ok := errors.AsType[*dirlock.HeldError](err); ok {
		return fmt.Errorf("seed data directory %s is in use by %s: a data directory belongs to one seed at a time; stop that seed (kill %d), or give this one its own --data", cfg.DataDir, held.Holder(), held.PID)
	}
	if err != nil {
		return err
	}
	defer lock.Release()
	ncfg, err := node.FromConfig(cfg)
	if err != nil {
		return err
	}
	ncfg.Logger = slog.Default()
	ncfg.WatchFleetMembers(configPath, cfg, reload)
	n, err := node.New(ncfg)
	if err != nil {
		return startError(err)
	}
	out := cmd.OutOrStdout()
	printSeedBanner(out, n, cfg)
	err = n.Run(cmd.Context())
	fmt.Fprintln(out, "seed node stopped")
	return err
}

// startError adds what to do to a seed that cannot listen: mostly another
// seed already running on the default ports.
func startError(err error) error {
	if !errors.Is(err, syscall.EADDRINUSE) && !strings.Contains(err.Error(), "address already in use") {
		return err
	}
	if strings.Contains(err.Error(), "admin API on ") {
		return fmt.Errorf("%w\n(another process, perhaps a seed already running, holds the admin address: stop it, or give this seed another one with --%s 127.0.0.1:0 for any free port, or --%s \"\" for none)", err, config.FlagAdminListen, config.FlagAdminListen)
	}
	return fmt.Errorf("%w\n(another process, perhaps a seed already running, holds a listen address: stop it, or give this seed other ports with --listen, --listen-quic and --listen-ws)", err)
}

// printSeedBanner tells the user where the seed is and how to reach its admin API.
func printSeedBanner(out io.Writer, n *node.Node, cfg config.Config) {
	fmt.Fprintf(out, "seed node %s\n", n.Host().ID())
	for _, a := range n.Addrs() {
		fmt.Fprintf(out, "  listening on %s\n", a)
	}
	if u := n.AdminURL(); u != "" {
		fmt.Fprintf(out, "  admin API on %s (/healthz /readyz /metrics /status)\n", u)
		if f := n.AdminTokenFile(); f != "" {
			fmt.Fprintf(out, "  admin API changes need the token in %s (seedfleet seednode vaults --data %s)\n", f, cfg.DataDir)
		} else {
			fmt.Fprintf(out, "  admin API changes need the token in %s\n", cfg.Admin.TokenFile)
		}
	}
	fmt.Fprintf(out, "  hosting %d vault(s); data in %s\n", len(n.Hosted().List()), cfg.DataDir)
}

// newInstallKeyCmd copies a pod's key from the Secrets volume, which only the
// pod's init container mounts, into the volume the seed container reads.
// Every pod of a SeedNode shares one pod template, so the Secrets volume
// holds the keys of all its pods; the seed container never sees it, and a
// compromised seed process cannot read, and so cannot impersonate, the
// other pods.
func newInstallKeyCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "install-key FROM TO",
		Short: "Check the seed key in FROM and copy it to TO (the operator's pods run this before the seed starts)",
		Long: `Check that FROM holds a seed key (PEM, not readable by others) and write it to TO with mode 0600,
replacing what TO held: the operator's pods run it in an init container, so the seed container gets its
own key and never the Secrets of the other pods. It prints the key's peer ID.`,
		Example: `  seedfleet seednode install-key /etc/seedfleet/identities/seeds-0/identity.key /etc/seedfleet/identity/identity.key`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			from, to := args[0], args[1]
			key, err := identity.LoadMounted(from)
			if errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("%w: the operator creates the identity Secret of every pod it runs; check that the SeedNode's <pod>-identity Secret exists (kubectl get secrets)", err)
			}
			if err != nil {
				return err
			}
			// The copy is derived from the Secret, the source of truth: an
			// old copy (an earlier run of this pod) is replaced.
			if err := os.Remove(to); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("replace %s: %w", to, err)
			}
			if err := identity.Save(to, key); err != nil {
				return err
			}
			id, err := identity.PeerID(key.Public().(ed25519.PublicKey))
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "installed the key of peer %s at %s\n", id, to)
			return nil
		},
	}
}

// applyMemoryLimit gives the runtime a soft memory limit from the
// container's (see package memlimit) and says what it did.
func applyMemoryLimit() {
	set, why, err := memlimit.Apply(memlimit.CgroupRoot)
	switch {
	case err != nil:
		slog.Warn("no Go memory limit from the container's: set GOMEMLIMIT to one below it", "err", err)
	case set > 0:
		slog.Info("Go memory limit set to nine tenths of the container's", "bytes", set)
	default:
		slog.Debug("no Go memory limit set", "why", why)
	}
}
