package vault

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
)

// logCapture is a slog handler that keeps every record as one line.
type logCapture struct {
	mu    sync.Mutex
	lines []string
	note  chan struct{}
}

func newLogCapture() *logCapture { return &logCapture{note: make(chan struct{}, 1)} }

func (c *logCapture) Enabled(context.Context, slog.Level) bool { return true }
func (c *logCapture) WithAttrs([]slog.Attr) slog.Handler       { return c }
func (c *logCapture) WithGroup(string) slog.Handler            { return c }
func (c *logCapture) Handle(_ context.Context, r slog.Record) error {
	line := r.Level.String() + " " + r.Message
	r.Attrs(func(a slog.Attr) bool {
		line += " " + a.Key + "=" + a.Value.String()
		return true
	})
	c.mu.Lock()
	c.lines = append(c.lines, line)
	c.mu.Unlock()
	select {
	case c.note <- struct{}{}:
	default:
	}
	return nil
}

// wait returns the first line containing substr, failing after timeout.
func (c *logCapture) wait(t testing.TB, substr string, timeout time.Duration) string {
	t.Helper()
	deadline := time.After(timeout)
	for {
		c.mu.Lock()
		for _, l := range c.lines {
			if strings.Contains(l, substr) {
				c.mu.Unlock()
				return l
			}
		}
		lines := append([]string(nil), c.lines...)
		c.mu.Unlock()
		select {
		case <-c.note:
		case <-deadline:
			t.Fatalf("no log line containing %q within %s; log: %q", substr, timeout, lines)
		}
	}
}

// newLoggedPair is newPair with extra options for B, the side under test.
func newLoggedPair(t testing.TB, ns NamespaceID, bOpts ...Option) *pair {
	t.Helper()
	ha, hb := testHost(t), testHost(t)
	p := &pair{a: testStore(t, StoreOptions{NoSync: true}), b: testStore(t, StoreOptions{NoSync: true}), ns: ns}
	p.hostedByB = NewHostedSet(ns)
	p.sa = newTestService(t, ha, p.a, WithPolicy(NewHostedSet(ns)))
	p.sb = newTestService(t, hb, p.b, append([]Option{WithPolicy(p.hostedByB)}, bOpts...)...)
	t.Cleanup(func() { p.sa.Close(); p.sb.Close() })
	connect(t, ha, hb)
	return p
}

// rawSession is a hand-driven vault-sync stream: a peer that may misbehave.
type rawSession struct {
	t  testing.TB
	s  network.Stream
	fw frameWriter
}

func dialRaw(t testing.TB, to host.Host) *rawSession {
	t.Helper()
	h := testHost(t)
	connect(t, h, to)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := h.NewStream(ctx, to.ID(), ProtocolID)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Reset() })
	return &rawSession{t: t, s: s, fw: frameWriter{w: bufio.NewWriter(s)}}
}

func (r *rawSession) hello(ns NamespaceID) {
	p := []byte{protocolVersion}
	p = append(p, ns[:]...)
	p = append(p, make([]byte, saltLen)...)
	r.frame(frameHello, append(p, 0))
}

func (r *rawSession) frame(typ byte, p []byte) {
	if err := r.fw.write(typ, p); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rawSession) author(se *SignedEntry) {
	ref := refOf(se)
	r.frame(frameAuthor, appendAuthorRef(nil, &ref))
}

func (r *rawSession) items(row int, items ...Item) {
	p := binary.AppendUvarint(nil, uint64(len(items)))
	for i := range items {
		p = appendWireItem(p, row, &items[i])
	}
	r.frame(frameItems, p)
}

func (r *rawSession) raw(b []byte) {
	if _, err := r.fw.w.Write(b); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rawSession) flush() {
	if err := r.fw.flush(); err != nil {
		r.t.Fatal(err)
	}
}

// drain reads until the server ends the stream. It returns the error frame
// the server sent, if one arrived before the stream was reset, and fails the
// test if the stream is still open after limit.
func (r *rawSession) drain(limit time.Duration) *PeerError {
	r.t.Helper()
	_ = r.s.SetReadDeadline(time.Now().Add(limit))
	fr := frameReader{r: bufio.NewReader(r.s)}
	var pe *PeerError
	for {
		typ, p, err := fr.next()
		if err != nil {
			var ne interface{ Timeout() bool }
			if errors.As(err, &ne) && ne.Timeout() {
				r.t.Fatalf("the server did not end the session within %s", limit)
			}
			_ = r.s.Close()
			return pe
		}
		if typ == frameError {
			errors.As(decodePeerError(p), &pe)
		}
	}
}

