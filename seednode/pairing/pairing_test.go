package pairing

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"
)

func TestPairSuccess(t *testing.T) {
	for _, tc := range []struct {
		name    string
		welcome []byte
	}{
		{"empty welcome", []byte{}},
		{"small welcome", []byte(`{"agent":"did:key:z6Mk...","vault":"ns","seeds":["/ip4/127.0.0.1/tcp/1"]}`)},
		{"largest welcome", bytes.Repeat([]byte{0xA5}, MaxWelcomeSize)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := newNode(t), newNode(t)
			code := mustCode(t)
			ctx := testCtx(t)
			wait := startAwait(t, ctx, b, code, Request{Name: "laptop-2"}, testConfig)
			d := &decider{welcome: tc.welcome}
			// The approver types the code as displayed, in lower case.
			req, key, err := approve(ctx, a.h, b.info(), Code(strings.ToLower(code.String())), d.decide, testConfig)
			if err != nil {
				t.Fatalf("Approve: %v", err)
			}
			if req.Name != "laptop-2" {
				t.Errorf("Approve returned request %+v, want name laptop-2", req)
			}
			if !key.Equal(b.pub()) {
				t.Errorf("Approve returned key %x, want the new device's %x", key, b.pub())
			}
			if d.count() != 1 || d.req.Name != "laptop-2" || !d.device.Equal(b.pub()) {
				t.Errorf("decide: %d calls, last with %+v %x", d.count(), d.req, d.device)
			}
			r := wait()
			if r.err != nil {
				t.Fatalf("Await: %v", r.err)
			}
			if !bytes.Equal(r.welcome, tc.welcome) || r.welcome == nil {
				t.Errorf("Await returned a welcome of %d bytes, want %d", len(r.welcome), len(tc.welcome))
			}
			if r.approver != a.h.ID() {
				t.Errorf("Await returned approver %s, want %s", r.approver, a.h.ID())
			}
			if hasHandler(b.h) {
				t.Error("Await left its stream handler behind")
			}
			checkNoLeak(t)
		})
	}
}

// TestPublicAPI runs Approve and Await as applications call them.
func TestPublicAPI(t *testing.T) {
	a, b := newNode(t), newNode(t)
	code := mustCode(t)
	ctx := testCtx(t)
	ch := make(chan awaitResult, 1)
	go func() {
		w, p, err := Await(ctx, b.h, code, Request{Name: "phone"})
		ch <- awaitResult{w, p, err}
	}()
	waitFor(t, "the pairing handler", func() bool { return hasHandler(b.h) })
	tk, err := ParseTicket(Ticket{Peer: b.info(), Code: code}.String())
	if err != nil {
		t.Fatal(err)
	}
	req, key, err := Approve(ctx, a.h, tk.Peer, tk.Code, func(_ context.Context, req Request, dev ed25519.PublicKey) ([]byte, error) {
		return []byte("welcome " + req.Name), nil
	})
	if err != nil || req.Name != "phone" || !key.Equal(b.pub()) {
		t.Fatalf("Approve = %+v, %x, %v", req, key, err)
	}
	r := <-ch
	if r.err != nil || string(r.welcome) != "welcome phone" || r.approver != a.h.ID() {
		t.Fatalf("Await = %q, %s, %v", r.welcome, r.approver, r.err)
	}
}

