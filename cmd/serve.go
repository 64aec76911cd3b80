package cmd

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/seedfleet/seedfleet/seednode/client"
	"github.com/seedfleet/seedfleet/seednode/localapi"
	"github.com/seedfleet/seedfleet/seednode/state"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

func newServeCmd(g *globals) *cobra.Command {
	var (
		via     []string
		listen  []string
		lan     bool
		noRdv   bool
		apiSock string
		noAPI   bool
	)
	c := &cobra.Command{
		Use:   "serve VAULT... [--via SEED_MULTIADDR]",
		Short: "Keep this device reachable for sync and blob fetches (behind NAT: through a seed's relay)",
		Long: `Serve the given vaults (namespace IDs, "agent" or "agent/PROJECT") and this device's blobs to other
devices until interrupted. With --via, the device reserves a slot on each seed's relay and prints an
address through it, which another device can use with sync even when both are behind NAT. With --lan, it announces the vaults on the local network
(mDNS) so that devices running sync --lan find it without a seed. A device that acts for an agent
also registers a signed record of its addresses on the relays and the agent's seeds (renewed while it
serves), so the agent's other devices find it with a plain sync even for a vault no seed hosts.

While it serves, apps on this device read and change the agent's state through the local API: HTTP+JSON
on a Unix socket only this user can open (--api-socket, by default api.sock in the home; --no-api turns
it off). The README's "Local API" section lists its routes.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			// IDs are checked before the home opens; the agent's names
			// ("agent", "agent/PROJECT") need it.
			var vaults []vault.NamespaceID
			var agentNames []string
			for _, a := range args {
				if a == agentAlias || strings.HasPrefix(a, agentAlias+"/") {
					agentNames = append(agentNames, a)
					continue
				}
				ns, err := parseNS(a)
				if err != nil {
					return err
				}
				vaults = append(vaults, ns)
			}
			relays, err := parsePeers("--via", via)
			if err != nil {
				return err
			}
			if err := checkListen("listen", listen); err != nil {
				return err
			}
			if len(relays) == 0 && len(listen) == 0 {
				return fmt.Errorf("nobody could reach this device: give --via <seed multiaddr> or --listen <multiaddr>")
			}
			h, err := openHome(cmd, g, existingHome)
			if err != nil {
				return err
			}
			defer h.Close()
			for _, name := range agentNames {
				ns, err := vaultArg(h, name)
				if err != nil {
					return err
				}
				vaults = append(vaults, ns)
			}
			out, errOut := cmd.OutOrStdout(), cmd.ErrOrStderr()
			logf := func(format string, args ...any) { fmt.Fprintf(errOut, format+"\n", args...) }
			if !noAPI {
				api, err := startLocalAPI(h, apiSock, logf)
				if err != nil {
					return err
				}
				if api != nil {
					defer api.Close()
					fmt.Fprintln(out, "local API on", api.Path())
				}
			}
			return h.Serve(cmd.Context(), client.ServeOptions{
				Vaults: vaults, Listen: listen, Relays: relays, LAN: lan, NoRendezvous: noRdv,
				Reachable: func(addrs []string) {
					fmt.Fprintln(out, "reachable at:")
					for _, a := range addrs {
						fmt.Fprintln(out, "  "+a)
					}
					fmt.Fprintln(out, "serving; Ctrl-C to stop")
				},
				Logf: logf,
			})
		},
	}
	c.Flags().StringSliceVar(&via, "via", nil, "seed multiaddr whose relay to reserve a slot on (repeatable)")
	c.Flags().StringSliceVar(&listen, "listen", nil, "listen multiaddrs for direct connections")
	c.Flags().BoolVar(&lan, "lan", false, "announce the vaults on the local network with mDNS (needs --listen)")
	c.Flags().BoolVar(&noRdv, "no-rendezvous", false, "do not register this device's addresses on the agent's seeds")
	c.Flags().StringVar(&apiSock, "api-socket", "", "Unix socket of the local API (default: api.sock in the home)")
	c.Flags().BoolVar(&noAPI, "no-api", false, "do not answer the local API")
	return c
}

// startLocalAPI starts the local API on path (default: in the home). A
// binary built without cgo serves without it, and says so.
func startLocalAPI(h *client.Home, path string, logf func(string, ...any)) (*localapi.Server, error) {
	if path == "" {
		path = localapi.DefaultSocket(h.Dir)
	}
	api, err := localapi.Start(h, path, localapi.Options{Logf: logf})
	if errors.Is(err, state.ErrNeedsCgo) {
		logf("local API off: %v", err)
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("local API: %w (--api-socket chooses another path, --no-api turns it off)", err)
	}
	return api, nil
}