// signWith signs e as w's author with an arbitrary consent.
func signWith(t testing.TB, w *writer, key, value string, consent Consent, nsKey ed25519.PrivateKey) Item {
	t.Helper()
	v := []byte(value)
	e := Entry{Namespace: w.ns, Key: []byte(key), Author: w.author, Hash: HashOf(v), Size: uint64(len(v)), Timestamp: nowMicros() - 1000}
	se, err := Sign(e, w.authorKey, consent, nsKey)
	if err != nil {
		t.Fatal(err)
	}
	return Item{Entry: se, Content: v}
}

func TestBadPeerInput(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	nsKey := newNamespaceKey(rng)
	w := newWriter(t, nsKey, rng)
	other := newWriter(t, nsKey, rng) // a second genuine author of the vault
	wrongNS := newNamespaceKey(rng)

	valid := func() Item { return w.item(t, "evil/valid", "payload", nowMicros()-1000) }
	forgedAuthor := valid()
	forgedAuthor.Entry.AuthorSig[3] ^= 0x20
	forgedNsSig := signWith(t, w, "evil/ns", "payload", Consent{Kind: ConsentNamespaceSig}, nsKey)
	forgedNsSig.Entry.Consent.Sig[9] ^= 1
	wrongCap := signWith(t, w, "evil/cap", "payload", NewCapability(wrongNS, w.author, 0), nil)
	stolenCap := signWith(t, w, "evil/stolen", "payload", other.consent, nil) // other's capability, w's entry
	badContent := valid()
	badContent.Content = []byte("PAYLOAD") // same size, different bytes
	shortContent := valid()
	shortContent.Content = []byte("payloa")
	http := "GET /seedfleet/vault HTTP/1.1\r\nHost: localhost\r\nUser-Agent: curl/8.0\r\nAccept: */*\r\n\r\n" + strings.Repeat("x", 64)

	// code is the error code the server reports to the peer (a frame length
	// of zero or past the limit included), or 0 when the stream is not
	// frames at all any more (a varint overflow) or ends mid-frame, and the
	// server just resets it.
	cases := []struct {
		name string
		send func(r *rawSession)
		want string // in the server's log line for the ended session
		code int
	}{
		{"forged author signature", func(r *rawSession) {
			r.author(&forgedAuthor.Entry)
			r.items(0, forgedAuthor)
			r.frame(frameEndTurn, nil)
		}, "author signature does not verify", CodeBadEntry},
		{"forged namespace signature", func(r *rawSession) {
			r.author(&forgedNsSig.Entry)
			r.items(0, forgedNsSig)
			r.frame(frameEndTurn, nil)
		}, "namespace signature does not verify", CodeBadEntry},
		{"capability signed by the wrong key", func(r *rawSession) {
			r.author(&wrongCap.Entry)
			r.items(0, wrongCap)
			r.frame(frameEndTurn, nil)
		}, "write capability signature does not verify", CodeBadEntry},
		{"capability of another author", func(r *rawSession) {
			r.author(&stolenCap.Entry)
			r.items(0, stolenCap)
			r.frame(frameEndTurn, nil)
		}, "write capability signature does not verify", CodeBadEntry},
		{"oversized frame", func(r *rawSession) {
			r.raw(binary.AppendUvarint(nil, maxFrame+1))
			r.raw(make([]byte, 4096))
		}, fmt.Sprintf("frame of %d bytes", maxFrame+1), CodeProtocol},
		{"huge frame length", func(r *rawSession) {
			r.raw(binary.AppendUvarint(nil, 1<<40))
		}, fmt.Sprintf("frame of %d bytes", uint64(1<<40)), CodeProtocol},
		{"unknown frame type", func(r *rawSession) {
			r.frame(99, []byte("what is this"))
			r.frame(frameEndTurn, nil)
		}, "unexpected frame type 99", CodeProtocol},
		{"frame type 0", func(r *rawSession) {
			r.frame(0, nil)
		}, "unexpected frame type 0", CodeProtocol},
		{"second hello", func(r *rawSession) {
			r.hello(w.ns)
		}, "unexpected frame type 1", CodeProtocol},
		{"items naming an unannounced author row", func(r *rawSession) {
			r.items(0, valid())
			r.frame(frameEndTurn, nil)
		}, "item names author row 0 of 0", CodeProtocol},
		{"items naming a row past the table", func(r *rawSession) {
			it := valid()
			r.author(&it.Entry)
			r.items(1, it)
			r.frame(frameEndTurn, nil)
		}, "item names author row 1 of 1", CodeProtocol},
		{"inline value not matching the hash", func(r *rawSession) {
			r.author(&badContent.Entry)
			r.items(0, badContent)
			r.frame(frameEndTurn, nil)
		}, "does not hash to the entry's hash", CodeProtocol},
		{"inline value not matching the size", func(r *rawSession) {
			r.author(&shortContent.Entry)
			r.items(0, shortContent)
			r.frame(frameEndTurn, nil)
		}, "inline value of 6 bytes for an entry of 7 bytes", CodeProtocol},
		{"garbage: varint overflow", func(r *rawSession) {
			r.raw([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
		}, "overflows", CodeProtocol},
		{"garbage: empty frame", func(r *rawSession) {
			r.raw([]byte{0, 0, 0, 0})
		}, "empty frame", CodeProtocol},
		{"garbage: non-minimal frame length", func(r *rawSession) {
			r.raw([]byte{0x82, 0x00, frameEndTurn, 0})
		}, "not a minimal uvarint", CodeProtocol},
		{"garbage: HTTP request", func(r *rawSession) {
			r.raw([]byte(http)) // 'G' = 71-byte frame of type 'E' = 69
		}, "unexpected frame type 69", CodeProtocol},
		{"garbage: truncated frame", func(r *rawSession) {
			r.raw([]byte{100, frameItems, 1, 2, 3})
			r.flush()
			_ = r.s.CloseWrite()
		}, "unexpected EOF", 0},
		{"garbage: truncated item", func(r *rawSession) {
			it := valid()
			r.author(&it.Entry)
			p := appendWireItem(binary.AppendUvarint(nil, 1), 0, &it)
			r.frame(frameItems, p[:len(p)-20])
		}, "truncated or malformed", CodeProtocol},
		{"garbage: item count beyond the frame", func(r *rawSession) {
			it := valid()
			r.author(&it.Entry)
			p := appendWireItem(binary.AppendUvarint(nil, 1000), 0, &it)
			r.frame(frameItems, p)
		}, "claims 1000 items", CodeProtocol},
		{"garbage: author frame with consent kind 7", func(r *rawSession) {
			r.frame(frameAuthor, append(w.author[:], 7))
		}, "unknown consent kind 7", CodeProtocol},
		{"garbage: split question too deep", func(r *rawSession) {
			r.frame(frameSplit, append([]byte{200}, make([]byte, 100+16*wireFPLen)...))
		}, "node depth 200 exceeds", CodeProtocol},
		{"garbage: ID list longer than its frame", func(r *rawSession) {
			r.frame(frameIDList, []byte{0, 50, 1, 2, 3})
		}, "truncated or malformed ID list", CodeProtocol},
		{"garbage: trailing bytes after a question", func(r *rawSession) {
			r.frame(frameWantAll, []byte{0, 0xaa})
		}, "trailing bytes", CodeProtocol},
		{"garbage: malformed error frame", func(r *rawSession) {
			r.frame(frameError, nil)
		}, "malformed error frame", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			logs := newLogCapture()
			p := newLoggedPair(t, w.ns, WithLogger(slog.New(logs)), WithIdleTimeout(5*time.Second))
			// B already holds part of the vault; A has entries B lacks.
			for i := range 20 {
				insert(t, p.b, w.item(t, fmt.Sprintf("b/%02d", i), fmt.Sprint("b", i), nowMicros()-1e6))
				insert(t, p.a, other.item(t, fmt.Sprintf("a/%02d", i), fmt.Sprint("a", i), nowMicros()-1e6))
			}
			want := dump(t, p.b, w.ns)
			for k, v := range dump(t, p.a, w.ns) {
				want[k] = v
			}

			r := dialRaw(t, p.sb.host)
			r.hello(w.ns)
			c.send(r)
			r.flush()
			pe := r.drain(10 * time.Second)
			line := logs.wait(t, "session ended", 10*time.Second)
			t.Logf("server: %s", line)
			if !strings.Contains(line, c.want) || !strings.Contains(line, w.ns.Short()) {
				t.Fatalf("server ended the session with %q, want an error mentioning %q", line, c.want)
			}
			switch {
			case c.code == 0 && pe != nil:
				t.Fatalf("unexpected error frame: code %d: %s", pe.Code, pe.Message)
			case c.code != 0 && pe == nil:
				t.Fatalf("the server did not tell the peer why (want code %d)", c.code)
			case c.code != 0 && (pe.Code != c.code || !strings.Contains(pe.Message, c.want)):
				t.Fatalf("server told the peer: code %d: %q; want code %d mentioning %q", pe.Code, pe.Message, c.code, c.want)
			}

			// B keeps serving: a well-behaved sync right afterwards works.
			st := p.sync(t)
			if st.ItemsReceived != 20 || st.ItemsSent != 20 {
				t.Fatalf("sync after the bad session: %+v", st)
			}
			// Wait for every session of B to end (and its ingester to
			// drain), then check that nothing of the bad session was stored.
			p.sb.Close()
			p.sa.Close()
			got := dump(t, p.b, w.ns)
			if len(got) != len(want) {
				t.Fatalf("B holds %d entries, want %d: the bad session stored something", len(got), len(want))
			}
			for k, v := range want {
				if got[k] != v {
					t.Fatal("B's vault differs from the expected union")
				}
			}
			sameVault(t, p.a, p.b, w.ns)
			checkAggregates(t, p.b, w.ns)
			if evil, err := p.b.List(w.ns, []byte("evil/"), 0); err != nil || len(evil) != 0 {
				t.Fatalf("B stored %d entries of the bad peer (err %v)", len(evil), err)
			}
		})
	}
}

func TestSyncNotHosted(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 24))
	w := newWriter(t, newNamespaceKey(rng), rng)
	unhosted := newWriter(t, newNamespaceKey(rng), rng)
	p := newPair(t, w.ns)
	insert(t, p.a, w.item(t, "hosted", "1", nowMicros()-1000))
	insert(t, p.a, unhosted.item(t, "unhosted", "2", nowMicros()-1000))

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := p.sa.Sync(ctx, p.sb.host.ID(), unhosted.ns, SyncOptions{})
	if !errors.Is(err, ErrNotHosted) {
		t.Fatalf("sync of an unhosted vault: err %v, want ErrNotHosted", err)
	}
	if !strings.Contains(err.Error(), unhosted.ns.String()) {
		t.Fatalf("error %q does not name vault %s", err, unhosted.ns)
	}
	var pe *PeerError
	if !errors.As(err, &pe) || pe.Code != CodeNotHosted {
		t.Fatalf("error %v is not a PeerError with CodeNotHosted", err)
	}
	if errors.Is(&PeerError{Code: CodeProtocol, Message: "x"}, ErrNotHosted) {
		t.Fatal("a protocol error must not match ErrNotHosted")
	}
	if d := dump(t, p.b, unhosted.ns); len(d) != 0 {
		t.Fatal("B stored entries of a vault it does not host")
	}

	// The hosted vault still syncs, and hosting the other one makes it sync.
	if st := p.sync(t); st.ItemsSent != 1 {
		t.Fatalf("hosted sync: %+v", st)
	}
	p.hostedByB.Add(unhosted.ns)
	st, err := p.sa.Sync(ctx, p.sb.host.ID(), unhosted.ns, SyncOptions{})
	if err != nil || st.ItemsSent != 1 {
		t.Fatalf("after hosting: %+v, %v", st, err)
	}
	sameVault(t, p.a, p.b, unhosted.ns)
}

