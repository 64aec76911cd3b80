package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/spf13/cobra"

	"github.com/seedfleet/seedfleet/seednode/client"
	"github.com/seedfleet/seedfleet/seednode/ticket"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

func newSyncCmd(g *globals) *cobra.Command {
	var (
		live    bool
		timeout time.Duration
		quiet   bool
		lan     bool
		noDHT   bool
		noRdv   bool
	)
	c := &cobra.Command{
		Use:   "sync (NAMESPACE [PEER_MULTIADDR | FLEET_TICKET] | DOC_TICKET | agent [PEER_MULTIADDR | FLEET_TICKET])",
		Short: "Reconcile a vault with a seed or another device; --live keeps pushing changes both ways",
		Long: `Reconcile a vault with the first peer that serves it. Peers are tried in this order:
the address given (or a doc ticket's seeds, the seeds of a public fleet that hold the
vault, computed from its fleet ticket, or the agent's seeds), the peers that served this
vault before, devices on the local network (with --lan: mDNS), seeds announcing the
vault in the DHT (asked through the peers reached so far), and the agent's other devices
that serve (seedfleet serve), from the records they keep on the agent's seeds. A peer
that is unreachable or does not serve the vault is reported and the next one tried.`,
		Example: `  seedfleet sync <namespace ID> /ip4/127.0.0.1/tcp/7400/p2p/12D3KooW...
  seedfleet sync <namespace ID>          # peers that served it before, then the DHT
  seedfleet sync doc... --live
  seedfleet sync agent fleet...          # the fleet's seeds that hold the agent's vaults`,
		Args: cobra.RangeArgs(1, 2),
		RunE: withHome(g, func(cmd *cobra.Command, args []string, h *client.Home) error {
			ns, peers, err := syncTarget(cmd, h, args)
			if err != nil {
				return err
			}
			out, errOut := cmd.OutOrStdout(), cmd.ErrOrStderr()
			prog := newProgressPrinter(errOut, ns, quiet)
			opts := client.DiscoverOptions{
				SyncOptions:  client.SyncOptions{Live: live, Progress: prog.update},
				Peers:        peers,
				LAN:          lan,
				NoDHT:        noDHT,
				NoRendezvous: noRdv,
				Attempt: func(c client.Candidate, err error) {
					if err != nil && !quiet {
						prog.clear()
						fmt.Fprintf(errOut, "%s (%s): %v; trying the next peer\n", c.Peer.ID, c.Source, syncError(err))
					}
				},
			}
			if live {
				return syncLive(cmd, h, ns, opts, prog)
			}
			ctx := cmd.Context()
			if timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, timeout)
				defer cancel()
			}
			st, used, err := h.SyncAny(ctx, ns, opts)
			prog.clear()
			if err != nil {
				return syncError(err)
			}
			if used.Source != client.SourceGiven && !quiet {
				fmt.Fprintf(errOut, "found %s through %s\n", used.Peer.ID, used.Source)
			}
			printSummary(out, st)
			if args[0] == agentAlias {
				return syncProjects(ctx, cmd, h, used.Peer, quiet)
			}
			return nil
		}),
	}
	c.Flags().BoolVar(&live, "live", false, "stay connected and exchange new entries as they are written (Ctrl-C to stop)")
	c.Flags().DurationVar(&timeout, "timeout", 10*time.Minute, "give up a one-shot sync after this long")
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress output")
	c.Flags().BoolVar(&lan, "lan", false, "also look for devices serving the vault on the local network (mDNS multicast)")
	c.Flags().BoolVar(&noDHT, "no-dht", false, "do not ask the DHT which seeds host the vault")
	c.Flags().BoolVar(&noRdv, "no-rendezvous", false, "do not ask the agent's seeds for its other devices")
	return c
}

