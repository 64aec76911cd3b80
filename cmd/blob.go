package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/spf13/cobra"

	"github.com/seedfleet/seedfleet/seednode/blobs"
	"github.com/seedfleet/seedfleet/seednode/client"
	"github.com/seedfleet/seedfleet/seednode/p2p"
	"github.com/seedfleet/seedfleet/seednode/ticket"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

func newBlobCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "blob", Short: "Add, share and fetch content-addressed blobs"}
	c.AddCommand(newBlobAddCmd(g), newBlobGetCmd(g))
	return c
}

func newBlobAddCmd(g *globals) *cobra.Command {
	var (
		serve  bool
		listen []string
		qr     bool
	)
	c := &cobra.Command{
		Use:   "add FILE|DIR",
		Short: "Add a file (or a directory, as a collection) to this device's blob store; prints its hash (and, with --serve, a ticket, then serves it)",
		Args:  cobra.ExactArgs(1),
		RunE: withHome(g, func(cmd *cobra.Command, args []string, h *client.Home) error {
			hash, size, format, err := addBlob(cmd, h, args[0])
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "hash: %s\nsize: %d bytes\n", vault.Hash(hash), size)
			if !serve {
				fmt.Fprintln(out, "(add --serve to print a ticket and serve the blob from this device)")
				return nil
			}
			if err := checkListen("listen", listen); err != nil {
				return err
			}
			return serveBlob(cmd, h, hash, size, format, listen, qr)
		}),
	}
	c.Flags().BoolVar(&serve, "serve", false, "serve the blob from this device until interrupted, and print a ticket")
	c.Flags().StringSliceVar(&listen, "listen", []string{"/ip4/127.0.0.1/tcp/0"}, "listen addresses while serving")
	c.Flags().BoolVar(&qr, "qr", false, "also print the ticket as a QR code")
	return c
}

// addBlob adds a file, or a directory as a collection, to the home's blob
// store with a progress bar.
func addBlob(cmd *cobra.Command, h *client.Home, path string) (hash [32]byte, size uint64, format ticket.Format, err error) {
	prog := newBarPrinter(cmd.ErrOrStderr(), "adding")
	defer prog.clear()
	fi, err := os.Stat(path)
	if err != nil {
		return hash, 0, 0, err
	}
	if !fi.IsDir() {
		hash, size, err = h.Blobs.AddFile(path, func(done int64) { prog.update(uint64(done), uint64(fi.Size())) })
		return hash, size, ticket.FormatRaw, err
	}
	hash, size, c, err := h.AddDir(path, func(name string, done int64) { prog.update(uint64(done), 0) })
	if err != nil {
		return hash, 0, 0, err
	}
	prog.clear()
	fmt.Fprintf(cmd.OutOrStdout(), "collection of %d files\n", len(c))
	return hash, size, ticket.FormatCollection, nil
}

// serveBlob serves the home's blobs until the command's context ends, after
// printing a ticket for hash (and its QR code with qr).
func serveBlob(cmd *cobra.Command, h *client.Home, hash [32]byte, size uint64, format ticket.Format, listen []string, qr bool) error {
	hst, err := p2p.NewHost(p2p.HostOptions{Key: h.Key, Listen: listen})
	if err != nil {
		return err
	}
	defer hst.Close()
	svc, err := blobs.NewService(hst, h.Blobs)
	if err != nil {
		return err
	}
	defer svc.Close()
	t, err := ticket.NewBlobTicket(hash, size, format, []peer.AddrInfo{{ID: hst.ID(), Addrs: hst.Addrs()}})
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "ticket: %s\n", t)
	if qr {
		// Upper case uses the QR alphanumeric mode: a smaller code.
		if err := ticket.QR(out, strings.ToUpper(t.String())); err != nil {
			return err
		}
	}
	fmt.Fprintln(out, "serving; Ctrl-C to stop")
	<-cmd.Context().Done()
	return nil
}

