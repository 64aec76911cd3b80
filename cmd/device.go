package cmd

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/spf13/cobra"

	"github.com/seedfleet/seedfleet/seednode/client"
	"github.com/seedfleet/seedfleet/seednode/identity"
	"github.com/seedfleet/seedfleet/seednode/p2p"
	"github.com/seedfleet/seedfleet/seednode/pairing"
	"github.com/seedfleet/seedfleet/seednode/ticket"
)

func newDeviceCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "device", Short: "Pair, approve, list and revoke the agent's devices"}
	c.AddCommand(newPairCmd(g), newApproveCmd(g), newDevicesListCmd(g), newRevokeCmd(g))
	return c
}

func newPairCmd(g *globals) *cobra.Command {
	var (
		name    string
		listen  []string
		qr      bool
		timeout time.Duration
	)
	c := &cobra.Command{
		Use:   "pair --name DEVICE",
		Short: "Ask to join an agent: prints a pairing ticket and code, waits for a trusted device to approve",
		Long: `Run on the new device. It prints a ticket (where to reach this device) and a short code. On the
device holding the agent's root key, run "seedfleet device approve <ticket>" and type the code shown
here. The code is checked with a PAKE: someone who substitutes the ticket but does not see the code gets
nothing, and three wrong codes end the attempt. Once approved, this device syncs the agent's vault from
its seeds and can read and write it.`,
		Args: cobra.NoArgs,
		RunE: withNewHome(g, func(cmd *cobra.Command, _ []string, h *client.Home) error {
			if err := checkListen("listen", listen); err != nil {
				return err
			}
			hst, err := p2p.NewHost(p2p.HostOptions{Key: h.Key, Listen: listen})
			if err != nil {
				return err
			}
			defer hst.Close()
			code, err := pairing.NewCode()
			if err != nil {
				return err
			}
			t := pairing.Ticket{Peer: p2pInfo(hst)}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "pairing ticket: %s\npairing code:   %s\n", t, code)
			if qr {
				t.Code = code // the QR is read off this screen: it may carry the code
				if err := ticket.QR(out, strings.ToUpper(t.String())); err != nil {
					return err
				}
			}
			fmt.Fprintln(out, `on a device holding the agent's root key, run: seedfleet device approve <ticket> (and type the code)`)
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			a, err := h.AwaitPairing(ctx, hst, code, name)
			if err != nil {
				if errors.Is(err, context.DeadlineExceeded) {
					return fmt.Errorf("no approval within %s: run pair again for a new code", timeout)
				}
				return err
			}
			fmt.Fprintf(out, "approved: this device is %s#%s\n", a.DID, a.Device)
			if len(a.Seeds) == 0 {
				fmt.Fprintln(out, "no seeds known: sync the agent's vault with: seedfleet sync agent <peer multiaddr>")
				return nil
			}
			seeds, err := parsePeers("the agent's seeds", a.Seeds)
			if err != nil {
				return err
			}
			st, _, err := h.SyncAny(cmd.Context(), a.Namespace, client.DiscoverOptions{Peers: seeds})
			if err != nil {
				return syncError(err)
			}
			printSummary(out, st)
			return nil
		}),
	}
	c.Flags().StringVar(&name, "name", "", "the name this device asks for in the agent document (a-z, 0-9, -)")
	c.Flags().StringSliceVar(&listen, "listen", []string{"/ip4/127.0.0.1/tcp/0"}, "where the approving device can reach this one (e.g. /ip4/0.0.0.0/tcp/0 on a LAN)")
	c.Flags().BoolVar(&qr, "qr", false, "also print the ticket, with the code, as a QR code to scan")
	c.Flags().DurationVar(&timeout, "timeout", 10*time.Minute, "give up waiting for approval after this long")
	_ = c.MarkFlagRequired("name")
	return c
}

func newApproveCmd(g *globals) *cobra.Command {
	var codeArg string
	c := &cobra.Command{
		Use:   "approve PAIRING_TICKET [--code CODE]",
		Short: "Approve a new device (on the device holding the agent's root key); asks for the code it shows",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := pairing.ParseTicket(args[0])
			if err != nil {
				return err
			}
			code := t.Code
			if codeArg != "" {
				if code, err = pairing.ParseCode(codeArg); err != nil {
					return err
				}
			}
			if code == "" {
				if code, err = promptCode(cmd); err != nil {
					return err
				}
			}
			h, err := openHome(cmd, g, existingHome)
			if err != nil {
				return err
			}
			defer h.Close()
			hst, err := p2p.NewHost(p2p.HostOptions{Key: h.Key})
			if err != nil {
				return err
			}
			defer hst.Close()
			errOut := cmd.ErrOrStderr()
			ctx, cancel := context.WithTimeout(cmd.Context(), 2*time.Minute)
			defer cancel()
			req, key, err := h.ApprovePairing(ctx, hst, t.Peer, code, func(s string) { fmt.Fprintln(errOut, s) })
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "approved %s as %q\n", identity.DIDKey(key), req.Name)
			return nil
		},
	}
	c.Flags().StringVar(&codeArg, "code", "", "the pairing code the new device shows (asked for when missing)")
	return c
}

func promptCode(cmd *cobra.Command) (pairing.Code, error) {
	fmt.Fprint(cmd.ErrOrStderr(), "pairing code shown on the new device: ")
	line, err := bufio.NewReader(io.LimitReader(cmd.InOrStdin(), 256)).ReadString('\n')
	if err != nil && line == "" {
		return "", fmt.Errorf("no pairing code given (pass --code)")
	}
	return pairing.ParseCode(strings.TrimSpace(line))
}

func newDevicesListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the agent's devices and revoked keys (from the agent document on this device)",
		Args:  cobra.NoArgs,
		RunE: withHome(g, func(cmd *cobra.Command, _ []string, h *client.Home) error {
			doc, a, err := h.AgentDocument()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "agent %s, document version %d\n", doc.DID(), doc.Version)
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "DEVICE\tSTATE\tSINCE\tKEY")
			for _, d := range doc.Devices {
				state := "active"
				if d.Fragment == a.Device {
					state = "active (this device)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", d.Fragment, state, timeText(d.Added), identity.DIDKey(d.Key))
			}
			for _, r := range doc.Revoked {
				fmt.Fprintf(tw, "%s\trevoked\t%s\t%s\n", r.Fragment, timeText(r.RevokedAt), identity.DIDKey(r.Key))
			}
			return tw.Flush()
		}),
	}
}

func newRevokeCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke DEVICE",
		Short: "Revoke a device: new content keys it never gets; seeds refuse its writes from now on",
		Args:  cobra.ExactArgs(1),
		RunE: withHome(g, func(cmd *cobra.Command, args []string, h *client.Home) error {
			doc, err := h.RevokeDevice(args[0])
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "revoked %s (agent document version %d); new values use a new content key\n", args[0], doc.Version)
			a, err := h.Agent()
			if err != nil {
				return err
			}
			for _, s := range a.Seeds {
				if err := h.PushAgent(cmd.Context(), s); err != nil {
					return fmt.Errorf("the revocation is recorded here but seed %s was not updated: %w (run: seedfleet sync agent)", s, syncError(err))
				}
				fmt.Fprintf(out, "seed %s now refuses the device's writes\n", s)
			}
			return nil
		}),
	}
}

func p2pInfo(h interface {
	ID() peer.ID
	Addrs() []ma.Multiaddr
}) peer.AddrInfo {
	return peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}
}
