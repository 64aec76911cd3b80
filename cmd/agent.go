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

	"github.com/seedfleet/seedfleet/seednode/blobs"
	"github.com/seedfleet/seedfleet/seednode/client"
	"github.com/seedfleet/seedfleet/seednode/identity"
	"github.com/seedfleet/seedfleet/seednode/p2p"
	"github.com/seedfleet/seedfleet/seednode/pairing"
	"github.com/seedfleet/seedfleet/seednode/ticket"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

// agentAlias names the agent's private vault wherever a namespace ID is expected.
const agentAlias = "agent"

// vaultArg resolves a NAMESPACE argument: a namespace ID, "agent" (the
// agent's vault) or "agent/PROJECT" (a project vault of its catalog). A
// namespace ID the home does not know is refused: reading it would print
// nothing and writing it would fail without saying why.
func vaultArg(h *client.Home, s string) (vault.NamespaceID, error) {
	if name, ok := strings.CutPrefix(s, agentAlias+"/"); ok {
		p, err := h.Project(name)
		return p.Namespace, err
	}
	if s == agentAlias {
		a, err := h.Agent()
		if err != nil {
			return vault.NamespaceID{}, err
		}
		return a.Namespace, nil
	}
	ns, err := parseNS(s)
	if err != nil {
		return ns, err
	}
	if err := h.CheckKnown(ns); err != nil {
		if errors.Is(err, client.ErrUnknownVault) {
			return ns, fmt.Errorf("%w: `seedfleet vault list --home %s` lists the vaults it knows (check the namespace and --home); a vault created on another device is read after a sync: seedfleet sync %s <seed multiaddr>", err, h.Dir, ns)
		}
		return ns, err
	}
	return ns, nil
}

func newAgentCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "agent", Short: "Create the agent this device acts for, and show it"}
	var (
		name  string
		seeds []string
	)
	initCmd := &cobra.Command{
		Use:   "init --name DEVICE [--seed SEED_MULTIADDR]...",
		Short: "Create a new agent with this device as its first device (it holds the agent's root key)",
		Long: `Create an agent: a root key (kept in <home>/agent.key; it approves and revokes devices), the
agent's private vault (its namespace is derived from the root key), the agent document listing this
device, and the vault's first content key. Every value written to the vault with put is encrypted;
seeds see ciphertext and keyed tags of the paths only. Give the seeds that host the vault with --seed
(the seed operator adds the namespace that this command prints).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := parsePeers("--seed", seeds); err != nil {
				return err
			}
			h, err := openHome(cmd, g, newHome)
			if err != nil {
				return err
			}
			defer h.Close()
			a, err := h.InitAgent(name)
			if err != nil {
				return err
			}
			if len(seeds) > 0 {
				if err := h.SetAgentSeeds(seeds); err != nil {
					return err
				}
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "agent:     %s\nvault:     %s\ndevice:    %s#%s\n", a.DID, a.Namespace, a.DID, a.Device)
			fmt.Fprintln(out, "the agent's root key is in "+h.Dir+"/agent.key: back it up; it approves and revokes devices")
			return nil
		},
	}
	initCmd.Flags().StringVar(&name, "name", "", "this device's name in the agent document (a-z, 0-9, -)")
	initCmd.Flags().StringSliceVar(&seeds, "seed", nil, "multiaddr of a seed hosting the agent's vault (repeatable)")
	_ = initCmd.MarkFlagRequired("name")

	var nsOnly bool
	show := &cobra.Command{
		Use:   "show",
		Short: "Print the agent this device acts for (--namespace: just the vault's namespace ID)",
		Args:  cobra.NoArgs,
		RunE: withHome(g, func(cmd *cobra.Command, _ []string, h *client.Home) error {
			a, err := h.Agent()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if nsOnly {
				fmt.Fprintln(out, a.Namespace)
				return nil
			}
			fmt.Fprintf(out, "agent:     %s\nvault:     %s\ndevice:    %s\nroot key:  %v\nseeds:     %s\n",
				a.DID, a.Namespace, a.Device, a.Root != nil, strings.Join(a.Seeds, " "))
			if doc, err := h.Store.AgentDocument(a.Namespace); err == nil && doc != nil {
				fmt.Fprintf(out, "document:  version %d, %d devices, %d revoked\n", doc.Version, len(doc.Devices), len(doc.Revoked))
			}
			if ps, err := h.Projects(); err == nil {
				for _, p := range ps {
					fmt.Fprintf(out, "project:   agent/%s  %s\n", p.Name, p.Namespace)
				}
			}
			return nil
		}),
	}
	show.Flags().BoolVar(&nsOnly, "namespace", false, "print only the agent vault's namespace ID")

	seedsCmd := &cobra.Command{
		Use:   "seeds SEED_MULTIADDR...",
		Short: "Set the seeds this device syncs the agent's vault through",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := parsePeers("SEED_MULTIADDR", args); err != nil {
				return err
			}
			h, err := openHome(cmd, g, existingHome)
			if err != nil {
				return err
			}
			defer h.Close()
			return h.SetAgentSeeds(args)
		},
	}
	project := &cobra.Command{
		Use:   "project NAME",
		Short: "Create a private project vault listed in the agent's catalog (use it as agent/NAME)",
		Long: `Create a project vault: its own namespace and content keys, bound to the agent's document (so
seeds enforce the same devices and revocations), listed in the agent's encrypted catalog so every
paired device discovers it. The seeds must host its namespace (printed) as well.`,
		Args: cobra.ExactArgs(1),
		RunE: withHome(g, func(cmd *cobra.Command, args []string, h *client.Home) error {
			p, err := h.CreateProject(args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "project %s: vault %s (use it as agent/%s)\n", p.Name, p.Namespace, p.Name)
			return nil
		}),
	}
	c.AddCommand(initCmd, show, seedsCmd, project)
	return c
}

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
			st, err := h.Sync(cmd.Context(), a.Namespace, a.Seeds[0], client.SyncOptions{})
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

// getPrivate prints (or writes with --out) the decrypted values of path.
func getPrivate(cmd *cobra.Command, h *client.Home, ns vault.NamespaceID, path string, from []string, out string) error {
	vals, err := h.GetPrivate(ns, path)
	if err != nil {
		return err
	}
	if len(vals) == 0 {
		return fmt.Errorf("no entry %q in the agent's vault on this device (sync first?)", path)
	}
	newest := vals[0]
	for _, v := range vals[1:] {
		if v.Entry.Newer(&newest.Entry.Entry) {
			newest = v
		}
	}
	if newest.Blob {
		if err := fetchPrivateBlob(cmd, h, newest, from); err != nil {
			return err
		}
	}
	if out != "" {
		if newest.Err != nil {
			return newest.Err
		}
		if out == "-" {
			return h.ExportPrivate(newest, cmd.OutOrStdout())
		}
		return h.ExportPrivateFile(newest, out)
	}
	w := cmd.OutOrStdout()
	for _, v := range vals {
		text := privateText(v)
		if len(vals) == 1 {
			fmt.Fprintln(w, text)
			continue
		}
		fmt.Fprintf(w, "%s  %s  %s\n", v.Entry.Author.Short(), timeText(v.Entry.Timestamp), text)
	}
	return nil
}

// fetchPrivateBlob fetches a sealed blob value from --from peers or the agent's seeds when missing.
func fetchPrivateBlob(cmd *cobra.Command, h *client.Home, v client.PrivateValue, from []string) error {
	if st, err := h.Blobs.Stat(v.Entry.Hash); err == nil && st.State == blobs.Complete {
		return nil
	}
	if len(from) == 0 {
		if a, err := h.Agent(); err == nil {
			from = a.Seeds
		}
	}
	peers, err := parsePeers("--from", from)
	if err != nil {
		return err
	}
	if len(peers) == 0 {
		return fmt.Errorf("the value is a %d-byte sealed blob not on this device: add --from <seed multiaddr>", v.Entry.Size)
	}
	bar := newBarPrinter(cmd.ErrOrStderr(), "fetching")
	size := v.Entry.Size
	_, err = h.FetchBlob(cmd.Context(), peers, v.Entry.Hash, blobs.FetchOptions{Size: &size, MaxSize: size,
		Progress: func(p blobs.FetchProgress) { bar.update(p.VerifiedBytes, p.Size) }})
	bar.clear()
	return err
}

func privateText(v client.PrivateValue) string {
	switch {
	case v.Err != nil:
		return "(cannot decrypt: " + v.Err.Error() + ")"
	case v.Blob:
		return fmt.Sprintf("(encrypted blob, %d bytes sealed: get --out FILE)", v.Entry.Size)
	case isText(v.Value):
		return string(v.Value)
	default:
		return fmt.Sprintf("(%d binary bytes)", len(v.Value))
	}
}

func listPrivate(cmd *cobra.Command, h *client.Home, ns vault.NamespaceID, prefix string, limit int) error {
	vals, err := h.ListPrivate(ns, prefix, limit)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tAUTHOR\tWRITTEN\tSIZE\tVALUE")
	for _, v := range vals {
		path := v.Path
		if path == "" {
			path = "(sealed " + v.Entry.Hash.Short() + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", path, v.Entry.Author.Short(), timeText(v.Entry.Timestamp), v.Entry.Size, privateText(v))
	}
	return tw.Flush()
}
