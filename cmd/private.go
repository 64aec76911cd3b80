package cmd

import (
	"errors"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/seedfleet/seedfleet/seednode/blobs"
	"github.com/seedfleet/seedfleet/seednode/client"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

// getPrivate prints (or writes with --out) the decrypted values of path.
func getPrivate(cmd *cobra.Command, h *client.Home, ns vault.NamespaceID, path string, from []string, out string) error {
	vals, err := h.GetPrivate(ns, path)
	if err != nil {
		return err
	}
	if len(vals) == 0 {
		return fmt.Errorf("no entry %q in the agent's vault on this device (sync first?)", path)
	}
	newest := newestValue(vals)
	if newest.Blob {
		if err := fetchPrivateBlob(cmd, h, newest, from); err != nil {
			return err
		}
		if errors.Is(newest.Err, client.ErrBlobMissing) {
			// Opened again now that the blob is here: the first reading
			// could only say it was missing.
			if vals, err = h.GetPrivate(ns, path); err != nil {
				return err
			}
			newest = newestValue(vals)
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

// newestValue is the newest of vals (not empty).
func newestValue(vals []client.PrivateValue) client.PrivateValue {
	newest := vals[0]
	for _, v := range vals[1:] {
		if v.Entry.Newer(&newest.Entry.Entry) {
			newest = v
		}
	}
	return newest
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
