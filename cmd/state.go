//go:build cgo

package cmd

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/seedfleet/seedfleet/seednode/client"
	"github.com/seedfleet/seedfleet/seednode/state"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

// stateRun opens VAULT's document DOC (args[0], args[1]) for a state
// command, reports entries it skipped, and runs fn with it.
func stateRun(g *globals, fn func(cmd *cobra.Command, args []string, d *state.Document) error) func(*cobra.Command, []string) error {
	return withHome(g, func(cmd *cobra.Command, args []string, h *client.Home) error {
		ns, err := vaultArg(h, args[0])
		if err != nil {
			return err
		}
		if !h.IsPrivate(ns) {
			return fmt.Errorf("vault %s is not one of the agent's private vaults: agent state lives in \"agent\" or \"agent/PROJECT\"", args[0])
		}
		d, err := state.Open(h, ns, args[1])
		if err != nil {
			return err
		}
		for _, p := range d.Problems() {
			fmt.Fprintln(cmd.ErrOrStderr(), "warning:", p.Error())
		}
		if n := d.AwaitingBlobs(); n > 0 {
			fmt.Fprintf(cmd.ErrOrStderr(), "warning: %d entries of the document wait for their sealed value to reach this device: sync to fetch them\n", n)
		}
		if err := fn(cmd, args[2:], d); err != nil {
			return err
		}
		// A change may have started the document's snapshot: finish it
		// before the home closes (cut short it loses nothing, but compacts
		// nothing either).
		return d.Flush()
	})
}

// jsonArg parses a JSON value given on the command line.
func jsonArg(s string) (json.RawMessage, error) {
	if !json.Valid([]byte(s)) {
		return nil, fmt.Errorf("%q is not JSON (a string is quoted: '\"dark\"')", s)
	}
	return json.RawMessage(s), nil
}

func newStateCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "state",
		Short: "Read and change the agent's state: JSON documents that every device edits and that merge (Automerge)",
		Long: `Agent state is a set of named JSON documents in the agent's vault ("agent") or a project vault
("agent/PROJECT"). Every change is sealed and stored as its own entry, so devices that edited offline
merge when they sync: maps key by key, lists and text element by element, counters by adding.
PATH is dotted (ui.theme, messages.0.text); "." or nothing is the whole document.`,
	}
	c.AddCommand(newStateGetCmd(g), newStateSetCmd(g), newStateEditCmd(g), newStateAppendCmd(g),
		newStateIncrCmd(g), newStateTextCmd(g), newStateDelCmd(g), newStateHistoryCmd(g), newStateWatchCmd(g))
	return c
}

func newStateGetCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "get VAULT DOC [PATH]",
		Short: "Print a document, or the value at PATH, as JSON",
		Args:  cobra.RangeArgs(2, 3),
		RunE: stateRun(g, func(cmd *cobra.Command, args []string, d *state.Document) error {
			var p state.Path
			if len(args) == 1 {
				p = state.ParsePath(args[0])
			}
			raw, err := d.JSON(p)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), string(raw))
			return nil
		}),
	}
}

func newStateSetCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "set VAULT DOC PATH JSON",
		Short: "Set the value at PATH (maps on the way are made)",
		Args:  cobra.ExactArgs(4),
		RunE: stateRun(g, func(cmd *cobra.Command, args []string, d *state.Document) error {
			v, err := jsonArg(args[1])
			if err != nil {
				return err
			}
			return d.Change(func(tx *state.Tx) error { return tx.Set(state.ParsePath(args[0]), v) })
		}),
	}
}

func newStateEditCmd(g *globals) *cobra.Command {
	var file, path string
	c := &cobra.Command{
		Use:   "edit VAULT DOC [--file PATCH.json] [--path PATH]",
		Short: "Apply a JSON merge patch (RFC 7396) from stdin or --file: null removes a member",
		Args:  cobra.ExactArgs(2),
		RunE: stateRun(g, func(cmd *cobra.Command, _ []string, d *state.Document) error {
			var r io.Reader = cmd.InOrStdin()
			if file != "" && file != "-" {
				f, err := os.Open(file)
				if err != nil {
					return err
				}
				defer f.Close()
				r = f
			}
			raw, err := io.ReadAll(io.LimitReader(r, 64<<20))
			if err != nil {
				return err
			}
			patch, err := jsonArg(string(raw))
			if err != nil {
				return fmt.Errorf("the patch: %w", err)
			}
			return d.Change(func(tx *state.Tx) error { return tx.MergePatch(state.ParsePath(path), patch) })
		}),
	}
	c.Flags().StringVar(&file, "file", "", "read the patch from this file (default and -: stdin)")
	c.Flags().StringVar(&path, "path", "", "apply the patch to the value at this path")
	return c
}

func newStateAppendCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "append VAULT DOC PATH JSON",
		Short: "Append a value to the list at PATH (made when missing)",
		Args:  cobra.ExactArgs(4),
		RunE: stateRun(g, func(cmd *cobra.Command, args []string, d *state.Document) error {
			v, err := jsonArg(args[1])
			if err != nil {
				return err
			}
			return d.Change(func(tx *state.Tx) error { return tx.Append(state.ParsePath(args[0]), v) })
		}),
	}
}

func newStateIncrCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "incr VAULT DOC PATH [DELTA]",
		Short: "Add DELTA (default 1, may be negative) to the counter at PATH (made when missing)",
		Args:  cobra.RangeArgs(3, 4),
		RunE: stateRun(g, func(cmd *cobra.Command, args []string, d *state.Document) error {
			delta := int64(1)
			if len(args) == 2 {
				var err error
				if delta, err = strconv.ParseInt(args[1], 10, 64); err != nil {
					return fmt.Errorf("DELTA %q: a whole number", args[1])
				}
			}
			return d.Change(func(tx *state.Tx) error { return tx.Increment(state.ParsePath(args[0]), delta) })
		}),
	}
}

func newStateTextCmd(g *globals) *cobra.Command {
	var at, del int
	var insert string
	c := &cobra.Command{
		Use:   "text VAULT DOC PATH [--at N] [--delete N] [--insert TEXT]",
		Short: "Edit the text at PATH in place: delete N characters at --at, insert TEXT there (--at -1: the end)",
		Args:  cobra.ExactArgs(3),
		RunE: stateRun(g, func(cmd *cobra.Command, args []string, d *state.Document) error {
			p := state.ParsePath(args[0])
			return d.Change(func(tx *state.Tx) error {
				pos := at
				if pos == -1 {
					n, err := tx.TextLen(p)
					if err != nil {
						return err
					}
					pos = n
				}
				return tx.EditText(p, pos, del, insert)
			})
		}),
	}
	c.Flags().IntVar(&at, "at", -1, "position, in characters (Unicode code points); -1 is the end")
	c.Flags().IntVar(&del, "delete", 0, "characters to delete at the position")
	c.Flags().StringVar(&insert, "insert", "", "text to insert at the position")
	return c
}

func newStateDelCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "del VAULT DOC PATH",
		Short: "Remove the value at PATH",
		Args:  cobra.ExactArgs(3),
		RunE: stateRun(g, func(cmd *cobra.Command, args []string, d *state.Document) error {
			return d.Change(func(tx *state.Tx) error { return tx.Delete(state.ParsePath(args[0])) })
		}),
	}
}

func newStateHistoryCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "history VAULT DOC",
		Short: "List the document's changes: when, which device, what",
		Args:  cobra.ExactArgs(2),
		RunE: stateRun(g, func(cmd *cobra.Command, _ []string, d *state.Document) error {
			hist, err := d.History()
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "WHEN\tDEVICE\tCHANGE\tWHAT")
			for _, c := range hist {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.Time.UTC().Format("2006-01-02 15:04:05"), c.Device, c.Hash[:12], c.Message)
			}
			return tw.Flush()
		}),
	}
}

func newStateWatchCmd(g *globals) *cobra.Command {
	var (
		peer   string
		noSync bool
	)
	c := &cobra.Command{
		Use:   "watch VAULT DOC [PATH]",
		Short: "Print the document (or PATH) as JSON now and each time a change merges, syncing live with the agent's seeds",
		Long: `Print the document, or the value at PATH, as one line of JSON, then again each time a change
from another device merges. The command syncs the vault live itself (with --peer, or the agent's seeds
and the peers that served the vault before), since one command at a time uses a device home;
--no-sync only watches what this device stores. Ctrl-C stops it.`,
		Args: cobra.RangeArgs(2, 3),
		RunE: withHome(g, func(cmd *cobra.Command, args []string, h *client.Home) error {
			ns, err := vaultArg(h, args[0])
			if err != nil {
				return err
			}
			d, err := state.Open(h, ns, args[1])
			if err != nil {
				return err
			}
			var p state.Path
			if len(args) == 3 {
				p = state.ParsePath(args[2])
			}
			out, errOut := cmd.OutOrStdout(), cmd.ErrOrStderr()
			show := func() {
				raw, err := d.JSON(p)
				if err != nil {
					fmt.Fprintln(errOut, "error:", err)
					return
				}
				fmt.Fprintln(out, string(raw))
			}
			show()
			ctx := cmd.Context()
			if !noSync {
				peers, err := parsePeers("--peer", nonEmpty(peer))
				if err != nil {
					return err
				}
				go syncStateLive(ctx, h, ns, client.DiscoverOptions{SyncOptions: client.SyncOptions{Live: true}, Peers: peers}, errOut)
			}
			return d.Watch(ctx, func() {
				for _, pr := range d.Problems() {
					fmt.Fprintln(errOut, "warning:", pr.Error())
				}
				show()
			})
		}),
	}
	c.Flags().StringVar(&peer, "peer", "", "sync live with this peer multiaddr (default: the agent's seeds, then known peers)")
	c.Flags().BoolVar(&noSync, "no-sync", false, "do not sync: print what this device stores as it changes")
	return c
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

// syncStateLive keeps a live session of ns open until ctx ends,
// reconnecting with a backoff (1 s doubling to 30 s).
func syncStateLive(ctx context.Context, h *client.Home, ns vault.NamespaceID, opts client.DiscoverOptions, errOut io.Writer) {
	backoff := time.Second
	for ctx.Err() == nil {
		start := time.Now()
		_, _, err := h.SyncAny(ctx, ns, opts)
		if ctx.Err() != nil {
			return
		}
		if time.Since(start) > time.Minute {
			backoff = time.Second
		}
		fmt.Fprintf(errOut, "live sync interrupted: %v; reconnecting in %s\n", syncError(err), backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}