func TestSyncRefusesFutureEntry(t *testing.T) {
	rng := rand.New(rand.NewPCG(25, 26))
	w := newWriter(t, newNamespaceKey(rng), rng)
	p := newPair(t, w.ns)
	future := w.item(t, "from the future", "x", nowMicros()+uint64(time.Hour/time.Microsecond))
	present := w.item(t, "present", "y", nowMicros()-1000)
	// Written straight into A's store: Insert does not verify.
	insert(t, p.a, future, present)

	st := p.sync(t)
	if st.PeerRefused != 1 || !strings.Contains(st.PeerRefusal, "future") {
		t.Fatalf("A's stats: PeerRefused %d, PeerRefusal %q; want 1 refusal about the future", st.PeerRefused, st.PeerRefusal)
	}
	if !strings.Contains(st.PeerRefusal, "from the future") {
		t.Errorf("refusal %q does not name the entry", st.PeerRefusal)
	}
	if st.ItemsSent != 2 {
		t.Fatalf("A sent %d items, want 2", st.ItemsSent)
	}
	if got := mustGet(t, p.b, w.ns, "from the future"); len(got) != 0 {
		t.Fatal("B stored the future entry")
	}
	if got := mustGet(t, p.b, w.ns, "present"); len(got) != 1 {
		t.Fatal("B did not store the valid entry sent with it")
	}
	if s := mustStats(t, p.b, w.ns); s.Entries != 1 {
		t.Fatalf("B stats %+v", s)
	}
	checkAggregates(t, p.b, w.ns)
}

