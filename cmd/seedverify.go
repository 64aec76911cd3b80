package cmd

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/seedfleet/seedfleet/seednode/admin"
	"github.com/seedfleet/seedfleet/seednode/config"
	"github.com/seedfleet/seedfleet/seednode/node"
)

// newSeedVerifyCmd asks a running seed to verify its vault replicas now and
// reports what it found.
func newSeedVerifyCmd() *cobra.Command {
	var (
		addr, dataDir, tokenFile string
		timeout                  time.Duration
	)
	c := &cobra.Command{
		Use:   "verify",
		Short: "Verify a running seed's vault replicas now (stored sums against entries, every entry readable)",
		Long: `Ask a running seed to verify every vault replica it holds: each entry is read and checked
against its fingerprint, and the stored sums, key index and byte counts against the entries. The
seed does this on its own at start (when its store is small), whenever it finds damaged data, and
every scrubInterval; this command does it now and waits for the result. A replica found damaged is
quarantined and rebuilt from the vault's other replicas, as the seed does on its own.`,
		Example: `  seedfleet seednode verify --data ./seed-data`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, out := cmd.Context(), cmd.OutOrStdout()
			api, tokenFile, err := tokenClient(addr, dataDir, tokenFile)
			if err != nil {
				return err
			}
			asked := time.Now()
			if err := api.Verify(ctx); err != nil {
				return explainRefusal(fmt.Errorf("%w (is a seed running with --admin-listen %s?)", err, addr), addr, tokenFile)
			}
			st, err := awaitVerify(ctx, api, asked, timeout, func(st admin.Status) {
				fmt.Fprintf(cmd.ErrOrStderr(), "verifying %d vault(s)...\n", len(st.Vaults))
			})
			if err != nil {
				return err
			}
			damaged := 0
			for _, v := range st.Vaults {
				if v.Damage == nil {
					fmt.Fprintf(out, "%s ok (%d entries)\n", v.Namespace, v.Entries)
					continue
				}
				damaged++
				fmt.Fprintf(out, "%s %s since %s: %s\n", v.Namespace, v.Damage.State, v.Damage.Since.Format(time.RFC3339), v.Damage.Reason)
			}
			if damaged > 0 {
				return fmt.Errorf("%d of %d vault replicas are damaged; the seed rebuilds them from their other replicas "+
					"(or the next device that syncs): watch them in `seedfleet seednode verify` or /status", damaged, len(st.Vaults))
			}
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&addr, "admin", config.DefaultAdminListen, "the seed's admin API (host:port or URL)")
	f.StringVar(&dataDir, "data", config.DefaultDataDir, "the seed's data directory, which holds its admin token ("+node.AdminTokenFile+")")
	f.StringVar(&tokenFile, "token-file", "", "file with the seed's admin token, instead of the one in --data")
	f.DurationVar(&timeout, "timeout", 30*time.Minute, "give up waiting for the verification after this long")
	return c
}

// awaitVerify polls the seed's status until a verification pass that began
// after asked has ended, calling progress once while it runs.
func awaitVerify(ctx context.Context, api *admin.Client, asked time.Time, timeout time.Duration, progress func(admin.Status)) (admin.Status, error) {
	deadline := time.Now().Add(timeout)
	told := false
	for {
		st, err := api.Status(ctx)
		if err != nil {
			return st, err
		}
		if st.Integrity.LastPass.After(asked) && !st.Integrity.Verifying {
			return st, nil
		}
		if !told {
			progress(st)
			told = true
		}
		if time.Now().After(deadline) {
			return st, fmt.Errorf("the seed has not finished verifying after %s (still running: %v); try again later", timeout, st.Integrity.Verifying)
		}
		select {
		case <-ctx.Done():
			return st, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
