package pairing

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/seedfleet/seedfleet/internal/wire"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/seedfleet/seedfleet/seednode/identity"
	"github.com/seedfleet/seedfleet/seednode/p2p"
)

// testConfig keeps the protocol's shape with timeouts short enough for
// tests that wait for one to fire.
var testConfig = config{step: 5 * time.Second, decide: 5 * time.Second, linger: 2 * time.Second}

// stallConfig is for tests where a peer stalls.
var stallConfig = config{step: 300 * time.Millisecond, decide: 300 * time.Millisecond, linger: 300 * time.Millisecond}

// node is a test host and its key.
type node struct {
	h   host.Host
	key ed25519.PrivateKey
}

func (n node) pub() ed25519.PublicKey { return n.key.Public().(ed25519.PublicKey) }

func (n node) info() peer.AddrInfo { return peer.AddrInfo{ID: n.h.ID(), Addrs: n.h.Addrs()} }

// newNode returns a host listening on loopback TCP only.
func newNode(t testing.TB) node {
	t.Helper()
	key, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	h, err := p2p.NewHost(p2p.HostOptions{Key: key, Listen: []string{"/ip4/127.0.0.1/tcp/0"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return node{h: h, key: key}
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mustCode(t testing.TB) Code {
	t.Helper()
	c, err := NewCode()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// otherCode returns a code other than c.
func otherCode(t testing.TB, c Code) Code {
	t.Helper()
	for {
		if o := mustCode(t); o != c {
			return o
		}
	}
}

// awaitResult is what Await returned.
type awaitResult struct {
	welcome  []byte
	approver peer.ID
	err      error
}

// startAwait runs await in the background; the returned function waits
// for its result (failing the test after a while).
func startAwait(t testing.TB, ctx context.Context, n node, code Code, req Request, cfg config) func() awaitResult {
	t.Helper()
	ch := make(chan awaitResult, 1)
	go func() {
		w, a, err := await(ctx, n.h, code, req, cfg)
		ch <- awaitResult{w, a, err}
	}()
	// The handler is set before await blocks; wait for it so that an
	// approver does not race it.
	waitFor(t, "the pairing handler", func() bool { return hasHandler(n.h) })
	return func() awaitResult {
		t.Helper()
		select {
		case r := <-ch:
			return r
		case <-time.After(20 * time.Second):
			t.Fatal("Await did not return")
			return awaitResult{}
		}
	}
}

// hasHandler reports whether h serves ProtocolID.
func hasHandler(h host.Host) bool {
	for _, p := range h.Mux().Protocols() {
		if p == ProtocolID {
			return true
		}
	}
	return false
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// decider is a Decide that records its calls.
type decider struct {
	mu      sync.Mutex
	calls   int
	req     Request
	device  ed25519.PublicKey
	welcome []byte
	err     error
}

func (d *decider) decide(_ context.Context, req Request, device ed25519.PublicKey) ([]byte, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls++
	d.req, d.device = req, device
	return d.welcome, d.err
}

func (d *decider) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.calls
}

// rawStream opens a pairing stream from n to to, bypassing Approve.
func rawStream(t testing.TB, n node, to node) network.Stream {
	t.Helper()
	ctx := testCtx(t)
	if err := n.h.Connect(ctx, to.info()); err != nil {
		t.Fatal(err)
	}
	st, err := n.h.NewStream(ctx, to.h.ID(), ProtocolID)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Reset() })
	_ = st.SetDeadline(time.Now().Add(10 * time.Second))
	return st
}

// rawAttempt opens a pairing stream from n to to, writes what build
// returns for it, closes the write side if closeWrite, and reads the first
// answer; it retries while the new device is busy finishing an earlier
// attempt.
func rawAttempt(t testing.TB, n, to node, build func(network.Stream) []byte, closeWrite bool) (network.Stream, message, error) {
	t.Helper()
	for {
		st := rawStream(t, n, to)
		if _, err := st.Write(build(st)); err != nil {
			t.Fatal(err)
		}
		if closeWrite {
			_ = st.CloseWrite()
		}
		m, err := readReply(st)
		if err == nil && m.typ == msgRefusal && m.reason == reasonBusy {
			_ = st.Close()
			time.Sleep(20 * time.Millisecond)
			continue
		}
		return st, m, err
	}
}

// bytesOf is a build function of rawAttempt that sends b.
func bytesOf(b []byte) func(network.Stream) []byte { return func(network.Stream) []byte { return b } }

// frame prefixes msg with its length.
func frame(msg []byte) []byte { return append(uvarintBytes(uint64(len(msg))), msg...) }

func uvarintBytes(v uint64) []byte { return binary.AppendUvarint(nil, v) }

// readReply reads one message from st (as the peer would).
func readReply(st network.Stream) (message, error) {
	b, err := wire.ReadFrame(bufio.NewReader(st), maxFrameSize, ErrProtocol)
	if err != nil {
		return message{}, err
	}
	return decodeMessage(b)
}

// helloFrame returns a valid hello as approver with code, for the stream
// st (whose local side is the approver), and the approver's share.
func helloFrame(t testing.TB, st network.Stream, code Code) ([]byte, share, [sidLen]byte) {
	t.Helper()
	sid, err := randomSID()
	if err != nil {
		t.Fatal(err)
	}
	sh, err := newShare(generator(code, channelID(st.Conn().LocalPeer(), st.Conn().RemotePeer()), sid[:]))
	if err != nil {
		t.Fatal(err)
	}
	m := message{typ: msgHello, sid: sid, point: sh.public}
	return frame(m.append(nil)), sh, sid
}

// checkNoLeak fails if a goroutine of this package's protocol code (not
// of its tests) is still running.
func checkNoLeak(t testing.TB) {
	t.Helper()
	var stacks string
	for range 200 {
		buf := make([]byte, 1<<20)
		stacks = string(buf[:runtime.Stack(buf, true)])
		leaked := false
		for _, g := range strings.Split(stacks, "\n\n") {
			if strings.Contains(g, "seednode/pairing.(*waiter)") || strings.Contains(g, "seednode/pairing.(*link)") ||
				strings.Contains(g, "seednode/pairing.approveOn") {
				leaked = true
			}
		}
		if !leaked {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("pairing goroutines still running:\n%s", stacks)
}