// approveRetry approves, retrying while the new device is busy finishing
// an earlier attempt.
func approveRetry(t testing.TB, ctx context.Context, from node, to peer.AddrInfo, code Code, d *decider) (Request, ed25519.PublicKey, error) {
	t.Helper()
	for {
		req, key, err := approve(ctx, from.h, to, code, d.decide, testConfig)
		if !errors.Is(err, ErrBusy) {
			return req, key, err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestWrongCodeThenRight(t *testing.T) {
	a, b := newNode(t), newNode(t)
	code := mustCode(t)
	ctx := testCtx(t)
	wait := startAwait(t, ctx, b, code, Request{Name: "laptop"}, testConfig)
	d := &decider{welcome: []byte("hi")}
	for i := range MaxAttempts - 1 {
		_, _, err := approveRetry(t, ctx, a, b.info(), otherCode(t, code), d)
		if !errors.Is(err, ErrWrongCode) {
			t.Fatalf("attempt %d with a wrong code: %v, want ErrWrongCode", i+1, err)
		}
	}
	if d.count() != 0 {
		t.Fatalf("decide called %d times for wrong codes", d.count())
	}
	if !hasHandler(b.h) {
		t.Fatal("Await stopped after fewer than MaxAttempts wrong codes")
	}
	if _, _, err := approveRetry(t, ctx, a, b.info(), code, d); err != nil {
		t.Fatalf("Approve with the right code after wrong ones: %v", err)
	}
	if r := wait(); r.err != nil || string(r.welcome) != "hi" {
		t.Fatalf("Await = %q, %v", r.welcome, r.err)
	}
}

func TestTooManyAttempts(t *testing.T) {
	a, b := newNode(t), newNode(t)
	code := mustCode(t)
	ctx := testCtx(t)
	wait := startAwait(t, ctx, b, code, Request{Name: "laptop"}, testConfig)
	d := &decider{}
	for i := range MaxAttempts {
		if _, _, err := approveRetry(t, ctx, a, b.info(), otherCode(t, code), d); !errors.Is(err, ErrWrongCode) {
			t.Fatalf("attempt %d: %v, want ErrWrongCode", i+1, err)
		}
	}
	r := wait()
	if !errors.Is(r.err, ErrTooManyAttempts) {
		t.Fatalf("Await after %d wrong codes: %v, want ErrTooManyAttempts", MaxAttempts, r.err)
	}
	if !strings.Contains(r.err.Error(), "new code") {
		t.Errorf("error %q does not tell the user to start again", r.err)
	}
	// Even the right code is too late now.
	if _, _, err := approve(ctx, a.h, b.info(), code, d.decide, testConfig); err == nil {
		t.Fatal("Approve succeeded after the new device gave up")
	}
	if d.count() != 0 {
		t.Fatalf("decide called %d times", d.count())
	}
	checkNoLeak(t)
}

func TestDecideRefuses(t *testing.T) {
	for _, tc := range []struct {
		name    string
		d       *decider
		wantMsg string
	}{
		{"decide error", &decider{err: errors.New("agent document is read-only: \x1b[31mdenied")}, "agent document is read-only"},
		{"welcome too large", &decider{welcome: make([]byte, MaxWelcomeSize+1)}, "at most"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := newNode(t), newNode(t)
			code := mustCode(t)
			ctx := testCtx(t)
			wait := startAwait(t, ctx, b, code, Request{Name: "laptop"}, testConfig)
			_, _, err := approve(ctx, a.h, b.info(), code, tc.d.decide, testConfig)
			if err == nil || !strings.Contains(err.Error(), tc.wantMsg) || errors.Is(err, ErrWrongCode) {
				t.Fatalf("Approve: %v, want the refusal %q", err, tc.wantMsg)
			}
			r := wait()
			if !errors.Is(r.err, ErrRefused) || !strings.Contains(r.err.Error(), tc.wantMsg) {
				t.Fatalf("Await: %v, want ErrRefused with %q", r.err, tc.wantMsg)
			}
			if strings.ContainsRune(r.err.Error(), '\x1b') {
				t.Errorf("refusal reason reached the user unsanitized: %q", r.err)
			}
		})
	}
}

// relay makes m forward every pairing stream to b, byte for byte: a man
// in the middle who does not know the code.
func relay(t testing.TB, m, b node) {
	m.h.Peerstore().AddAddrs(b.h.ID(), b.h.Addrs(), time.Hour)
	m.h.SetStreamHandler(ProtocolID, func(in network.Stream) {
		out, err := m.h.NewStream(context.Background(), b.h.ID(), ProtocolID)
		if err != nil {
			_ = in.Reset()
			return
		}
		var wg sync.WaitGroup
		pipe := func(dst, src network.Stream) {
			defer wg.Done()
			if _, err := io.Copy(dst, src); err != nil {
				_ = dst.Reset()
				_ = src.Reset()
				return
			}
			_ = dst.CloseWrite()
		}
		wg.Add(2)
		go pipe(out, in)
		go pipe(in, out)
		wg.Wait()
		_ = in.Close()
		_ = out.Close()
	})
}

func TestManInTheMiddle(t *testing.T) {
	t.Run("approver dials the attacker", func(t *testing.T) {
		// The ticket A was given names M; M waits with a code of its own.
		a, m := newNode(t), newNode(t)
		ctx, cancel := context.WithCancel(testCtx(t))
		code := mustCode(t)
		wait := startAwait(t, ctx, m, otherCode(t, code), Request{Name: "evil"}, testConfig)
		d := &decider{}
		_, _, err := approve(ctx, a.h, m.info(), code, d.decide, testConfig)
		if !errors.Is(err, ErrWrongCode) {
			t.Fatalf("Approve against the attacker: %v, want ErrWrongCode", err)
		}
		if d.count() != 0 {
			t.Fatal("decide was called for the attacker")
		}
		cancel()
		if r := wait(); !errors.Is(r.err, context.Canceled) {
			t.Fatalf("attacker's Await: %v", r.err)
		}
	})
	t.Run("attacker relays between approver and new device", func(t *testing.T) {
		a, b, m := newNode(t), newNode(t), newNode(t)
		ctx := testCtx(t)
		code := mustCode(t)
		wait := startAwait(t, ctx, b, code, Request{Name: "laptop"}, testConfig)
		relay(t, m, b)
		d := &decider{}
		// A has the right code, but M's ticket: both ends compute with
		// their own channel, so the relayed exchange fails.
		_, _, err := approve(ctx, a.h, m.info(), code, d.decide, testConfig)
		if !errors.Is(err, ErrWrongCode) {
			t.Fatalf("Approve through the relay: %v, want ErrWrongCode", err)
		}
		if d.count() != 0 {
			t.Fatal("decide was called through the relay")
		}
		// The relayed attempt cost B one of its attempts; M's own guesses
		// cost the others.
		m.h.RemoveStreamHandler(ProtocolID)
		for i := range MaxAttempts - 1 {
			if _, _, err := approveRetry(t, ctx, m, b.info(), otherCode(t, code), d); !errors.Is(err, ErrWrongCode) {
				t.Fatalf("attacker's guess %d: %v, want ErrWrongCode", i+1, err)
			}
		}
		if r := wait(); !errors.Is(r.err, ErrTooManyAttempts) {
			t.Fatalf("Await: %v, want ErrTooManyAttempts after the relay and %d guesses", r.err, MaxAttempts-1)
		}
	})
	t.Run("attacker guesses", func(t *testing.T) {
		a, b, m := newNode(t), newNode(t), newNode(t)
		ctx := testCtx(t)
		code := mustCode(t)
		wait := startAwait(t, ctx, b, code, Request{Name: "laptop"}, testConfig)
		d := &decider{}
		if _, _, err := approveRetry(t, ctx, m, b.info(), otherCode(t, code), d); !errors.Is(err, ErrWrongCode) {
			t.Fatalf("attacker's guess: %v, want ErrWrongCode", err)
		}
		// The owner still gets in, and the welcome is for the owner.
		d.welcome = []byte("for a")
		if _, _, err := approveRetry(t, ctx, a, b.info(), code, d); err != nil {
			t.Fatal(err)
		}
		if r := wait(); r.err != nil || r.approver != a.h.ID() {
			t.Fatalf("Await = %s, %v", r.approver, r.err)
		}
	})
}

// TestBusy holds B's slot with a raw attempt that took B's reply: other
// approvers are refused meanwhile, and the held attempt counts once it
// ends.
func TestBusy(t *testing.T) {
	a, b, m := newNode(t), newNode(t), newNode(t)
	ctx := testCtx(t)
	code := mustCode(t)
	wait := startAwait(t, ctx, b, code, Request{Name: "laptop"}, testConfig)
	st := rawStream(t, m, b)
	hello, _, _ := helloFrame(t, st, otherCode(t, code))
	if _, err := st.Write(hello); err != nil {
		t.Fatal(err)
	}
	if rep, err := readReply(st); err != nil || rep.typ != msgReply {
		t.Fatalf("reply: %+v, %v", rep, err)
	}
	d := &decider{}
	if _, _, err := approve(ctx, a.h, b.info(), code, d.decide, testConfig); !errors.Is(err, ErrBusy) {
		t.Fatalf("Approve while another attempt runs: %v, want ErrBusy", err)
	}
	_ = st.Reset()
	for i := range MaxAttempts - 1 {
		if _, _, err := approveRetry(t, ctx, a, b.info(), otherCode(t, code), d); !errors.Is(err, ErrWrongCode) {
			t.Fatalf("guess %d: %v", i+1, err)
		}
	}
	if r := wait(); !errors.Is(r.err, ErrTooManyAttempts) {
		t.Fatalf("Await: %v, want ErrTooManyAttempts (the held attempt counts)", r.err)
	}
	checkNoLeak(t)
}

// TestGarbageToNewDevice sends the new device malformed first messages.
// None reveals anything, so none counts: the right code still works after
// more of them than MaxAttempts.
func TestGarbageToNewDevice(t *testing.T) {
	a, b, m := newNode(t), newNode(t), newNode(t)
	ctx := testCtx(t)
	code := mustCode(t)
	wait := startAwait(t, ctx, b, code, Request{Name: "laptop"}, stallConfig)
	helloBody := func(sid [sidLen]byte, point [pointLen]byte) []byte {
		msg := message{typ: msgHello, sid: sid, point: point}
		return msg.append(nil)
	}
	hello := func(sid [sidLen]byte, point [pointLen]byte) []byte { return frame(helloBody(sid, point)) }
	var allFF [pointLen]byte
	for i := range allFF {
		allFF[i] = 0xff
	}
	welcome := message{typ: msgWelcome, payload: []byte("x"), tagged: true}
	for _, tc := range []struct {
		name        string
		send        []byte
		closeWrite  bool
		wantRefusal bool // a refusal explaining the violation; else the stream just ends
	}{
		{"oversized frame", append(uvarintBytes(maxSmallFrameSize+1), make([]byte, 100)...), false, true},
		{"huge length prefix", bytes.Repeat([]byte{0xff}, 10), false, true},
		{"non-minimal length", []byte{0x80, 0x00}, false, true},
		{"empty frame", []byte{0}, false, true},
		{"unknown type", frame([]byte{99, 1, 2, 3}), false, true},
		{"welcome first", frame(welcome.append(nil)), false, true},
		{"truncated hello", frame([]byte{msgHello, 1, 2, 3}), false, true},
		{"hello with trailing bytes", frame(append(helloBody([sidLen]byte{}, [pointLen]byte{}), 0)), false, true},
		{"identity point", hello([sidLen]byte{1}, [pointLen]byte{}), false, true},
		{"invalid point", hello([sidLen]byte{1}, allFF), false, true},
		{"random bytes", frame([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")), false, true},
		{"nothing", nil, true, false},
		{"half a frame", []byte{49, msgHello, 1, 2}, true, false},
		{"stall", nil, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, resp, err := rawAttempt(t, m, b, bytesOf(tc.send), tc.closeWrite)
			switch {
			case tc.wantRefusal && (err != nil || resp.typ != msgRefusal || resp.reason != reasonInvalid || resp.tagged):
				t.Fatalf("got %+v, %v; want an untagged refusal of an invalid message", resp, err)
			case !tc.wantRefusal && err == nil:
				t.Fatalf("got %+v, want the stream to end", resp)
			}
			if tc.wantRefusal {
				t.Logf("refusal: %s", resp.text)
			}
			_ = st.Close()
		})
	}
	d := &decider{welcome: []byte("ok")}
	if _, _, err := approveRetry(t, ctx, a, b.info(), code, d); err != nil {
		t.Fatalf("Approve after garbage: %v", err)
	}
	if r := wait(); r.err != nil || string(r.welcome) != "ok" {
		t.Fatalf("Await = %q, %v", r.welcome, r.err)
	}
	checkNoLeak(t)
}

// fakeDevice serves ProtocolID on n with respond, which gets the stream
// after the approver's hello was read, and the hello.
func fakeDevice(n node, respond func(st network.Stream, hello message)) {
	n.h.SetStreamHandler(ProtocolID, func(st network.Stream) {
		_ = st.SetDeadline(time.Now().Add(10 * time.Second))
		hello, err := readReply(st)
		if err != nil {
			_ = st.Reset()
			return
		}
		respond(st, hello)
		// Let the approver read everything before the stream ends.
		_ = st.CloseWrite()
		_, _ = io.Copy(io.Discard, st)
		_ = st.Close()
	})
}

// honestReply returns B's correct reply to hello with code, and the keys.
func honestReply(st network.Stream, hello message, code Code) (message, *sessionKeys) {
	ya, err := decodePoint(hello.point, "Ya")
	if err != nil {
		panic(err)
	}
	sh, err := newShare(generator(code, channelID(st.Conn().RemotePeer(), st.Conn().LocalPeer()), hello.sid[:]))
	if err != nil {
		panic(err)
	}
	keys, err := deriveKeys(sh, ya, hello.sid, hello.point, sh.public)
	if err != nil {
		panic(err)
	}
	return message{typ: msgReply, point: sh.public, mac: keys.confirmMAC(roleDevice)}, keys
}

func send(st network.Stream, m message) { _, _ = st.Write(frame(m.append(nil))) }

// TestMisbehavingNewDevice runs Approve against new devices that break
// the protocol, before and after key confirmation.
func TestMisbehavingNewDevice(t *testing.T) {
	code := mustCode(t)
	var allFF [pointLen]byte
	for i := range allFF {
		allFF[i] = 0xff
	}
	for _, tc := range []struct {
		name    string
		cfg     config
		respond func(st network.Stream, hello message)
		want    error  // wrapped by Approve's error, if set
		wantMsg string // in Approve's error, if set
	}{
		{"garbage", testConfig, func(st network.Stream, _ message) { _, _ = st.Write([]byte{5, 1, 2, 3, 4, 5}) }, ErrProtocol, ""},
		{"oversized frame", testConfig, func(st network.Stream, _ message) {
			_, _ = st.Write(uvarintBytes(1 << 20))
			_, _ = st.Write(make([]byte, 4096))
		}, ErrProtocol, "limit"},
		{"identity point", testConfig, func(st network.Stream, _ message) { send(st, message{typ: msgReply}) }, ErrProtocol, "identity"},
		{"invalid point", testConfig, func(st network.Stream, _ message) { send(st, message{typ: msgReply, point: allFF}) }, ErrProtocol, "not a valid"},
		{"valid point, wrong MAC", testConfig, func(st network.Stream, hello message) {
			r, _ := honestReply(st, hello, code)
			r.mac[0] ^= 1
			send(st, r)
		}, ErrWrongCode, ""},
		{"tagged refusal before confirmation", testConfig, func(st network.Stream, _ message) {
			send(st, message{typ: msgRefusal, reason: reasonBusy, text: "x", tagged: true})
		}, ErrProtocol, ""},
		{"busy", testConfig, func(st network.Stream, _ message) {
			send(st, message{typ: msgRefusal, reason: reasonBusy, text: "busy"})
			_ = st.CloseWrite()
			_, _ = io.Copy(io.Discard, st)
		}, ErrBusy, ""},
		{"closes", testConfig, func(st network.Stream, _ message) { _ = st.Close() }, nil, "closed"},
		{"stalls", stallConfig, func(st network.Stream, _ message) { _, _ = io.Copy(io.Discard, st) }, nil, "within"},
		{"request with a bad tag", testConfig, func(st network.Stream, hello message) {
			r, _ := honestReply(st, hello, code)
			send(st, r)
			if _, err := readReply(st); err != nil {
				return
			}
			send(st, message{typ: msgRequest, name: "laptop", tagged: true})
		}, ErrProtocol, "tag"},
		{"request with an invalid name", testConfig, func(st network.Stream, hello message) {
			r, keys := honestReply(st, hello, code)
			send(st, r)
			if _, err := readReply(st); err != nil {
				return
			}
			req := message{typ: msgRequest, name: "Laptop!"}
			keys.seal(&req)
			send(st, req)
			if refusal, err := readReply(st); err != nil || keys.open(&refusal) != nil || refusal.reason != reasonInvalid {
				panic("no tagged refusal of an invalid name")
			}
			_ = st.Close()
		}, ErrProtocol, "device name"},
		{"no acknowledgement", testConfig, func(st network.Stream, hello message) {
			r, keys := honestReply(st, hello, code)
			send(st, r)
			if _, err := readReply(st); err != nil {
				return
			}
			req := message{typ: msgRequest, name: "laptop"}
			keys.seal(&req)
			send(st, req)
			_, _ = readReply(st)
			_ = st.Close()
		}, nil, "did not acknowledge"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := newNode(t), newNode(t)
			fakeDevice(b, tc.respond)
			d := &decider{welcome: []byte("w")}
			_, _, err := approve(testCtx(t), a.h, b.info(), code, d.decide, tc.cfg)
			if err == nil {
				t.Fatal("Approve succeeded")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("Approve: %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("Approve: %v, want it to mention %q", err, tc.wantMsg)
			}
			if wantCalls := map[bool]int{true: 1}[tc.name == "no acknowledgement"]; d.count() != wantCalls {
				t.Errorf("decide called %d times, want %d", d.count(), wantCalls)
			}
			checkNoLeak(t)
		})
	}
}

// TestMisbehavingApprover: an approver that knows the code but sends a
// welcome B cannot authenticate does not end Await; it is no guess either.
func TestMisbehavingApprover(t *testing.T) {
	a, b := newNode(t), newNode(t)
	ctx := testCtx(t)
	code := mustCode(t)
	wait := startAwait(t, ctx, b, code, Request{Name: "laptop"}, testConfig)
	for range MaxAttempts + 1 {
		var sh share
		var sid [sidLen]byte
		st, rep, err := rawAttempt(t, a, b, func(st network.Stream) []byte {
			var hello []byte
			hello, sh, sid = helloFrame(t, st, code)
			return hello
		}, false)
		if err != nil || rep.typ != msgReply {
			t.Fatalf("reply: %+v, %v", rep, err)
		}
		yb, err := decodePoint(rep.point, "Yb")
		if err != nil {
			t.Fatal(err)
		}
		keys, err := deriveKeys(sh, yb, sid, sh.public, rep.point)
		if err != nil {
			t.Fatal(err)
		}
		send(st, message{typ: msgConfirm, mac: keys.confirmMAC(roleApprover)})
		if req, err := readReply(st); err != nil || keys.open(&req) != nil || req.name != "laptop" {
			t.Fatalf("request: %+v, %v", req, err)
		}
		send(st, message{typ: msgWelcome, payload: []byte("forged"), tagged: true})
		if _, err := readReply(st); err == nil {
			t.Fatal("B answered a welcome with a bad tag")
		}
		_ = st.Close()
	}
	d := &decider{welcome: []byte("real")}
	if _, _, err := approveRetry(t, ctx, a, b.info(), code, d); err != nil {
		t.Fatal(err)
	}
	if r := wait(); r.err != nil || string(r.welcome) != "real" {
		t.Fatalf("Await = %q, %v", r.welcome, r.err)
	}
}

// TestAwaitCancel: Await returns when its context ends, even with a stalled
// attempt in flight under the default (long) timeouts, and leaves nothing
// running.
func TestAwaitCancel(t *testing.T) {
	b, m := newNode(t), newNode(t)
	code := mustCode(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wait := startAwait(t, ctx, b, code, Request{Name: "laptop"}, defaultConfig())
	st := rawStream(t, m, b)
	hello, _, _ := helloFrame(t, st, code)
	if _, err := st.Write(hello[:10]); err != nil { // then stall mid-frame
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	cancel()
	r := wait()
	if !errors.Is(r.err, context.Canceled) {
		t.Fatalf("Await after cancel: %v, want context.Canceled", r.err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Await took %s to return after cancel", d)
	}
	if hasHandler(b.h) {
		t.Error("Await left its stream handler behind")
	}
	checkNoLeak(t)
}

// TestStalledAttemptDoesNotCount: a peer that opens a stream and sends
// nothing times out without costing an attempt.
func TestStalledAttemptDoesNotCount(t *testing.T) {
	a, b, m := newNode(t), newNode(t), newNode(t)
	ctx := testCtx(t)
	code := mustCode(t)
	wait := startAwait(t, ctx, b, code, Request{Name: "laptop"}, stallConfig)
	for range MaxAttempts + 1 {
		if _, resp, err := rawAttempt(t, m, b, bytesOf(nil), false); err == nil {
			t.Fatalf("B answered a stream that sent nothing: %+v", resp)
		}
	}
	d := &decider{welcome: []byte("ok")}
	if _, _, err := approveRetry(t, ctx, a, b.info(), code, d); err != nil {
		t.Fatal(err)
	}
	if r := wait(); r.err != nil {
		t.Fatal(r.err)
	}
}

func TestApproveCancel(t *testing.T) {
	a, b := newNode(t), newNode(t)
	fakeDevice(b, func(st network.Stream, _ message) { _, _ = io.Copy(io.Discard, st) }) // until the approver gives up
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	start := time.Now()
	_, _, err := Approve(ctx, a.h, b.info(), mustCode(t), (&decider{}).decide)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Approve after cancel: %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Approve took %s to return after cancel", d)
	}
	checkNoLeak(t)
}

func TestArgumentsChecked(t *testing.T) {
	n := newNode(t)
	ctx := testCtx(t)
	code := mustCode(t)
	for _, tc := range []struct {
		name string
		code Code
		req  Request
	}{
		{"bad code", "ABC", Request{Name: "laptop"}},
		{"empty name", code, Request{}},
		{"upper-case name", code, Request{Name: "Laptop"}},
		{"long name", code, Request{Name: strings.Repeat("a", MaxNameLen+1)}},
		{"name with a dot", code, Request{Name: "my.laptop"}},
	} {
		t.Run("Await/"+tc.name, func(t *testing.T) {
			if _, _, err := Await(ctx, n.h, tc.code, tc.req); err == nil {
				t.Fatal("Await accepted it")
			}
			if hasHandler(n.h) {
				t.Fatal("Await set a handler")
			}
		})
	}
	hashed, err := mh.Sum([]byte("rsa key"), mh.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	d := (&decider{}).decide
	for _, tc := range []struct {
		name   string
		to     peer.AddrInfo
		code   Code
		decide Decide
	}{
		{"bad code", newNode(t).info(), "ABCD-EFGU", d},
		{"nil decide", newNode(t).info(), code, nil},
		{"peer ID without an Ed25519 key", peer.AddrInfo{ID: peer.ID(hashed)}, code, d},
		{"itself", n.info(), code, d},
		{"unreachable", peer.AddrInfo{ID: newNode(t).h.ID()}, code, d},
	} {
		t.Run("Approve/"+tc.name, func(t *testing.T) {
			if _, _, err := approve(ctx, n.h, tc.to, tc.code, tc.decide, stallConfig); err == nil {
				t.Fatal("Approve accepted it")
			}
		})
	}
	if n := maxSmallFrameSize; n < len((&message{typ: msgRefusal, text: strings.Repeat("x", maxReasonLen), tagged: true}).append(nil)) {
		t.Fatalf("maxSmallFrameSize %d does not fit the largest refusal", n)
	}
}

// TestApproveBeforeTheDeviceWaits: the code is typed on the approver a
// moment before the new device has started waiting (its host is up, its
// handler not yet): Approve asks again instead of failing.
func TestApproveBeforeTheDeviceWaits(t *testing.T) {
	a, b := newNode(t), newNode(t)
	code := mustCode(t)
	ctx := testCtx(t)
	waited := make(chan awaitResult, 1)
	time.AfterFunc(400*time.Millisecond, func() {
		w, ap, err := await(ctx, b.h, code, Request{Name: "late"}, testConfig)
		waited <- awaitResult{w, ap, err}
	})
	d := &decider{welcome: []byte("hi")}
	req, _, err := approve(ctx, a.h, b.info(), code, d.decide, testConfig)
	if err != nil {
		t.Fatalf("Approve started before the device waited: %v", err)
	}
	if req.Name != "late" {
		t.Fatalf("approved %+v", req)
	}
	if r := <-waited; r.err != nil {
		t.Fatal(r.err)
	}
}

// TestApproveNobodyWaiting: a device that never waits is reported, after
// one step, as not speaking the protocol.
func TestApproveNobodyWaiting(t *testing.T) {
	a, b := newNode(t), newNode(t)
	_, _, err := approve(testCtx(t), a.h, b.info(), mustCode(t), (&decider{}).decide, stallConfig)
	if err == nil || !strings.Contains(err.Error(), "is the new device waiting for approval?") {
		t.Fatalf("Approve with nobody waiting: %v", err)
	}
}