func newBlobGetCmd(g *globals) *cobra.Command {
	var (
		out      string
		rangeArg string
		timeout  time.Duration
	)
	c := &cobra.Command{
		Use:   "get TICKET",
		Short: "Fetch a blob by ticket, verifying every 16 KiB as it arrives; an interrupted fetch resumes",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := ticket.ParseBlobTicket(args[0])
			if err != nil {
				return err
			}
			span, err := parseRange(rangeArg)
			if err != nil {
				return err
			}
			h, err := openHome(cmd, g, existingHome)
			if err != nil {
				return err
			}
			defer h.Close()
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			size := t.Size
			if t.Format == ticket.FormatCollection {
				return fetchCollection(ctx, cmd, h, t, out)
			}
			opts := blobs.FetchOptions{Size: &size}
			if span != nil {
				opts.Spans = []blobs.ByteSpan{*span}
			}
			return fetchAndExport(ctx, cmd, h, t.Peers, t.Hash, opts, span, out)
		},
	}
	c.Flags().StringVarP(&out, "out", "o", "", "write the blob to this file (- for stdout), or a collection's files under this directory; default: keep it in the store only")
	c.Flags().StringVar(&rangeArg, "range", "", "only bytes OFFSET:LENGTH (e.g. 0:1048576); LENGTH 0 means to the end")
	c.Flags().DurationVar(&timeout, "timeout", time.Hour, "give up after this long (a later run resumes)")
	return c
}

func fetchCollection(ctx context.Context, cmd *cobra.Command, h *client.Home, t ticket.BlobTicket, out string) error {
	bar := newBarPrinter(cmd.ErrOrStderr(), "fetching")
	size := t.Size
	var last blobs.FetchProgress
	c, st, err := h.FetchCollection(ctx, t.Peers, t.Hash, blobs.FetchOptions{Size: &size, Progress: func(p blobs.FetchProgress) {
		last = p
		bar.updateItems(p.VerifiedBytes, p.Size, p.MembersDone, p.Members, "files")
	}})
	bar.clear()
	if err != nil {
		if last.Members > 0 {
			fmt.Fprintf(cmd.ErrOrStderr(), "%d of %d files (%s of %s) are here\n",
				last.MembersDone, last.Members, byteText(int64(last.VerifiedBytes)), byteText(int64(last.Size)))
		}
		return resumable(err)
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "fetched a collection of %d files (%s): %d fetched, %d already here\n",
		len(c), byteText(int64(st.Size)), st.MembersFetched, st.MembersSkipped)
	if out == "" {
		return nil
	}
	if out == "-" {
		return errors.New("a collection is written to a directory: -o DIR")
	}
	_, err = h.ExportCollection(t.Hash, out)
	return err
}

func parseRange(s string) (*blobs.ByteSpan, error) {
	if s == "" {
		return nil, nil
	}
	a, b, ok := strings.Cut(s, ":")
	off, err1 := strconv.ParseUint(a, 10, 64)
	n, err2 := strconv.ParseUint(b, 10, 64)
	if !ok || err1 != nil || err2 != nil {
		return nil, fmt.Errorf("--range %q: want OFFSET:LENGTH in bytes", s)
	}
	return &blobs.ByteSpan{Offset: off, Length: n}, nil
}

// fetchAndExport fetches (resuming) and writes the result to out.
func fetchAndExport(ctx context.Context, cmd *cobra.Command, h *client.Home, peers []peer.AddrInfo, hash [32]byte, opts blobs.FetchOptions, span *blobs.ByteSpan, out string) error {
	bar := newBarPrinter(cmd.ErrOrStderr(), "fetching")
	opts.Progress = func(p blobs.FetchProgress) {
		bar.update(p.VerifiedBytes+p.ResumedGroups*blobs.GroupSize, p.Size)
	}
	st, err := h.FetchBlob(ctx, peers, hash, opts)
	bar.clear()
	if err != nil {
		return resumable(err)
	}
	w := cmd.ErrOrStderr()
	if st.AlreadyComplete {
		fmt.Fprintf(w, "blob %s already here (%d bytes)\n", vault.Hash(hash).Short(), st.Size)
	} else {
		rate := float64(st.GroupsFetched*blobs.GroupSize) / (1 << 20) / max(st.Duration.Seconds(), 1e-9)
		fmt.Fprintf(w, "fetched %d groups of blob %s in %s (%.0f MiB/s), %d resumed; complete: %v\n",
			st.GroupsFetched, vault.Hash(hash).Short(), st.Duration.Round(time.Millisecond), rate, st.GroupsSkipped, st.Complete)
	}
	if out == "" {
		return nil
	}
	var dst io.Writer = cmd.OutOrStdout()
	if out != "-" {
		f, err := os.Create(out)
		if err != nil {
			return err
		}
		defer f.Close()
		dst = f
	}
	var off, n uint64
	if span != nil {
		off, n = span.Offset, span.Length
	}
	if err := h.Blobs.Export(hash, dst, off, n); err != nil {
		if errors.Is(err, blobs.ErrNotFound) {
			return fmt.Errorf("%w (fetch it first)", err)
		}
		return err
	}
	return nil
}
