package main

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"log"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/seedfleet/seedfleet/seednode/client"
	"github.com/seedfleet/seedfleet/seednode/discovery"
	"github.com/seedfleet/seedfleet/seednode/identity"
	"github.com/seedfleet/seedfleet/seednode/p2p"
	"github.com/seedfleet/seedfleet/seednode/relay"
	"github.com/seedfleet/seedfleet/seednode/rendezvous"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

// legitResult is what the legitimate device did in one RUN.
type legitResult struct {
	Label                         string
	Rounds                        int
	SyncOK, SyncTotal             int
	SyncMillis                    []float64 // every sync, failed ones included (the time the device waited)
	ReserveOK, ReserveTotal       int
	RendezvousOK, RendezvousTotal int
	LookupOK, LookupTotal         int // rendezvous lookups of its agent that return exactly its own record
	DHTOK, DHTTotal               int // DHT lookups of its vault that find the seed
	Errors                        []string
	ReserveMillis, RegisterMillis []float64
	DHTMillis, LookupMillis       []float64
}

// runFloodDevice is the legitimate device: the home -home (its key is the
// seed's allowed key and the author of the hosted vault -vault), one host
// without a listen address, a vault-sync service and a DHT client. On "RUN
// <label> <duration>" it does, every 500 ms: write a changed entry and sync
// the vault with the seed, reserve a relay slot, register its rendezvous
// record for its own agent, look its agent up, and look its vault up in the
// DHT; RESULT follows.
func runFloodDevice() {
	seed, err := p2p.ParsePeerAddr(*seedArg)
	if err != nil {
		log.Fatal(err)
	}
	ns, err := vault.ParseNamespaceID(*vaultArg)
	if err != nil {
		log.Fatal(err)
	}
	home, err := client.Open(*homeArg)
	if err != nil {
		log.Fatal(err)
	}
	defer home.Close()
	h, err := p2p.NewHost(p2p.HostOptions{Key: home.Key})
	if err != nil {
		log.Fatal(err)
	}
	defer h.Close()
	svc, err := vault.NewService(h, home.Store, vault.WithPolicy(vault.NewHostedSet(ns)))
	if err != nil {
		log.Fatal(err)
	}
	defer svc.Close()
	d, err := discovery.NewDHT(h, discovery.DHTOptions{BootstrapPeers: []peer.AddrInfo{seed}})
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	if err := h.Connect(ctx, seed); err != nil {
		log.Fatalf("connect to the seed: %v", err)
	}
	for d.RoutingTable().Size() == 0 {
		if ctx.Err() != nil {
			log.Fatal("the DHT client never added the seed to its routing table")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	pub := home.Key.Public().(ed25519.PublicKey)
	agent := identity.DIDKey(pub)
	circuit, err := relay.CircuitAddr(seed)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("READY")
	round := 0
	commands(func(cmd string, args []string) {
		if cmd != "RUN" || len(args) != 2 {
			log.Fatalf("unknown command %q %q", cmd, args)
		}
		dur, err := time.ParseDuration(args[1])
		if err != nil {
			log.Fatal(err)
		}
		res := legitResult{Label: args[0]}
		fail := func(what string, err error) {
			if len(res.Errors) < 10 {
				res.Errors = append(res.Errors, fmt.Sprintf("round %d: %s: %v", round, what, err))
			}
		}
		timed := func(ms *[]float64, f func(context.Context) error) error {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			t0 := time.Now()
			err := f(ctx)
			*ms = append(*ms, float64(time.Since(t0).Microseconds())/1000)
			return err
		}
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for end := time.Now().Add(dur); ; {
			round++
			res.Rounds++
			key := []byte(fmt.Sprintf("notes/%d", round%16))
			if _, err := home.Put(ns, key, []byte(fmt.Sprintf("change %d at %s", round, time.Now().Format(time.RFC3339Nano)))); err != nil {
				log.Fatal(err)
			}
			res.SyncTotal++
			err := timed(&res.SyncMillis, func(ctx context.Context) error {
				st, err := svc.Sync(ctx, seed.ID, ns, vault.SyncOptions{})
				if err == nil && (st.ItemsSent == 0 || st.PeerRefused != 0) {
					err = fmt.Errorf("sent %d entries (want the changed ones), the seed refused %d (%s)", st.ItemsSent, st.PeerRefused, st.PeerRefusal)
				}
				return err
			})
			if err == nil {
				res.SyncOK++
			} else {
				fail("sync", err)
			}
			res.ReserveTotal++
			if err := timed(&res.ReserveMillis, func(ctx context.Context) error { _, err := relay.Reserve(ctx, h, seed); return err }); err == nil {
				res.ReserveOK++
			} else {
				fail("reserve", err)
			}
			res.RendezvousTotal++
			if err := timed(&res.RegisterMillis, func(ctx context.Context) error {
				rec, err := rendezvous.NewRecord(agent, "laptop", home.Key, []ma.Multiaddr{circuit}, time.Now())
				if err != nil {
					return err
				}
				return rendezvous.Register(ctx, h, seed.ID, rec)
			}); err == nil {
				res.RendezvousOK++
			} else {
				fail("rendezvous register", err)
			}
			res.LookupTotal++
			if err := timed(&res.LookupMillis, func(ctx context.Context) error {
				recs, err := rendezvous.Lookup(ctx, h, seed.ID, agent)
				if err == nil && (len(recs) != 1 || !recs[0].Device.Equal(pub)) {
					err = fmt.Errorf("%d records, want only this device's", len(recs))
				}
				return err
			}); err == nil {
				res.LookupOK++
			} else {
				fail("rendezvous lookup", err)
			}
			res.DHTTotal++
			if err := timed(&res.DHTMillis, func(ctx context.Context) error {
				rt := d.RoutingTable().Size()
				found := discovery.FindProvidersVia(ctx, d, []peer.AddrInfo{seed}, discovery.VaultCID(ns), 1)
				if len(found) != 1 || found[0].ID != seed.ID {
					return fmt.Errorf("found %v, want the seed (routing table: %d peers before the lookup; kad-dht drops a peer whose answer failed)", found, rt)
				}
				return nil
			}); err == nil {
				res.DHTOK++
			} else {
				fail("DHT lookup", err)
			}
			if time.Now().After(end) {
				break
			}
			<-tick.C
		}
		reply("RESULT", res)
	})
}
