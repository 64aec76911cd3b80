package cmd

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/seedfleet/seedfleet/seednode/client"
	"github.com/seedfleet/seedfleet/seednode/ticket"
)

func newVaultCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "vault", Short: "Create and list vaults, and share them with tickets"}
	c.AddCommand(newVaultTicketCmd(g), newVaultCreateCmd(g), newVaultListCmd(g))
	return c
}

// newVaultCreateCmd makes a namespace key, and the home if need be.
func newVaultCreateCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "create",
		Short: "Create a vault; prints its namespace ID (the read capability to share with seeds)",
		Args:  cobra.NoArgs,
		RunE: withNewHome(g, func(cmd *cobra.Command, _ []string, h *client.Home) error {
			ns, err := h.CreateVault()
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), ns)
			return nil
		}),
	}
}

func newVaultListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the vaults this device knows: those it created (it can write) and those it synced, with local entry counts",
		Args:  cobra.NoArgs,
		RunE: withHome(g, func(cmd *cobra.Command, _ []string, h *client.Home) error {
			known, err := h.KnownVaults()
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAMESPACE ID\tENTRIES\tBYTES\tWRITE")
			for _, k := range known {
				st, err := h.Store.Stats(k.Namespace)
				if err != nil {
					return err
				}
				write := "no"
				if k.CanWrite {
					write = "yes"
				}
				fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", k.Namespace, st.Entries, st.Bytes, write)
			}
			return tw.Flush()
		}),
	}
}

func newVaultTicketCmd(g *globals) *cobra.Command {
	var (
		seeds     []string
		withWrite bool
		qr        bool
	)
	c := &cobra.Command{
		Use:   "ticket NAMESPACE --seed MULTIADDR...",
		Short: "Print a read ticket for a vault (namespace + seed addresses) to paste on another device",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ns, err := parseNS(args[0])
			if err != nil {
				return err
			}
			peers, err := parsePeers("--seed", seeds)
			if err != nil {
				return err
			}
			t, err := ticket.NewDocTicket(ns, peers)
			if err != nil {
				return err
			}
			if withWrite {
				h, err := openHome(cmd, g, existingHome)
				if err != nil {
					return err
				}
				key, err := h.NamespaceKey(ns)
				h.Close()
				if err != nil {
					return err
				}
				var warning string
				if t, warning, err = t.WithWriteSecret(key.Seed()); err != nil {
					return err
				}
				fmt.Fprintln(cmd.ErrOrStderr(), "WARNING:", warning)
			}
			fmt.Fprintln(cmd.OutOrStdout(), t)
			if qr {
				return ticket.QR(cmd.OutOrStdout(), strings.ToUpper(t.String()))
			}
			return nil
		},
	}
	c.Flags().StringSliceVar(&seeds, "seed", nil, "multiaddr of a seed hosting the vault (repeatable)")
	c.Flags().BoolVar(&withWrite, "with-write", false, "include the vault's namespace key: whoever has the ticket can write (your own devices only)")
	c.Flags().BoolVar(&qr, "qr", false, "also print the ticket as a QR code")
	return c
}
