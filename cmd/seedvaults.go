package cmd

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"path/filepath"
	"slices"

	"github.com/spf13/cobra"

	"github.com/seedfleet/seedfleet/seednode/admin"
	"github.com/seedfleet/seedfleet/seednode/config"
	"github.com/seedfleet/seedfleet/seednode/node"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

// newSeedVaultsCmd lists or changes what a running seed hosts through its
// admin API, with the token the seed keeps in its data directory.
func newSeedVaultsCmd() *cobra.Command {
	var (
		addr, dataDir, tokenFile string
		add, remove              []string
	)
	c := &cobra.Command{
		Use:   "vaults",
		Short: "List, or with --add / --remove change, the vaults a running seed hosts (through its admin API)",
		Long: `List the vaults a running seed hosts and their replica peers, or change the list with --add and
--remove, without a restart. Changes carry the seed's admin token: admin.token in its data directory
(--data, generated on the seed's first start), or --token-file (the seed's admin.tokenFile). A vault
added here is kept until the seed restarts; list it in --host-vault, the config or the vaults file
to keep it for good.`,
		Example: `  seedfleet seednode vaults --data ./seed-data
  seedfleet seednode vaults --data ./seed-data --add <namespace ID>
  seedfleet seednode vaults --admin 127.0.0.1:7401 --token-file /etc/seedfleet/token --remove <namespace ID>`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, out := cmd.Context(), cmd.OutOrStdout()
			for flag, list := range map[string][]string{"--add": add, "--remove": remove} {
				for _, s := range list {
					if _, err := vault.ParseNamespaceID(s); err != nil {
						return fmt.Errorf("%s %q: %w", flag, s, err)
					}
				}
			}
			api := admin.NewClient(addr)
			if len(add)+len(remove) > 0 {
				var err error
				if api, tokenFile, err = tokenClient(addr, dataDir, tokenFile); err != nil {
					return err
				}
			}
			hv, err := api.HostedVaults(ctx)
			if err != nil {
				return fmt.Errorf("%w (is a seed running with --admin-listen %s?)", err, addr)
			}
			if len(add)+len(remove) == 0 {
				for _, ns := range hv.Vaults {
					fmt.Fprintln(out, ns)
					for _, p := range hv.Peers[ns] {
						fmt.Fprintf(out, "  replica peer %s\n", p)
					}
				}
				return nil
			}
			hv.Vaults = slices.DeleteFunc(hv.Vaults, func(ns string) bool { return slices.Contains(remove, ns) })
			for _, ns := range remove {
				delete(hv.Peers, ns)
				delete(hv.Options, ns)
			}
			for _, ns := range add {
				if !slices.Contains(hv.Vaults, ns) {
					hv.Vaults = append(hv.Vaults, ns)
				}
			}
			if err := api.SetHostedVaults(ctx, hv); err != nil {
				return explainRefusal(err, addr, tokenFile)
			}
			fmt.Fprintf(out, "the seed hosts %d vault(s)\n", len(hv.Vaults))
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&addr, "admin", config.DefaultAdminListen, "the seed's admin API (host:port or URL)")
	f.StringVar(&dataDir, "data", config.DefaultDataDir, "the seed's data directory, which holds its admin token ("+node.AdminTokenFile+")")
	f.StringVar(&tokenFile, "token-file", "", "file with the seed's admin token, instead of the one in --data")
	f.StringSliceVar(&add, "add", nil, "namespace ID of a vault to host (repeatable)")
	f.StringSliceVar(&remove, "remove", nil, "namespace ID of a vault to stop hosting (repeatable)")
	return c
}

// tokenClient is an admin API client carrying the seed's token: tokenFile,
// or else admin.token in dataDir. It returns the file it read.
func tokenClient(addr, dataDir, tokenFile string) (*admin.Client, string, error) {
	if tokenFile == "" {
		tokenFile = filepath.Join(dataDir, node.AdminTokenFile)
	}
	token, err := admin.ReadToken(tokenFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, tokenFile, fmt.Errorf("%w: changes need the seed's admin token: pass --data with the seed's data directory "+
			"(it holds %s once the seed has started), or --token-file with its admin.tokenFile", err, node.AdminTokenFile)
	}
	if err != nil {
		return nil, tokenFile, err
	}
	return admin.NewClient(addr, admin.WithToken(token)), tokenFile, nil
}

// explainRefusal says what to check when the seed refused the token.
func explainRefusal(err error, addr, tokenFile string) error {
	var herr *admin.HTTPError
	if errors.As(err, &herr) && herr.StatusCode == http.StatusUnauthorized {
		return fmt.Errorf("%w: the seed at %s refused the token in %s; is that file this seed's "+
			"(its --data directory's %s, or its admin.tokenFile)?", err, addr, tokenFile, node.AdminTokenFile)
	}
	return err
}
