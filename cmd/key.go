package cmd

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"io/fs"

	"github.com/spf13/cobra"

	"github.com/seedfleet/seedfleet/seednode/client"
	"github.com/seedfleet/seedfleet/seednode/identity"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

func newKeyCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "key", Short: "Manage this device's key"}
	c.AddCommand(newKeyCreateCmd(g), newKeyShowCmd(g))
	return c
}

// newKeyCreateCmd makes the device key, and with it the home.
func newKeyCreateCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "create",
		Short: "Create the device key in --home (refuses to replace one)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			key, err := client.CreateKey(g.home)
			if errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("%s already holds a device key; `seedfleet key show` prints it", g.home)
			}
			if err != nil {
				return err
			}
			return printKey(cmd.OutOrStdout(), key)
		},
	}
}

func newKeyShowCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "show",
		Short: "Print the device's DID, author ID and libp2p peer ID",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			key, err := identity.Load(client.KeyPath(g.home))
			if errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("no device key in %s: run `seedfleet key create`", g.home)
			}
			if err != nil {
				return err
			}
			return printKey(cmd.OutOrStdout(), key)
		},
	}
}

func printKey(w io.Writer, key ed25519.PrivateKey) error {
	pub := key.Public().(ed25519.PublicKey)
	pid, err := identity.PeerID(pub)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "did:     %s\nauthor:  %s\npeer ID: %s\n", identity.DIDKey(pub), vault.AuthorID(pub), pid)
	return nil
}
