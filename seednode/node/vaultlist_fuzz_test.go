package node

import (
	"crypto/ed25519"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/seedfleet/seedfleet/seednode/admin"
	"github.com/seedfleet/seedfleet/seednode/identity"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

// fuzzKey is a deterministic Ed25519 public key; n varies it.
func fuzzKey(n byte) ed25519.PublicKey {
	seed := make([]byte, ed25519.SeedSize)
	seed[0] = n
	return ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
}

func fuzzPeer(t testing.TB, n byte) peer.ID {
	id, err := identity.PeerID(fuzzKey(n))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// FuzzParseVaultList checks what every hosted vaults file gets: no panic, an
// error naming the line, and for a file that is accepted a placement that
// keeps the file's promises (distinct vaults, at most admin.MaxPeersPerVault
// addresses per vault, never this seed as a replica peer, peers and options
// of listed vaults only) and that reads back the same when written out again.
func FuzzParseVaultList(f *testing.F) {
	self := fuzzPeer(f, 1)
	a, b := vault.NamespaceID(fuzzKey(10)).String(), vault.NamespaceID(fuzzKey(11)).String()
	other, third := fuzzPeer(f, 2).String(), fuzzPeer(f, 3).String()
	for _, s := range []string{
		"",
		"# only a comment\n\n",
		a + "\n",
		a + " /ip4/127.0.0.1/tcp/7400/p2p/" + other + " /ip4/127.0.0.1/udp/7400/quic-v1/p2p/" + other + " maxEntries=10 relay=none # team\n" +
			b + "\t/dns4/seed-2.example/tcp/7400/p2p/" + third + " maxBytes=1048576\n" + a + " maxEntries=20\n",
		a + " /ip4/127.0.0.1/tcp/7400/p2p/" + self.String() + "\n",
		a + " /ip4/127.0.0.1/tcp/7400\n",
		a + " maxEntries=0 maxEntries=1\n",
		a + " relay=all\n",
		a + " /p2p/" + other + "\n",
		a + " /ip4/127.0.0.1/tcp/1/p2p/" + other + "/p2p-circuit/p2p/" + third + "\n",
		a + strings.Repeat(" /ip6/::1/tcp/1/p2p/"+other, admin.MaxPeersPerVault+1) + "\n",
		strings.ToUpper(a) + "\r\n" + a[:51] + "\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParseVaultList(data, self)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "line ") {
				t.Fatalf("error does not name the line: %v", err)
			}
			return
		}
		checkPlacement(t, p, self)
		back, err := ParseVaultList([]byte(formatVaultList(p)), self)
		if err != nil {
			t.Fatalf("the accepted list, written out, is refused: %v\n%s", err, formatVaultList(p))
		}
		if got, want := formatVaultList(back), formatVaultList(p); got != want {
			t.Fatalf("the accepted list changed on a round trip:\n got %s\nwant %s", got, want)
		}
	})
}

func checkPlacement(t *testing.T, p Placement, self peer.ID) {
	t.Helper()
	for i, ns := range p.Vaults {
		if slices.Index(p.Vaults, ns) != i {
			t.Fatalf("vault %s listed twice", ns.Short())
		}
	}
	for ns, infos := range p.Peers {
		if !slices.Contains(p.Vaults, ns) {
			t.Fatalf("peers of vault %s, which is not hosted", ns.Short())
		}
		n := 0
		for i, info := range infos {
			if info.ID == self {
				t.Fatalf("vault %s lists this seed as a replica peer", ns.Short())
			}
			if len(info.Addrs) == 0 {
				t.Fatalf("vault %s: peer %s has no address", ns.Short(), info.ID)
			}
			if slices.IndexFunc(infos, func(o peer.AddrInfo) bool { return o.ID == info.ID }) != i {
				t.Fatalf("vault %s: peer %s listed twice", ns.Short(), info.ID)
			}
			n += len(info.Addrs)
		}
		if n > admin.MaxPeersPerVault {
			t.Fatalf("vault %s: %d peer addresses, more than %d", ns.Short(), n, admin.MaxPeersPerVault)
		}
	}
	for ns, o := range p.Options {
		if !slices.Contains(p.Vaults, ns) {
			t.Fatalf("options of vault %s, which is not hosted", ns.Short())
		}
		if o == (admin.VaultOptions{}) {
			t.Fatalf("vault %s: empty options kept", ns.Short())
		}
	}
}

// formatVaultList writes p as a vaults file, one line per vault.
func formatVaultList(p Placement) string {
	var b strings.Builder
	for _, ns := range p.Vaults {
		b.WriteString(ns.String())
		for _, info := range p.Peers[ns] {
			for _, a := range info.Addrs {
				fmt.Fprintf(&b, " %s/p2p/%s", a, info.ID)
			}
		}
		o := p.Options[ns]
		if o.MaxEntries != 0 {
			fmt.Fprintf(&b, " maxEntries=%d", o.MaxEntries)
		}
		if o.MaxBytes != 0 {
			fmt.Fprintf(&b, " maxBytes=%d", o.MaxBytes)
		}
		if o.NoRelay {
			b.WriteString(" relay=none")
		}
		b.WriteByte('\n')
	}
	return b.String()
}
