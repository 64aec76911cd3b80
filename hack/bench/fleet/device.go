package main

import (
	"crypto/ed25519"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"

	"github.com/seedfleet/seedfleet/seednode/p2p"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

// device is a simulated device: its key (peer ID and entry author), the
// vault it writes, and the write capability the vault's namespace key gave
// it. It syncs with the real vault-sync service on a libp2p host of its own.
type device struct {
	key     ed25519.PrivateKey
	author  vault.AuthorID
	ns      vault.NamespaceID
	consent vault.Consent
	written int
}

// newVaultKey returns a vault's namespace key and ID.
func newVaultKey() (ed25519.PrivateKey, vault.NamespaceID) {
	pub, key, _ := ed25519.GenerateKey(nil)
	return key, vault.NamespaceID(pub)
}

// newDevice returns a device allowed to write the vault of nsKey.
func newDevice(nsKey ed25519.PrivateKey) *device {
	pub, key, _ := ed25519.GenerateKey(nil)
	d := &device{key: key, author: vault.AuthorID(pub), ns: vault.NamespaceID(nsKey.Public().(ed25519.PublicKey))}
	d.consent = vault.NewCapability(nsKey, d.author, 0)
	return d
}

// entries signs n new entries (keys this device never wrote before).
func (d *device) entries(n int) []vault.Item {
	out := make([]vault.Item, n)
	now := uint64(time.Now().UnixMicro())
	for i := range out {
		d.written++
		val := binary.BigEndian.AppendUint64(make([]byte, 0, 32), uint64(d.written))
		val = append(val, "fleet bench entry value ......"[:24]...)
		e := vault.Entry{Namespace: d.ns, Key: fmt.Appendf(nil, "notes/%s/%06d", d.author.Short(), d.written),
			Author: d.author, Hash: vault.HashOf(val), Size: uint64(len(val)), Timestamp: now + uint64(i)}
		se, err := vault.Sign(e, d.key, d.consent, nil)
		if err != nil {
			panic(err) // the fields above are valid by construction
		}
		out[i] = vault.Item{Entry: se, Content: val}
	}
	return out
}

// write signs n new entries and stores them in st (as the app does).
func (d *device) write(st *vault.Store, n int) error {
	_, err := st.Insert(d.entries(n), vault.NewOrigin(), false)
	return err
}

// online starts the device's host (no listen address, as a device behind
// NAT) with a vault-sync service on st that knows the seed's address; the
// first sync dials it. opts are extra service options.
func (d *device) online(st *vault.Store, seed peer.AddrInfo, opts ...vault.Option) (host.Host, *vault.Service, error) {
	h, err := p2p.NewHost(p2p.HostOptions{Key: d.key})
	if err != nil {
		return nil, nil, err
	}
	h.Peerstore().AddAddrs(seed.ID, seed.Addrs, peerstore.PermanentAddrTTL)
	svc, err := vault.NewService(h, st, append([]vault.Option{vault.WithPolicy(vault.NewHostedSet(d.ns))}, opts...)...)
	if err != nil {
		h.Close()
		return nil, nil, err
	}
	return h, svc, nil
}
