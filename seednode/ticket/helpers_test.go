package ticket

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	mh "github.com/multiformats/go-multihash"
	"github.com/zeebo/blake3"

	"github.com/seedfleet/seedfleet/internal/wire"
)

// seededPeerID is the peer ID of the Ed25519 key with seed {seed, seed, …}:
// the same on every run, for golden tests.
func seededPeerID(t testing.TB, seed byte) peer.ID {
	t.Helper()
	sk, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize)))
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(sk)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// randomPeerID is the peer ID of a freshly generated Ed25519 key.
func randomPeerID(t testing.TB) peer.ID {
	t.Helper()
	sk, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(sk)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// sha256PeerID is a peer ID of the other kind libp2p makes: the SHA-256
// multihash of a key too long to inline (RSA, ECDSA).
func sha256PeerID(t testing.TB, data string) peer.ID {
	t.Helper()
	h, err := mh.Sum([]byte(data), mh.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	return peer.ID(h)
}

func addrs(t testing.TB, ss ...string) []ma.Multiaddr {
	t.Helper()
	out := make([]ma.Multiaddr, len(ss))
	for i, s := range ss {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			t.Fatalf("multiaddr %q: %v", s, err)
		}
		out[i] = a
	}
	return out
}

// samplePeers returns n peers (n ≤ 3) with random Ed25519 IDs (the third one
// has a SHA-256 ID) and several addresses each.
func samplePeers(t testing.TB, n int) []peer.AddrInfo {
	t.Helper()
	all := []peer.AddrInfo{
		{ID: randomPeerID(t), Addrs: addrs(t, "/ip4/127.0.0.1/tcp/7400", "/ip4/127.0.0.1/udp/7400/quic-v1", "/ip6/::1/tcp/7400")},
		{ID: randomPeerID(t), Addrs: addrs(t, "/dns4/seed.example.com/tcp/443/wss", "/ip4/192.0.2.7/udp/4001/quic-v1", "/ip6/2001:db8::7/udp/4001/quic-v1", "/dns/seed.example.com/tcp/7400")},
		{ID: sha256PeerID(t, "an RSA key"), Addrs: addrs(t, "/ip4/10.1.2.3/tcp/1", "/ip4/10.1.2.3/tcp/65535")},
	}
	return all[:n]
}

// namespaceKey returns a vault namespace key made from a fixed seed.
func namespaceKey(seed byte) (ns [32]byte, secret []byte) {
	secret = bytes.Repeat([]byte{seed}, ed25519.SeedSize)
	copy(ns[:], ed25519.NewKeyFromSeed(secret).Public().(ed25519.PublicKey))
	return ns, secret
}

func blake3Hash(s string) [32]byte { return blake3.Sum256([]byte(s)) }

// Hand-built payloads for refusal tests: each helper appends one field the way
// the encoder does, without its checks.

func pVersion(v byte) []byte { return []byte{v} }

func pBytes(b, field []byte) []byte { return wire.AppendLenBytes(b, field) }

func pUvarint(b []byte, v uint64) []byte { return binary.AppendUvarint(b, v) }

// pPeer appends one peer: ID bytes, address count, address bytes.
func pPeer(b []byte, id []byte, addrBytes ...[]byte) []byte {
	b = wire.AppendLenBytes(b, id)
	b = binary.AppendUvarint(b, uint64(len(addrBytes)))
	for _, a := range addrBytes {
		b = wire.AppendLenBytes(b, a)
	}
	return b
}
