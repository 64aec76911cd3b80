package blobs

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	"github.com/zeebo/blake3"

	"github.com/seedfleet/seedfleet/internal/wire"
)

func testHost(t testing.TB) host.Host {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
		libp2p.Transport(tcp.NewTCPTransport), libp2p.Security(libp2ptls.ID, libp2ptls.New), libp2p.DisableRelay())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func testStore(t testing.TB) *Store {
	t.Helper()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func randBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

type peers struct {
	serverStore, clientStore *Store
	server, client           *Service
	serverHost               host.Host
}

func newPeers(t *testing.T, opts ...Option) *peers {
	t.Helper()
	p := &peers{serverStore: testStore(t), clientStore: testStore(t)}
	p.serverHost = testHost(t)
	ch := testHost(t)
	p.server = newTestService(t, p.serverHost, p.serverStore, opts...)
	p.client = newTestService(t, ch, p.clientStore, opts...)
	t.Cleanup(func() { p.server.Close(); p.client.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ch.Connect(ctx, peer.AddrInfo{ID: p.serverHost.ID(), Addrs: p.serverHost.Addrs()}); err != nil {
		t.Fatal(err)
	}
	return p
}

func (p *peers) fetch(t *testing.T, h [32]byte, opts FetchOptions) (FetchStats, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return p.client.Fetch(ctx, p.serverHost.ID(), h, opts)
}

func exported(t *testing.T, s *Store, h [32]byte, off, n uint64) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := s.Export(h, &b, off, n); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestFetchWholeBlobs(t *testing.T) {
	p := newPeers(t)
	for _, size := range []int{0, 1, 1024, GroupSize - 1, GroupSize, GroupSize + 1, 5*GroupSize + 77, 3 << 20} {
		data := randBytes(uint64(size), size)
		h, err := p.serverStore.AddBytes(data)
		if err != nil {
			t.Fatal(err)
		}
		if h != blake3.Sum256(data) {
			t.Fatalf("size %d: store hash differs from BLAKE3", size)
		}
		st, err := p.fetch(t, h, FetchOptions{})
		if err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		if !st.Complete || st.Size != uint64(size) {
			t.Fatalf("size %d: %+v", size, st)
		}
		if got := exported(t, p.clientStore, h, 0, 0); !bytes.Equal(got, data) {
			t.Fatalf("size %d: fetched data differs", size)
		}
		// The fetched blob can be served on: its outboard was rebuilt.
		b, err := p.clientStore.OpenBlob(h)
		if err != nil {
			t.Fatal(err)
		}
		var s bytes.Buffer
		if err := WriteStream(&s, b.Size, b.Data, b.Outboard, nil); err != nil {
			t.Fatal(err)
		}
		b.Close()
		if _, err := ReadStream(&s, h, nil, &memSink{}); err != nil {
			t.Fatalf("size %d: re-served stream does not verify: %v", size, err)
		}
		again, err := p.fetch(t, h, FetchOptions{})
		if err != nil || !again.AlreadyComplete {
			t.Fatalf("size %d: second fetch %+v %v", size, again, err)
		}
	}
}

func TestFetchRangesThenResume(t *testing.T) {
	p := newPeers(t)
	const size = 40*GroupSize + 123
	data := randBytes(7, size)
	h, _ := p.serverStore.AddBytes(data)
	sz := uint64(size)

	// Two byte ranges in one request: only their groups arrive.
	st, err := p.fetch(t, h, FetchOptions{Size: &sz, Spans: []ByteSpan{{Offset: 3*GroupSize + 5, Length: 100}, {Offset: 20 * GroupSize, Length: 2*GroupSize + 1}}})
	if err != nil {
		t.Fatal(err)
	}
	if st.Complete || st.GroupsFetched != 1+3 {
		t.Fatalf("multi-range fetch: %+v, want 4 groups and an incomplete blob", st)
	}
	if got := exported(t, p.clientStore, h, 3*GroupSize+5, 100); !bytes.Equal(got, data[3*GroupSize+5:3*GroupSize+105]) {
		t.Fatal("range 1 differs")
	}
	if got := exported(t, p.clientStore, h, 20*GroupSize, 2*GroupSize+1); !bytes.Equal(got, data[20*GroupSize:22*GroupSize+1]) {
		t.Fatal("range 2 differs")
	}
	var b bytes.Buffer
	if err := p.clientStore.Export(h, &b, 0, 10); err == nil {
		t.Fatal("exported an unverified group of a partial blob")
	}
	// The rest: the 4 verified groups are not fetched again.
	st, err = p.fetch(t, h, FetchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !st.Complete || st.GroupsSkipped != 4 || st.GroupsFetched != NumGroups(size)-4 {
		t.Fatalf("resume: %+v", st)
	}
	if got := exported(t, p.clientStore, h, 0, 0); !bytes.Equal(got, data) {
		t.Fatal("resumed blob differs")
	}
}

// badServer serves a stream for one blob, altered by mutate.
func badServer(t *testing.T, h host.Host, data []byte, mutate func(stream []byte) []byte, stall bool) [32]byte {
	t.Helper()
	st := testStore(t)
	hash, _ := st.AddBytes(data)
	b, err := st.OpenBlob(hash)
	if err != nil {
		t.Fatal(err)
	}
	var s bytes.Buffer
	if err := WriteStream(&s, b.Size, b.Data, b.Outboard, nil); err != nil {
		t.Fatal(err)
	}
	b.Close()
	stream := mutate(s.Bytes())
	h.SetStreamHandler(ProtocolID, func(ns network.Stream) {
		defer ns.Close()
		br := bufio.NewReader(ns)
		if _, err := wire.ReadFrame(br, maxRequest, ErrBadRequest); err != nil {
			return
		}
		ns.Write([]byte{statusOK})
		if stall {
			ns.Write(stream[:len(stream)/2])
			time.Sleep(3 * time.Second)
			return
		}
		ns.Write(stream)
	})
	return hash
}

func TestBadSenders(t *testing.T) {
	const size = 10 * GroupSize
	data := randBytes(99, size)
	cases := []struct {
		name   string
		mutate func([]byte) []byte
		stall  bool
		want   string
		group  int64 // -1: no particular group
	}{
		{"bit flip in the last group", func(s []byte) []byte { s = bytes.Clone(s); s[len(s)-10] ^= 0x04; return s }, false, "does not match", 9},
		{"truncated", func(s []byte) []byte { return s[:len(s)-GroupSize/2] }, false, "ended early", 9},
		{"extra bytes", func(s []byte) []byte { return append(bytes.Clone(s), 1, 2, 3) }, false, "past the end", -1},
		{"lies about size", func(s []byte) []byte { s = bytes.Clone(s); s[0] ^= 0x01; return s }, false, "", -1},
		{"stalls", func(s []byte) []byte { return s }, true, "stopped sending", -1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			client := testStore(t)
			ch, sh := testHost(t), testHost(t)
			hash := badServer(t, sh, data, tc.mutate, tc.stall)
			svc := newTestService(t, ch, client, WithIdleTimeout(time.Second))
			defer svc.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := ch.Connect(ctx, peer.AddrInfo{ID: sh.ID(), Addrs: sh.Addrs()}); err != nil {
				t.Fatal(err)
			}
			_, err := svc.Fetch(ctx, sh.ID(), hash, FetchOptions{})
			if err == nil {
				t.Fatal("bad sender accepted")
			}
			if tc.want != "" && !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q lacks %q", err, tc.want)
			}
			var ve *VerifyError
			if tc.group >= 0 && (!errors.As(err, &ve) || ve.Group != uint64(tc.group)) {
				t.Fatalf("error %v: want a verification error at group %d", err, tc.group)
			}
			t.Logf("%v", err)
			// Nothing unverified was kept: every group the store marks as
			// verified holds the right bytes, and the blob is not complete.
			st, err := client.Stat(hash)
			if err != nil {
				t.Fatal(err)
			}
			if tc.name != "extra bytes" && st.State == Complete {
				t.Fatal("a bad transfer completed the blob")
			}
			if st.State == Partial {
				bm, _ := client.bitmap(hash, st.Size)
				for g := uint64(0); g < NumGroups(st.Size); g++ {
					if bm.has(g) {
						got := exported(t, client, hash, g*GroupSize, GroupSize)
						if !bytes.Equal(got, data[g*GroupSize:min((g+1)*GroupSize, size)]) {
							t.Fatalf("group %d marked verified holds wrong data", g)
						}
					}
				}
			}
		})
	}
}

// TestRefusalReasonSanitized: a peer's refusal reaches the user as text
// without its terminal escapes or line breaks.
func TestRefusalReasonSanitized(t *testing.T) {
	ch, sh := testHost(t), testHost(t)
	sh.SetStreamHandler(ProtocolID, func(ns network.Stream) {
		defer ns.Close()
		if _, err := wire.ReadFrame(bufio.NewReader(ns), maxRequest, ErrBadRequest); err != nil {
			return
		}
		_, _ = ns.Write(wire.AppendFrame([]byte{statusRefused}, []byte("go away\x1b[2J\nforged line")))
	})
	svc := newTestService(t, ch, testStore(t))
	defer svc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := ch.Connect(ctx, peer.AddrInfo{ID: sh.ID(), Addrs: sh.Addrs()}); err != nil {
		t.Fatal(err)
	}
	_, err := svc.Fetch(ctx, sh.ID(), [32]byte{1}, FetchOptions{})
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "go away\uFFFD[2J forged line") {
		t.Fatalf("err = %v; want a refusal with the reason sanitized", err)
	}
}
