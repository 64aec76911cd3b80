package cmd

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/seedfleet/seedfleet/internal/dirlock"
	"github.com/seedfleet/seedfleet/seednode/blobs"
	"github.com/seedfleet/seedfleet/seednode/ticket"

	"github.com/seedfleet/seedfleet/seednode/client"
	"github.com/seedfleet/seedfleet/seednode/identity"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

func newKeyCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "key", Short: "Manage this device's key"}
	c.AddCommand(&cobra.Command{
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
	}, &cobra.Command{
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
	})
	return c
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

// homeUse says whether a command may create the device home.
type homeUse int

const (
	// existingHome: the command reads or writes a home that must exist.
	// A mistyped --home would otherwise become a new device with a new key
	// and an empty replica, and the command would print nothing or a
	// misleading "no write capability".
	existingHome homeUse = iota
	// newHome: the command makes an identity (key create, vault create,
	// agent init, device pair) and creates the home on first use.
	newHome
)

// openHome opens --home for cmd, held in cmd's name while it runs.
func openHome(cmd *cobra.Command, g *globals, use homeUse) (*client.Home, error) {
	opts := []client.OpenOption{client.HeldBy(holderKind(cmd))}
	if use == existingHome {
		opts = append(opts, client.MustExist())
	}
	h, err := client.Open(g.home, opts...)
	if errors.Is(err, client.ErrNoHome) {
		return nil, fmt.Errorf("%w: check --home (or SEEDFLEET_HOME); to make a new device here, run `seedfleet key create --home %s` (vault create, agent init and device pair create a home too)", err, g.home)
	}
	if held, ok := errors.AsType[*dirlock.HeldError](err); ok {
		return nil, fmt.Errorf("device home %s is in use by %s: one command at a time uses a home; wait for it or stop it (Ctrl-C where it runs, or kill %d), or use another --home", g.home, held.Holder(), held.PID)
	}
	if err != nil {
		return nil, fmt.Errorf("open device home %s: %w", g.home, err)
	}
	return h, nil
}

// holderKind names a command in another command's "in use by" message:
// its path, and --live when set (a live sync holds a home until stopped).
// Arguments are left out: a ticket may carry a write key.
func holderKind(cmd *cobra.Command) string {
	kind := cmd.CommandPath()
	if f := cmd.Flags().Lookup("live"); f != nil && f.Changed {
		kind += " --live"
	}
	return kind
}

// withHome is a RunE that opens the existing device home, runs run with it
// and closes it.
func withHome(g *globals, run func(cmd *cobra.Command, args []string, h *client.Home) error) func(*cobra.Command, []string) error {
	return withHomeFor(existingHome, g, run)
}

// withNewHome is withHome for the commands that may create the home.
func withNewHome(g *globals, run func(cmd *cobra.Command, args []string, h *client.Home) error) func(*cobra.Command, []string) error {
	return withHomeFor(newHome, g, run)
}

func withHomeFor(use homeUse, g *globals, run func(cmd *cobra.Command, args []string, h *client.Home) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		h, err := openHome(cmd, g, use)
		if err != nil {
			return err
		}
		defer h.Close()
		return run(cmd, args, h)
	}
}

func newVaultCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "vault", Short: "Create and list vaults, and share them with tickets"}
	c.AddCommand(newVaultTicketCmd(g), &cobra.Command{
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
	}, &cobra.Command{
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
	})
	return c
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

func parseNS(s string) (vault.NamespaceID, error) {
	ns, err := vault.ParseNamespaceID(s)
	if err != nil {
		return ns, fmt.Errorf("%w (`seedfleet vault create` prints one)", err)
	}
	return ns, nil
}

func newPutCmd(g *globals) *cobra.Command {
	var file string
	c := &cobra.Command{
		Use:   "put NAMESPACE KEY [VALUE]",
		Short: "Write an entry (value from the argument, --file, or stdin with --file -); NAMESPACE \"agent\" is the agent's private vault",
		Args:  cobra.RangeArgs(2, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 3 && file != "" {
				return errors.New("give the value as an argument or with --file, not both")
			}
			if len(args) == 2 && file == "" {
				return errors.New("missing value: put NAMESPACE KEY VALUE, or --file PATH")
			}
			h, err := openHome(cmd, g, existingHome)
			if err != nil {
				return err
			}
			defer h.Close()
			ns, err := vaultArg(h, args[0])
			if err != nil {
				return err
			}
			private := h.IsPrivate(ns)
			putBytes := func(v []byte) (vault.SignedEntry, error) {
				if private {
					return h.PutPrivate(ns, args[1], v)
				}
				return h.Put(ns, []byte(args[1]), v)
			}
			var se vault.SignedEntry
			switch {
			case len(args) == 3:
				se, err = putBytes([]byte(args[2]))
			case file == "-":
				var value []byte
				if value, err = io.ReadAll(cmd.InOrStdin()); err == nil {
					se, err = putBytes(value)
				}
			default:
				bar := newBarPrinter(cmd.ErrOrStderr(), "adding")
				var total uint64
				if fi, serr := os.Stat(file); serr == nil {
					total = uint64(fi.Size())
				}
				progress := func(done int64) { bar.update(uint64(done), total) }
				if private {
					se, err = h.PutPrivateFile(ns, args[1], file, progress)
				} else {
					se, err = h.PutFile(ns, []byte(args[1]), file, progress)
				}
				bar.clear()
			}
			if err != nil {
				return err
			}
			kind := "inline"
			if vault.IsBlobRef(&se.Entry) {
				kind = "blob"
			}
			if private {
				kind += ", encrypted"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "put %s (%d bytes, %s, hash %s)\n", args[1], se.Size, kind, se.Hash.Short())
			return nil
		},
	}
	c.Flags().StringVar(&file, "file", "", "read the value from this file (- for stdin)")
	return c
}

