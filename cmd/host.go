package cmd

import (
	"context"
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/spf13/cobra"

	"github.com/seedfleet/seedfleet/seednode/client"
	"github.com/seedfleet/seedfleet/seednode/hosting"
	"github.com/seedfleet/seedfleet/seednode/ticket"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

// Self-service hosting on a public fleet: a device asks the fleet itself,
// with no administrator, to keep its agent's vaults (or a plain vault).

func newHostCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "host",
		Short: "Ask a public fleet to host this agent's vaults, see what it holds, give them back",
	}
	c.AddCommand(newHostOpCmd(g, hosting.OpHost), newHostOpCmd(g, hosting.OpStatus), newHostOpCmd(g, hosting.OpRelease))
	return c
}

// hostFlags are the flags of the host subcommands.
type hostFlags struct {
	fleet        string
	invite       string
	vaults       []string
	quotaBytes   uint64
	quotaEntries uint64
	timeout      time.Duration
}

var hostUse = map[hosting.Op]struct{ use, short, long string }{
	hosting.OpHost: {"request (agent | NAMESPACE)", "Ask a fleet to host the agent's vaults (or a plain vault)",
		`Ask a public fleet to keep the agent's vaults: by default its own vault and its
project vaults (--vault names others). The request is signed by the agent's root key,
or on other devices by this device's key with the agent document that lists it; a
plain vault's request is signed by its namespace key. The answer names the seeds that
hold the vaults (sync then finds them), or why the fleet refused and what to do.`},
	hosting.OpStatus: {"status (agent | NAMESPACE)", "Show what a fleet holds for the agent (or a plain vault) and how close it is to its quota", ""},
	hosting.OpRelease: {"release (agent | NAMESPACE)", "Give vaults back to a fleet: all of them, or those named with --vault",
		"The fleet drops the released vaults' data once no other agent's claim holds them."},
}

func newHostOpCmd(g *globals, op hosting.Op) *cobra.Command {
	var f hostFlags
	u := hostUse[op]
	c := &cobra.Command{
		Use:   u.use,
		Short: u.short,
		Long:  u.long,
		Example: `  seedfleet host request agent --fleet fleet...              # a fleet ticket
  seedfleet host request agent --fleet /dns4/seeds.example.org/tcp/7400/p2p/12D3KooW... --invite invite...
  seedfleet host status agent                                # the fleet that accepted the agent`,
		Args: cobra.ExactArgs(1),
		RunE: withHome(g, func(cmd *cobra.Command, args []string, h *client.Home) error {
			return runHost(cmd, h, op, args[0], f)
		}),
	}
	c.Flags().StringVar(&f.fleet, "fleet", "", "the fleet: its ticket (fleet...) or any of its seeds' multiaddr with /p2p/ (default: the fleet that last accepted a request for it on this device)")
	c.Flags().DurationVar(&f.timeout, "timeout", 30*time.Second, "give up after this long")
	if op == hosting.OpHost {
		c.Flags().StringVar(&f.invite, "invite", "", "an invite ticket (invite...), for fleets that admit by invitation")
		c.Flags().Uint64Var(&f.quotaBytes, "quota-bytes", 0, "bytes each vault may hold (0: the fleet's default)")
		c.Flags().Uint64Var(&f.quotaEntries, "quota-entries", 0, "entries each vault may hold (0: the fleet's default)")
	}
	if op != hosting.OpStatus {
		c.Flags().StringSliceVar(&f.vaults, "vault", nil, "a vault to host or release (namespace ID, agent or agent/PROJECT); repeatable")
	}
	return c
}

func runHost(cmd *cobra.Command, h *client.Home, op hosting.Op, target string, f hostFlags) error {
	ctx, cancel := context.WithTimeout(cmd.Context(), f.timeout)
	defer cancel()
	ask := client.HostingAsk{Op: op, Invite: strings.TrimSpace(f.invite),
		QuotaBytes: f.quotaBytes, QuotaEntries: f.quotaEntries}
	subject := agentAlias
	if target != agentAlias {
		ns, err := parseNS(target)
		if err != nil {
			return err
		}
		ask.Vault, subject = &ns, ns.String()
	}
	fleet, err := fleetFor(ctx, h, subject, f.fleet)
	if err != nil {
		return err
	}
	ask.Fleet = fleet.Name
	for _, v := range f.vaults {
		ns, err := vaultArg(h, v)
		if err != nil {
			return fmt.Errorf("--vault %s: %w", v, err)
		}
		ask.Vaults = append(ask.Vaults, ns)
	}
	req, err := h.HostingRequest(ask)
	if err != nil {
		return err
	}
	ans, err := h.AskFleet(ctx, fleet.Peers, req)
	if err != nil {
		return err
	}
	if err := ans.Err(); err != nil {
		return err
	}
	if op == hosting.OpHost {
		if err := h.RememberFleet(subject, fleet); err != nil {
			return fmt.Errorf("the fleet hosts the vaults, but recording which fleet failed: %w", err)
		}
	}
	if op == hosting.OpHost && ask.Vault == nil {
		// The agent's devices sync through its seeds, and a device paired
		// later learns them: the fleet's seeds for the agent join them.
		if err := h.AddAgentSeeds(ans.Seeds); err != nil {
			return fmt.Errorf("the fleet hosts the agent, but recording its seeds failed: %w", err)
		}
	}
	printAnswer(cmd.OutOrStdout(), ans)
	return nil
}

