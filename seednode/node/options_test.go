package node

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/seedfleet/seedfleet/seednode/admin"
	"github.com/seedfleet/seedfleet/seednode/client"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

// TestVaultQuotaOption: placed through the admin API with maxEntries=2, a
// vault refuses a device's third entry with a quota reason, while another
// hosted vault without options takes all three; GET answers the options,
// and options of a vault not placed are refused with 400.
func TestVaultQuotaOption(t *testing.T) {
	laptop, err := client.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer laptop.Close()
	small, _ := laptop.CreateVault()
	plain, _ := laptop.CreateVault()
	n := startNode(t, Config{})
	addr := n.Addrs()[0].String()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	c := adminClient(t, n)
	placed := admin.HostedVaults{Vaults: []string{small.String(), plain.String()},
		Options: map[string]admin.VaultOptions{small.String(): {MaxEntries: 2}}}
	if err := c.SetHostedVaults(ctx, placed); err != nil {
		t.Fatal(err)
	}
	hv, err := c.HostedVaults(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(hv.Options, placed.Options) {
		t.Fatalf("GET options %+v, want %+v", hv.Options, placed.Options)
	}

	for _, tc := range []struct {
		ns          vault.NamespaceID
		wantStored  uint64
		wantRefused int
	}{
		{small, 2, 1},
		{plain, 3, 0},
	} {
		for i := range 3 {
			if _, err := laptop.Put(tc.ns, []byte{'k', byte('0' + i)}, []byte("v")); err != nil {
				t.Fatal(err)
			}
		}
		st, err := laptop.Sync(ctx, tc.ns, addr, client.SyncOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if st.PeerRefused != tc.wantRefused || (tc.wantRefused > 0 && !strings.Contains(st.PeerRefusal, "quota")) {
			t.Errorf("vault %s: device was told %d refused (%q), want %d quota refusals", tc.ns.Short(), st.PeerRefused, st.PeerRefusal, tc.wantRefused)
		}
		if s, _ := n.Store().Stats(tc.ns); s.Entries != tc.wantStored {
			t.Errorf("vault %s: seed stored %d entries, want %d", tc.ns.Short(), s.Entries, tc.wantStored)
		}
	}

	err = c.SetHostedVaults(ctx, admin.HostedVaults{Vaults: []string{plain.String()},
		Options: map[string]admin.VaultOptions{small.String(): {MaxEntries: 5}}})
	var herr *admin.HTTPError
	if !errors.As(err, &herr) || herr.StatusCode != 400 || !strings.Contains(herr.Message, small.String()) {
		t.Fatalf("options of a vault not placed: %v, want a 400 naming the vault", err)
	}
	if !n.Hosted().Has(small) || n.limitsFor(small).MaxEntries != 2 {
		t.Fatal("a refused placement changed the hosted vaults or their options")
	}
}

// TestNoRelayOption: a device writing to two hosted vaults may reserve on
// the relay while either vault allows it, and not once both are placed with
// noRelay.
func TestNoRelayOption(t *testing.T) {
	laptop, err := client.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer laptop.Close()
	a, _ := laptop.CreateVault()
	b, _ := laptop.CreateVault()
	n := startNode(t, Config{})
	addr := n.Addrs()[0].String()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := adminClient(t, n)

	place := func(options map[string]admin.VaultOptions) {
		t.Helper()
		if err := c.SetHostedVaults(ctx, admin.HostedVaults{Vaults: []string{a.String(), b.String()}, Options: options}); err != nil {
			t.Fatal(err)
		}
	}
	allowed := func(want int) {
		t.Helper()
		eventually(t, fmt.Sprintf("%d allowed relay peers", want), func() error {
			st, err := c.Status(ctx)
			if err != nil {
				return err
			}
			if st.Relay.AllowedPeers != want {
				return fmt.Errorf("%d allowed", st.Relay.AllowedPeers)
			}
			return nil
		})
	}

	place(map[string]admin.VaultOptions{a.String(): {NoRelay: true}, b.String(): {NoRelay: true}})
	for _, ns := range []vault.NamespaceID{a, b} {
		if _, err := laptop.Put(ns, []byte("k"), []byte("v")); err != nil {
			t.Fatal(err)
		}
		if st, err := laptop.Sync(ctx, ns, addr, client.SyncOptions{}); err != nil || st.PeerRefused != 0 {
			t.Fatalf("sync %s: %+v %v", ns.Short(), st, err)
		}
	}
	allowed(0) // entries stored in noRelay vaults allow no one

	place(map[string]admin.VaultOptions{a.String(): {NoRelay: true}})
	allowed(1) // b allows the laptop

	place(map[string]admin.VaultOptions{a.String(): {NoRelay: true}, b.String(): {NoRelay: true}})
	allowed(0)
	if n.acl.AllowedCount() != 0 {
		t.Fatal("the ACL still allows the laptop")
	}
}