func newGetCmd(g *globals) *cobra.Command {
	var (
		out  string
		from []string
	)
	c := &cobra.Command{
		Use:   "get NAMESPACE KEY",
		Short: "Print every author's latest value of KEY (--out writes a blob value to a file, fetching it --from a peer if needed)",
		Args:  cobra.ExactArgs(2),
		RunE: withHome(g, func(cmd *cobra.Command, args []string, h *client.Home) error {
			ns, err := vaultArg(h, args[0])
			if err != nil {
				return err
			}
			if h.IsPrivate(ns) {
				return getPrivate(cmd, h, ns, args[1], from, out)
			}
			items, err := h.Store.Get(ns, []byte(args[1]))
			if err != nil {
				return err
			}
			if len(items) == 0 {
				return fmt.Errorf("no entry %q in vault %s on this device (sync first?)", args[1], ns.Short())
			}
			if out != "" {
				return getToFile(cmd, h, items, from, out)
			}
			w := cmd.OutOrStdout()
			if len(items) == 1 {
				fmt.Fprintln(w, valueText(h, items[0]))
				return nil
			}
			for _, it := range items {
				fmt.Fprintf(w, "%s  %s  %s\n", it.Entry.Author.Short(), timeText(it.Entry.Timestamp), valueText(h, it))
			}
			return nil
		}),
	}
	c.Flags().StringVarP(&out, "out", "o", "", "write the value to this file (- for stdout)")
	c.Flags().StringSliceVar(&from, "from", nil, "peer multiaddrs to fetch a blob value from when it is not on this device")
	return c
}

// getToFile writes the newest value of the key (fetching its blob if need be).
func getToFile(cmd *cobra.Command, h *client.Home, items []vault.Item, from []string, out string) error {
	newest := items[0]
	for _, it := range items[1:] {
		if it.Entry.Newer(&newest.Entry.Entry) {
			newest = it
		}
	}
	if newest.Content != nil || newest.Entry.Size == 0 {
		if out == "-" {
			_, err := cmd.OutOrStdout().Write(newest.Content)
			return err
		}
		return os.WriteFile(out, newest.Content, 0o644)
	}
	peers, err := parsePeers("--from", from)
	if err != nil {
		return err
	}
	if st, err := h.Blobs.Stat(newest.Entry.Hash); err == nil && st.State != blobs.Complete && len(peers) == 0 {
		return fmt.Errorf("the value is a %d-byte blob not (fully) on this device: add --from <seed multiaddr>", newest.Entry.Size)
	}
	size := newest.Entry.Size
	return fetchAndExport(cmd.Context(), cmd, h, peers, newest.Entry.Hash, blobs.FetchOptions{Size: &size, MaxSize: size}, nil, out)
}

func newListCmd(g *globals) *cobra.Command {
	var limit int
	c := &cobra.Command{
		Use:   "list NAMESPACE [PREFIX]",
		Short: "List entries whose key starts with PREFIX",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var prefix []byte
			if len(args) == 2 {
				prefix = []byte(args[1])
			}
			h, err := openHome(cmd, g, existingHome)
			if err != nil {
				return err
			}
			defer h.Close()
			ns, err := vaultArg(h, args[0])
			if err != nil {
				return err
			}
			if h.IsPrivate(ns) {
				return listPrivate(cmd, h, ns, string(prefix), limit)
			}
			items, err := h.Store.List(ns, prefix, limit)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "KEY\tAUTHOR\tWRITTEN\tSIZE\tVALUE")
			for _, it := range items {
				e := &it.Entry
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", e.Key, e.Author.Short(), timeText(e.Timestamp), e.Size, valueText(h, it))
			}
			return tw.Flush()
		},
	}
	c.Flags().IntVar(&limit, "limit", 0, "show at most this many entries (0 = all)")
	return c
}

func timeText(us uint64) string {
	return time.UnixMicro(int64(us)).UTC().Format("2006-01-02 15:04:05")
}

// valueText shows text values as they are and anything else by hash.
func valueText(h *client.Home, it vault.Item) string {
	if it.Content == nil {
		where := "not on this device: get --out FILE --from <seed>"
		if st, err := h.Blobs.Stat(it.Entry.Hash); err == nil && st.State == blobs.Complete {
			where = "on this device: get --out FILE"
		}
		return fmt.Sprintf("(blob %s, %d bytes, %s)", it.Entry.Hash.Short(), it.Entry.Size, where)
	}
	if isText(it.Content) {
		return string(it.Content)
	}
	return fmt.Sprintf("(%d binary bytes, hash %s)", len(it.Content), it.Entry.Hash.Short())
}

// isText reports whether a value prints as it is.
func isText(b []byte) bool { return utf8.Valid(b) && !strings.ContainsRune(string(b), 0) }
