package cmd

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/seedfleet/seedfleet/seednode/blobs"
	"github.com/seedfleet/seedfleet/seednode/client"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

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
			var value []byte
			if len(args) == 3 {
				value = []byte(args[2])
			}
			se, err := putValue(cmd, h, ns, args[1], value, file)
			if err != nil {
				return err
			}
			kind := "inline"
			if vault.IsBlobRef(&se.Entry) {
				kind = "blob"
			}
			if h.IsPrivate(ns) {
				kind += ", encrypted"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "put %s (%d bytes, %s, hash %s)\n", args[1], se.Size, kind, se.Hash.Short())
			return nil
		},
	}
	c.Flags().StringVar(&file, "file", "", "read the value from this file (- for stdin)")
	return c
}

// putValue writes key = value, or the content of file ("-": stdin), to ns,
// encrypted when ns is one of the agent's private vaults. A file is added
// with a progress bar (a large one becomes a blob as it is read).
func putValue(cmd *cobra.Command, h *client.Home, ns vault.NamespaceID, key string, value []byte, file string) (vault.SignedEntry, error) {
	private := h.IsPrivate(ns)
	putBytes := func(v []byte) (vault.SignedEntry, error) {
		if private {
			return h.PutPrivate(ns, key, v)
		}
		return h.Put(ns, []byte(key), v)
	}
	switch file {
	case "":
		return putBytes(value)
	case "-":
		v, err := io.ReadAll(cmd.InOrStdin())
		if err != nil {
			return vault.SignedEntry{}, err
		}
		return putBytes(v)
	}
	bar := newBarPrinter(cmd.ErrOrStderr(), "adding")
	defer bar.clear()
	var total uint64
	if fi, err := os.Stat(file); err == nil {
		total = uint64(fi.Size())
	}
	progress := func(done int64) { bar.update(uint64(done), total) }
	if private {
		return h.PutPrivateFile(ns, key, file, progress)
	}
	return h.PutFile(ns, []byte(key), file, progress)
}

func newDelCmd(g *globals) *cobra.Command {
	var prefix bool
	c := &cobra.Command{
		Use:   "del NAMESPACE KEY",
		Short: "Delete this device's value of KEY (with --prefix, of every key under KEY) everywhere the vault syncs to",
		Long: `Delete this device's value of KEY, by writing a tombstone that syncs like any entry: every
replica that receives it removes this device's older values it covers and never takes them back.
A tombstone covers every key that starts with its own, so a key that other keys of this device
start with is refused unless --prefix is given. In the agent's private vaults keys are paths and
--prefix takes whole segments ending in '/' (as list does): "del agent notes/ --prefix" deletes
notes and everything under notes/. Values of KEY written by other devices stay; each device
deletes its own.`,
		Args: cobra.ExactArgs(2),
		RunE: withHome(g, func(cmd *cobra.Command, args []string, h *client.Home) error {
			ns, err := vaultArg(h, args[0])
			if err != nil {
				return err
			}
			var d client.Deletion
			if h.IsPrivate(ns) {
				d, err = h.DeletePrivate(ns, args[1], prefix)
			} else {
				d, err = h.Delete(ns, []byte(args[1]), prefix)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted %s (%d value(s) of this device here; sync to delete them elsewhere)\n", args[1], d.Deleted)
			if others := othersValues(h, ns, args[1], prefix); others > 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "note: %d value(s) written by other devices remain (only their writer deletes them)\n", others)
			}
			return nil
		}),
	}
	c.Flags().BoolVar(&prefix, "prefix", false, "delete every key that starts with KEY (in a private vault: whole segments ending in '/')")
	return c
}

// othersValues counts the values of key (or under it) that remain after this
// device deleted its own.
func othersValues(h *client.Home, ns vault.NamespaceID, key string, prefix bool) int {
	if h.IsPrivate(ns) {
		var vals []client.PrivateValue
		if prefix {
			vals, _ = h.ListPrivate(ns, key, 0)
			named, _ := h.GetPrivate(ns, strings.TrimSuffix(key, "/")) // the value named like the directory
			vals = append(vals, named...)
		} else {
			vals, _ = h.GetPrivate(ns, key)
		}
		return len(vals)
	}
	var items []vault.Item
	if prefix {
		items, _ = h.Store.List(ns, []byte(key), 0)
	} else {
		items, _ = h.Store.Get(ns, []byte(key))
	}
	return len(items)
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