func TestSyncIdlePeerIsCutOff(t *testing.T) {
	rng := rand.New(rand.NewPCG(27, 28))
	w := newWriter(t, newNamespaceKey(rng), rng)
	const idle = 500 * time.Millisecond
	logs := newLogCapture()
	p := newLoggedPair(t, w.ns, WithLogger(slog.New(logs)), WithIdleTimeout(idle))
	insert(t, p.a, w.item(t, "k", "v", nowMicros()-1000))

	r := dialRaw(t, p.sb.host)
	start := time.Now()
	r.hello(w.ns)
	r.flush()
	r.drain(idle + 5*time.Second)
	if el := time.Since(start); el < idle-50*time.Millisecond {
		t.Fatalf("session ended after %s, before the idle timeout of %s", el, idle)
	}
	line := logs.wait(t, "session ended", 5*time.Second)
	if !strings.Contains(line, "stopped answering") {
		t.Fatalf("server log %q does not say the peer stopped answering", line)
	}

	// The handler goroutine ends by itself, without Close.
	done := make(chan struct{})
	go func() { p.sb.life.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the session handler is still running after the idle cut-off")
	}

	// B still serves others.
	if st := p.sync(t); st.ItemsSent != 1 {
		t.Fatalf("sync after the idle peer: %+v", st)
	}
	// A second silent peer is waiting when B closes: Close ends its
	// session at once, well before the idle timeout would.
	r2 := dialRaw(t, p.sb.host)
	r2.hello(w.ns)
	r2.flush()
	time.Sleep(100 * time.Millisecond) // let the handler start reading
	t0 := time.Now()
	p.sb.Close()
	if el := time.Since(t0); el > idle/2 {
		t.Fatalf("Service.Close took %s", el)
	}
	r2.drain(5 * time.Second)
}

