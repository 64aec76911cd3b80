package cmd

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/seedfleet/seedfleet/seednode/client"
)

func newAgentCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "agent", Short: "Create the agent this device acts for, and show it"}
	c.AddCommand(newAgentInitCmd(g), newAgentShowCmd(g), newAgentSeedsCmd(g), newAgentProjectCmd(g))
	return c
}

// newAgentInitCmd creates the agent, and the home if need be: it makes an identity.
func newAgentInitCmd(g *globals) *cobra.Command {
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
	return initCmd
}

func newAgentShowCmd(g *globals) *cobra.Command {
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
	return show
}

func newAgentSeedsCmd(g *globals) *cobra.Command {
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
	return seedsCmd
}

func newAgentProjectCmd(g *globals) *cobra.Command {
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
	return project
}
