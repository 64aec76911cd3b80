package rendezvous

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/seedfleet/seedfleet/internal/p2ptest"
	"github.com/seedfleet/seedfleet/internal/wire"
	"github.com/seedfleet/seedfleet/seednode/identity"
	"github.com/seedfleet/seedfleet/seednode/p2p"
)

var quietLog = slog.New(slog.DiscardHandler)

func mustKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	k, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func pubOf(k ed25519.PrivateKey) ed25519.PublicKey { return k.Public().(ed25519.PublicKey) }

// newAgent returns a fresh agent root key's did:key.
func newAgent(t testing.TB) string { return identity.DIDKey(pubOf(mustKey(t))) }

func mustAddr(t testing.TB, s string) ma.Multiaddr {
	t.Helper()
	a, err := ma.NewMultiaddr(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// fakeClock is a settable clock; it starts at the real time so that the
// client's own sanity checks (which use the real clock) agree with it.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Now().Truncate(time.Second)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// allowSet is an Authorizer that allows a fixed set of (agent, device).
type allowSet struct {
	mu  sync.Mutex
	set map[string]bool
}

func newAllowSet() *allowSet { return &allowSet{set: map[string]bool{}} }

func (a *allowSet) allow(agent string, dev ed25519.PublicKey) {
	a.mu.Lock()
	a.set[agent+"|"+string(dev)] = true
	a.mu.Unlock()
}

func (a *allowSet) revoke(agent string, dev ed25519.PublicKey) {
	a.mu.Lock()
	delete(a.set, agent+"|"+string(dev))
	a.mu.Unlock()
}

// denyText is the start of every refusal of allowSet; tests look for it
// in the seed's reasons.
const denyText = "not listed in the test agent document"

func (a *allowSet) Authorized(agent string, dev ed25519.PublicKey) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.set[agent+"|"+string(dev)] {
		return nil
	}
	return fmt.Errorf("%s: device %x of %s", denyText, dev[:4], agent)
}

// device is a device host; its key is the host's key.
type device struct {
	h   host.Host
	key ed25519.PrivateKey
}

func (d device) pub() ed25519.PublicKey { return d.key.Public().(ed25519.PublicKey) }

// newDevice returns a dial-only host that knows seed's addresses.
func newDevice(t testing.TB, seed host.Host) device {
	t.Helper()
	key := mustKey(t)
	h, err := p2p.NewHost(p2p.HostOptions{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	h.Peerstore().AddAddrs(seed.ID(), seed.Addrs(), peerstore.PermanentAddrTTL)
	return device{h: h, key: key}
}

// record returns d's signed record for agent at time ts.
func (d device) record(t testing.TB, agent, context string, ts time.Time, addrs ...string) Record {
	t.Helper()
	var as []ma.Multiaddr
	for _, a := range addrs {
		as = append(as, mustAddr(t, a))
	}
	r, err := NewRecord(agent, context, d.key, as, ts)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// forge signs r with key without checking its fields, to build records a
// correct client would never send. r.Device must be 32 bytes.
func forge(r Record, key ed25519.PrivateKey) Record {
	msg := append(append([]byte{}, recordDomain...), r.appendUnsigned(nil)...)
	copy(r.Signature[:], ed25519.Sign(key, msg))
	return r
}

// seedFixture is a seed running the service, with a fake clock and an
// allowSet authorizer.
type seedFixture struct {
	h     host.Host
	svc   *Service
	clock *fakeClock
	auth  *allowSet
	reg   *prometheus.Registry
}

func newSeed(t testing.TB, opts ...Option) *seedFixture {
	t.Helper()
	f := &seedFixture{h: p2ptest.NewHost(t, true), clock: newFakeClock(), auth: newAllowSet(), reg: prometheus.NewRegistry()}
	all := append([]Option{WithClock(f.clock.Now), WithRegisterer(f.reg), WithLogger(quietLog)}, opts...)
	svc, err := New(f.h, f.auth, all...)
	if err != nil {
		t.Fatal(err)
	}
	f.svc = svc
	t.Cleanup(func() { f.svc.Close() })
	return f
}

// deviceOf returns a new device of agent, allowed by the seed's authorizer.
func (f *seedFixture) deviceOf(t testing.TB, agent string) device {
	d := newDevice(t, f.h)
	f.auth.allow(agent, d.pub())
	return d
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// sendRaw sends frame (which must include its length prefix) to seed as
// one rendezvous request and decodes the response as one of kind.
func sendRaw(t testing.TB, h host.Host, seed peer.ID, frame []byte, kind byte) (response, error) {
	t.Helper()
	ctx := testCtx(t)
	st, err := h.NewStream(ctx, seed, ProtocolID)
	if err != nil {
		t.Fatalf("open stream: %v", err)
	}
	defer st.Close()
	_ = st.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := st.Write(frame); err != nil {
		t.Fatalf("write request: %v", err)
	}
	_ = st.CloseWrite()
	br := bufio.NewReader(st)
	l, err := wire.ReadLength(br, MaxResponseSize, ErrProtocol)
	if err != nil {
		return response{}, err
	}
	body, err := wire.ReadBody(br, nil, l)
	if err != nil {
		return response{}, err
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("seed sent more than one response (next read: %v)", err)
	}
	return decodeResponse(body, kind)
}

// frameOf prefixes msg with its length.
func frameOf(msg []byte) []byte {
	return append(binary.AppendUvarint(nil, uint64(len(msg))), msg...)
}

func registerFrame(r Record) []byte {
	return frameOf((&request{kind: reqRegister, record: r}).append(nil))
}

// metric returns the value of the metric name (with label value lv, if
// not empty) in reg.
func metric(t testing.TB, reg *prometheus.Registry, name, lv string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if lv != "" && (len(m.GetLabel()) == 0 || m.GetLabel()[0].GetValue() != lv) {
				continue
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue()
			}
		}
	}
	t.Fatalf("metric %s{%s} not found", name, lv)
	return 0
}