// TestAbortedTurnStoresNothing: a peer sends a genuine entry and then breaks
// the protocol in the same turn. The turn was never completed (nor
// acknowledged), so nothing of it should be stored.
func TestAbortedTurnStoresNothing(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 32))
	w := newWriter(t, newNamespaceKey(rng), rng)
	logs := newLogCapture()
	p := newLoggedPair(t, w.ns, WithLogger(slog.New(logs)))
	r := dialRaw(t, p.sb.host)
	r.hello(w.ns)
	it := w.item(t, "evil/valid", "payload", nowMicros()-1000)
	r.author(&it.Entry)
	r.items(0, it)
	r.frame(99, nil)
	r.flush()
	r.drain(5 * time.Second)
	logs.wait(t, "unexpected frame type 99", 5*time.Second)
	p.sb.Close() // waits for the session's ingester
	if n := len(dump(t, p.b, w.ns)); n != 0 {
		t.Fatalf("B stored %d entries from a session it aborted mid-turn", n)
	}
}

// TestSyncPeerLearnsWhy: when B ends a session because of what A sent, A's
// Sync error carries B's reason, not just a reset stream.
func TestSyncPeerLearnsWhy(t *testing.T) {
	rng := rand.New(rand.NewPCG(29, 30))
	w := newWriter(t, newNamespaceKey(rng), rng)
	p := newPair(t, w.ns)
	forged := w.item(t, "forged", "x", nowMicros()-1000)
	forged.Entry.AuthorSig[0] ^= 1
	insert(t, p.a, forged) // Insert does not verify: A's store is "damaged"

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := p.sa.Sync(ctx, p.sb.host.ID(), w.ns, SyncOptions{})
	var pe *PeerError
	if !errors.As(err, &pe) || pe.Code != CodeBadEntry || !strings.Contains(pe.Message, "signature") {
		t.Fatalf("A's sync error %v: want B's reason (a PeerError with CodeBadEntry about the signature)", err)
	}
	if len(dump(t, p.b, w.ns)) != 0 {
		t.Fatal("B stored the forged entry")
	}
}