// fleetFor is the fleet a host command asks about subject: --fleet if given,
// else the one that last accepted a request for it on this device.
func fleetFor(ctx context.Context, h *client.Home, subject, flag string) (ticket.FleetTicket, error) {
	if strings.TrimSpace(flag) != "" {
		return fleetOf(ctx, h, flag)
	}
	t, ok, err := h.RememberedFleet(subject)
	if err != nil || ok {
		return t, err
	}
	what := "the agent"
	if subject != agentAlias {
		what = "vault " + subject
	}
	return t, fmt.Errorf("this device has not had %s hosted by a fleet: pass --fleet with the fleet's ticket (fleet...) or any of its seeds' multiaddr", what)
}

// fleetOf reads --fleet: a fleet ticket, or a seed's address, which is asked
// for the fleet's ticket.
func fleetOf(ctx context.Context, h *client.Home, s string) (ticket.FleetTicket, error) {
	s = strings.TrimSpace(s)
	if isFleetTicket(s) {
		t, err := ticket.ParseFleetTicket(s)
		if err != nil {
			return t, fmt.Errorf("--fleet: %w", err)
		}
		return t, nil
	}
	seed, err := parsePeer("--fleet", s)
	if err != nil {
		return ticket.FleetTicket{}, fmt.Errorf("%w\n(--fleet also takes a fleet ticket, which starts with %q)", err, ticket.FleetPrefix)
	}
	t, err := h.FleetTicket(ctx, []peer.AddrInfo{seed})
	if err != nil {
		return t, fmt.Errorf("--fleet %s: %w", s, err)
	}
	return t, nil
}

// printAnswer shows an accepted answer: the message, the seeds, each vault
// with its use of its quota, and the agent's totals.
func printAnswer(w io.Writer, a *hosting.Answer) {
	fmt.Fprintln(w, a.Message)
	if len(a.Seeds) > 0 {
		fmt.Fprintln(w, "seeds:")
		for _, s := range a.Seeds {
			for _, addr := range s.Addrs {
				fmt.Fprintf(w, "  %s/p2p/%s\n", addr, s.ID)
			}
			if len(s.Addrs) == 0 {
				fmt.Fprintf(w, "  %s\n", s.ID)
			}
		}
	}
	if len(a.Vaults) > 0 {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "VAULT\tBYTES\tENTRIES\tSYNCED\tLAST SYNC\tRELEASED AT")
		for _, v := range a.Vaults {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\t%s\t%s\n", vault.NamespaceID(v.Namespace), byteUsage(v.Bytes), usage(v.Entries),
				v.Synced, v.Replicas, when(v.LastSync, "never"), when(v.ExpiresAt, "-"))
		}
		_ = tw.Flush()
	}
	if a.AgentVaults.Limit > 0 { // a release of everything answers with no limits
		fmt.Fprintf(w, "agent: %d of %d vaults, %s\n", a.AgentVaults.Used, a.AgentVaults.Limit, byteUsage(a.AgentBytes))
	}
	for _, v := range a.Vaults {
		if !v.ExpiresAt.IsZero() {
			fmt.Fprintf(w, "vault %s has not synced for long: the fleet releases it at %s unless a device syncs it before\n",
				vault.NamespaceID(v.Namespace).Short(), v.ExpiresAt.Local().Format(time.RFC3339))
		}
	}
}

func usage(u hosting.Usage) string { return fmt.Sprintf("%d/%d", u.Used, u.Limit) }

func byteUsage(u hosting.Usage) string {
	return byteText(int64(min(u.Used, math.MaxInt64))) + " of " + byteText(int64(min(u.Limit, math.MaxInt64)))
}

func when(t time.Time, zero string) string {
	if t.IsZero() {
		return zero
	}
	return t.Local().Format(time.RFC3339)
}

func newFleetCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "fleet", Short: "Public fleets: their tickets and invites"}
	var qr bool
	ticketCmd := &cobra.Command{
		Use:   "ticket SEED_MULTIADDR",
		Short: "Print the ticket of the fleet a seed belongs to (what a foundation publishes)",
		Args:  cobra.ExactArgs(1),
		RunE: withHome(g, func(cmd *cobra.Command, args []string, h *client.Home) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
			defer cancel()
			seed, err := parsePeer("SEED_MULTIADDR", args[0])
			if err != nil {
				return err
			}
			t, err := h.FleetTicket(ctx, []peer.AddrInfo{seed})
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintln(out, t.String())
			fmt.Fprintf(cmd.ErrOrStderr(), "fleet %s: admission %s, %d replicas, %d pods\n", t.Name, t.Admission, t.Replicas, t.Pods)
			if qr {
				return ticket.QR(out, strings.ToUpper(t.String()))
			}
			return nil
		}),
	}
	ticketCmd.Flags().BoolVar(&qr, "qr", false, "also draw the ticket as a QR code")
	c.AddCommand(ticketCmd, newFleetInviteCmd())
	return c
}

// isFleetTicket tells a fleet ticket from a multiaddr (which starts with /).
func isFleetTicket(s string) bool {
	return strings.HasPrefix(strings.ToLower(strings.TrimSpace(s)), ticket.FleetPrefix)
}