// syncLive keeps syncing until the command's context ends, reconnecting
// with a backoff (1 s doubling to 30 s, back to 1 s after a session that
// lasted a minute). Being stopped is its normal end: no error.
func syncLive(cmd *cobra.Command, h *client.Home, ns vault.NamespaceID, opts client.DiscoverOptions, prog *progressPrinter) error {
	ctx := cmd.Context()
	out, errOut := cmd.OutOrStdout(), cmd.ErrOrStderr()
	backoff := time.Second
	for {
		start := time.Now()
		st, _, err := h.SyncAny(ctx, ns, opts)
		prog.clear()
		if ctx.Err() != nil {
			printSummary(out, st)
			return nil
		}
		if time.Since(start) > time.Minute {
			backoff = time.Second
		}
		fmt.Fprintf(errOut, "live sync interrupted: %v; reconnecting in %s\n", syncError(err), backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// syncTarget reads "NAMESPACE [ADDR]", "agent [ADDR]" or a doc ticket (all
// its seeds; a write ticket also installs the namespace key) and returns the
// peers to try first.
func syncTarget(cmd *cobra.Command, h *client.Home, args []string) (vault.NamespaceID, []peer.AddrInfo, error) {
	var given []string
	var ns vault.NamespaceID
	what := "PEER_MULTIADDR"
	switch {
	case args[0] == agentAlias:
		a, err := h.Agent()
		if err != nil {
			return ns, nil, err
		}
		ns, given = a.Namespace, a.Seeds
		what = "the agent's seed (`seedfleet agent seeds` replaces them)"
	case len(args) == 2:
		var err error
		if ns, err = parseNS(args[0]); err != nil {
			return ns, nil, err
		}
	default:
		if id, err := vault.ParseNamespaceID(args[0]); err == nil {
			ns = id
			break
		}
		t, err := ticket.ParseDocTicket(args[0])
		if err != nil {
			return ns, nil, fmt.Errorf("%w (or give a NAMESPACE, optionally with a PEER_MULTIADDR)", err)
		}
		ns = vault.NamespaceID(t.Namespace)
		if t.HasWrite() {
			if err := h.ImportNamespaceKey(ns, t.WriteSecret); err != nil {
				return ns, nil, err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "this device can now write to vault %s\n", ns.Short())
		}
		return ns, t.Peers, nil
	}
	if len(args) == 2 {
		if isFleetTicket(args[1]) {
			t, err := ticket.ParseFleetTicket(args[1])
			if err != nil {
				return ns, nil, err
			}
			peers, err := h.FleetSeeds(t, ns)
			return ns, peers, err
		}
		given, what = []string{args[1]}, "PEER_MULTIADDR"
	}
	peers, err := parsePeers(what, given)
	return ns, peers, err
}

func syncError(err error) error {
	var pe *vault.PeerError
	if errors.As(err, &pe) {
		return fmt.Errorf("the peer refused: %s", pe.Message)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w (raise --timeout for a very large first sync)", err)
	}
	return err
}

func printSummary(w io.Writer, st vault.SyncStats) {
	fmt.Fprintf(w, "synced vault %s with %s in %s: received %d entries (%d new), sent %d; %s in, %s out, %d round trip(s)\n",
		st.Namespace.Short(), st.Peer, st.Duration.Round(time.Millisecond),
		st.ItemsReceived, st.Stored, st.ItemsSent, byteText(st.BytesReceived), byteText(st.BytesSent), st.RoundTrips)
	if st.Deleted > 0 {
		fmt.Fprintf(w, "  deleted %d entries here that tombstones from the peer cover\n", st.Deleted)
	}
	if st.Refused > 0 {
		fmt.Fprintf(w, "  refused %d entries from the peer: %s\n", st.Refused, st.FirstRefusal)
	}
	if st.PeerRefused > 0 {
		fmt.Fprintf(w, "  the peer refused %d of our entries: %s\n", st.PeerRefused, st.PeerRefusal)
	}
}

// syncProjects syncs every project vault of the agent's catalog with addr:
// a device that reads the agent vault discovers its projects there.
func syncProjects(ctx context.Context, cmd *cobra.Command, h *client.Home, seed peer.AddrInfo, quiet bool) error {
	projects, err := h.Projects()
	if err != nil {
		return err
	}
	for _, p := range projects {
		prog := newProgressPrinter(cmd.ErrOrStderr(), p.Namespace, quiet)
		st, _, err := h.SyncAny(ctx, p.Namespace, client.DiscoverOptions{
			SyncOptions: client.SyncOptions{Progress: prog.update},
			Peers:       []peer.AddrInfo{seed},
		})
		prog.clear()
		if err != nil {
			return fmt.Errorf("project %s: %w", p.Name, syncError(err))
		}
		fmt.Fprintf(cmd.OutOrStdout(), "project %s: ", p.Name)
		printSummary(cmd.OutOrStdout(), st)
	}
	return nil
}
