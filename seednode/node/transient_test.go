package node

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/seedfleet/seedfleet/seednode/blobs"
	"github.com/seedfleet/seedfleet/seednode/client"
	"github.com/seedfleet/seedfleet/seednode/config"
	"github.com/seedfleet/seedfleet/seednode/hosting"
	"github.com/seedfleet/seedfleet/seednode/identity"
	"github.com/seedfleet/seedfleet/seednode/p2p"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

// transientStreams is how many inbound streams sit in the seed's transient
// scope (opened, protocol not yet agreed).
func transientStreams(t *testing.T, rm network.ResourceManager) int {
	t.Helper()
	var n int
	if err := rm.ViewTransient(func(s network.ResourceScope) error {
		n = s.Stat().NumStreamsInbound
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestIdleStreamsDoNotStarveTheTransientScope: peers that open streams and
// never name a protocol hold them in the seed's shared transient scope until
// the negotiation times out. With go-libp2p's default limits (504 streams
// there on these machines) a few such peers reset every other peer's new
// streams; the seed's limits must leave a device's sync unaffected. The test
// checks the scope really holds more than the default allows while the
// device syncs.
func TestIdleStreamsDoNotStarveTheTransientScope(t *testing.T) {
	const (
		idlers        = 8
		streamsPerOne = 200 // under the per-peer cap (256); 1,600 in all
		defaultLimit  = 504
	)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	home, err := client.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { home.Close() })
	ns, err := home.CreateVault()
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if _, err := home.Put(ns, fmt.Appendf(nil, "k%d", i), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	rm, err := SeedResourceManager(config.Resources{})
	if err != nil {
		t.Fatal(err)
	}
	n := startNode(t, Config{HostedVaults: []vault.NamespaceID{ns}, ResourceManager: rm})
	seed := info(n)

	for range idlers {
		key, _ := identity.Generate()
		h, err := p2p.NewHost(p2p.HostOptions{Key: key})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Close() })
		if err := h.Connect(ctx, seed); err != nil {
			t.Fatal(err)
		}
		for range streamsPerOne {
			// A raw stream: no multistream header, so the seed waits for
			// one with the stream in its transient scope.
			s, err := h.Network().NewStream(network.WithAllowLimitedConn(ctx, "idle"), seed.ID)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Reset() })
		}
	}
	eventually(t, "the idle streams to reach the seed's transient scope", func() error {
		if got := transientStreams(t, rm); got <= defaultLimit {
			return fmt.Errorf("%d idle streams in the transient scope, want more than %d", got, defaultLimit)
		}
		return nil
	})

	st, err := home.Sync(ctx, ns, seed.Addrs[0].String()+"/p2p/"+seed.ID.String(), client.SyncOptions{})
	if err != nil {
		t.Fatalf("device sync while %d idle streams wait: %v", transientStreams(t, rm), err)
	}
	if st.ItemsSent != 20 {
		t.Fatalf("sent %d entries, want 20", st.ItemsSent)
	}
	if got := transientStreams(t, rm); got <= defaultLimit {
		t.Fatalf("the idle streams were gone (%d left) before the device synced: the test proved nothing", got)
	}
}

// TestSeedResourceManagerHoldsManyLiveSessions: a live vault session is an
// inbound stream of the vault-sync service held while its device is online.
// The seed's resource manager admits two per inbound connection it admits
// (go-libp2p's default service limit refused the ~1,285th on these
// machines), and still refuses past that. The blob and hosting services get
// the same room: a flood of unknown peers' streams, each held until the
// service refuses it, filled go-libp2p's default protocol limit (about
// 1,280 here) and a known device's blob fetch was reset.
func TestSeedResourceManagerHoldsManyLiveSessions(t *testing.T) {
	const conns = 4096 // the seed's default inbound connections
	for _, svc := range []struct {
		name  string
		proto protocol.ID
	}{
		{vault.ServiceName, vault.ProtocolID},
		{blobs.ServiceName, blobs.ProtocolID},
		{hosting.ServiceName, hosting.ProtocolID},
	} {
		t.Run(svc.name, func(t *testing.T) {
			rm, err := SeedResourceManager(config.Resources{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { rm.Close() })
			open := func(i int) error {
				p, err := identity.PeerID(ed25519.NewKeyFromSeed(fmt.Appendf(make([]byte, 0, 32), "%032d", i/50)).Public().(ed25519.PublicKey))
				if err != nil {
					t.Fatal(err)
				}
				s, err := rm.OpenStream(p, network.DirInbound)
				if err != nil {
					return err
				}
				if err := s.SetProtocol(svc.proto); err != nil {
					s.Done()
					return err
				}
				if err := s.SetService(svc.name); err != nil {
					s.Done()
					return err
				}
				return nil
			}
			for i := range 2 * conns {
				if err := open(i); err != nil {
					t.Fatalf("stream %d refused: %v", i+1, err)
				}
			}
			if err := open(2 * conns); err == nil {
				t.Fatalf("a %s stream past %d was admitted", svc.name, 2*conns)
			}
		})
	}
}
