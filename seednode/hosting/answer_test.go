package hosting

import (
	"crypto/ed25519"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

func testPeer(t testing.TB, seed byte, addrs ...string) peer.AddrInfo {
	t.Helper()
	key := ed25519.NewKeyFromSeed(append(make([]byte, 31), seed))
	priv, err := crypto.UnmarshalEd25519PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	info := peer.AddrInfo{ID: id}
	for _, s := range addrs {
		info.Addrs = append(info.Addrs, ma.StringCast(s))
	}
	return info
}

func sampleAnswer(t testing.TB) *Answer {
	return &Answer{
		Message: "hosted 1 vault on 3 seeds",
		Seeds: []peer.AddrInfo{testPeer(t, 1, "/ip4/127.0.0.1/tcp/7400", "/ip4/127.0.0.1/udp/7400/quic-v1"),
			testPeer(t, 2, "/ip4/127.0.0.1/tcp/7410")},
		Vaults: []VaultStatus{{Namespace: [32]byte{7}, Bytes: Usage{Limit: 1 << 30, Used: 12345}, Entries: Usage{Limit: 100000, Used: 12},
			Replicas: 3, Synced: 2, LastSync: time.UnixMicro(1_800_000_000_000_000).UTC()}},
		AgentVaults: Usage{Limit: 16, Used: 1},
		AgentBytes:  Usage{Limit: 4 << 30, Used: 12345},
	}
}

func TestAnswerRoundTrip(t *testing.T) {
	a := sampleAnswer(t)
	got, err := UnmarshalAnswer(a.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, a) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, a)
	}
	if !got.OK() || got.Err() != nil {
		t.Fatal("an accepted answer reads as refused")
	}
}

func TestRefusalReadsWell(t *testing.T) {
	a := &Answer{Reason: ReasonRateLimited, Message: "too many requests from 127.0.0.0/24\x1b[2J; try again later",
		RetryAfter: 30 * time.Second}
	got, err := UnmarshalAnswer(a.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	var refused *RefusedError
	if !errors.As(got.Err(), &refused) || refused.Reason != ReasonRateLimited || refused.RetryAfter != 30*time.Second {
		t.Fatalf("Err() = %v", got.Err())
	}
	msg := got.Err().Error()
	if strings.ContainsRune(msg, 0x1b) {
		t.Fatalf("a control character from the seed reaches the user: %q", msg)
	}
	if !strings.Contains(msg, "RateLimited") || !strings.Contains(msg, "retry after 30s") {
		t.Fatalf("refusal reads %q", msg)
	}
}

func TestAnswerLimits(t *testing.T) {
	a := &Answer{Message: strings.Repeat("é", MaxMessageLen)} // 2 bytes each: cut mid-way
	got, err := UnmarshalAnswer(a.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Message) > MaxMessageLen || strings.ContainsRune(got.Message, '\uFFFD') {
		t.Fatalf("long message cut badly: %d bytes, replacement characters: %v", len(got.Message), strings.ContainsRune(got.Message, '\uFFFD'))
	}
	bad := sampleAnswer(t).Marshal()
	bad[1] = byte(reasonCount)
	if _, err := UnmarshalAnswer(bad); !errors.Is(err, ErrMalformed) {
		t.Fatalf("unknown reason: %v", err)
	}
	if _, err := UnmarshalAnswer(sampleAnswer(t).Marshal()[:20]); !errors.Is(err, ErrMalformed) {
		t.Fatalf("truncated answer: %v", err)
	}
}
