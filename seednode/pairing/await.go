package pairing

import (
	"context"
	"crypto/hmac"
	"errors"
	"fmt"
	"sync"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/oasisprotocol/curve25519-voi/curve"

	"github.com/seedfleet/seedfleet/internal/wire"
)

// Request is what the new device asks the approving device for.
type Request struct {
	// Name is the device's fragment name in the agent document (its
	// context, like "laptop"): 1 to MaxNameLen characters of [a-z0-9-].
	Name string
}

// Validate reports whether r is a request the protocol can carry.
func (r Request) Validate() error {
	if r.Name == "" {
		return errors.New("device name is empty")
	}
	if len(r.Name) > MaxNameLen {
		return fmt.Errorf("device name is %d characters, at most %d", len(r.Name), MaxNameLen)
	}
	for i := 0; i < len(r.Name); i++ {
		if c := r.Name[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return fmt.Errorf("device name %q contains %q; allowed are a-z 0-9 and -", wire.Sanitize(r.Name), c)
		}
	}
	return nil
}

// Await runs on the new device: it serves ProtocolID on h until one
// approver succeeds (returns its welcome and the approver's peer ID), ctx
// ends, or MaxAttempts attempts failed (ErrTooManyAttempts). A refusal by
// an approver that knew the code ends it too (ErrRefused, with the
// approver's reason). It removes its handler before returning.
//
// Concurrent attempts are serialized: while one runs, others are refused
// (the approver gets ErrBusy). An attempt counts as failed once this device
// has sent its point and MAC, that is once the approver could test one guess
// at the code, and the approver did not then prove it knew the code. An
// attempt that breaks off before that (garbage, a stall, a closed stream)
// does not count; neither does one whose approver proved the code but whose
// stream broke before the welcome: Await keeps waiting for a retry.
//
// Run one Await per host at a time: it owns the host's ProtocolID handler.
func Await(ctx context.Context, h host.Host, code Code, req Request) (welcome []byte, approver peer.ID, err error) {
	return await(ctx, h, code, req, defaultConfig())
}

// waiter is the state of one Await.
type waiter struct {
	code Code
	req  Request
	cfg  config
	ctx  context.Context // ends when Await returns

	mu       sync.Mutex
	closed   bool // Await is returning: no new handlers
	running  bool // an attempt holds the slot
	finished bool // result is final
	failures int
	lastErr  error // of the last failed attempt
	result   outcome
	done     chan struct{} // closed when finished is set

	wg sync.WaitGroup // handlers
}

// outcome is the result of one attempt.
type outcome struct {
	// spent: the approver got a guess at the code and did not confirm it.
	spent    bool
	final    bool
	welcome  []byte
	approver peer.ID
	err      error
}

func await(ctx context.Context, h host.Host, code Code, req Request, cfg config) ([]byte, peer.ID, error) {
	code, err := code.canonical()
	if err != nil {
		return nil, "", fmt.Errorf("pairing: await: %w", err)
	}
	if err := req.Validate(); err != nil {
		return nil, "", fmt.Errorf("pairing: await: %w", err)
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := &waiter{code: code, req: req, cfg: cfg, ctx: wctx, done: make(chan struct{})}
	h.SetStreamHandler(ProtocolID, w.handle)

	select {
	case <-ctx.Done():
	case <-w.done:
	}
	h.RemoveStreamHandler(ProtocolID)
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	cancel() // resets a stream in flight
	w.wg.Wait()
	// An attempt that completed while ctx ended still counts: its approver
	// may already have its acknowledgement.
	w.mu.Lock()
	res, finished, failures, lastErr := w.result, w.finished, w.failures, w.lastErr
	w.mu.Unlock()

	switch {
	case finished && res.err != nil:
		return nil, "", fmt.Errorf("pairing: await: %w", res.err)
	case finished:
		return res.welcome, res.approver, nil
	case failures > 0:
		return nil, "", fmt.Errorf("pairing: waiting for approval: %w (after %d failed attempts, the last: %v)", context.Cause(ctx), failures, lastErr)
	}
	return nil, "", fmt.Errorf("pairing: waiting for approval: %w", context.Cause(ctx))
}

func (w *waiter) handle(st network.Stream) {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		_ = st.Reset()
		return
	}
	w.wg.Add(1)
	defer w.wg.Done()
	finished, busy := w.finished, w.running
	if !finished && !busy {
		w.running = true // this stream's attempt holds the slot
	}
	w.mu.Unlock()

	stop := context.AfterFunc(w.ctx, func() { _ = st.Reset() })
	defer stop()
	l, err := openLink(st, w.cfg)
	if err != nil {
		_ = st.Reset()
		if !finished && !busy {
			w.record(outcome{err: err})
		}
		return
	}
	defer l.release()
	switch {
	case finished:
		l.refuse(reasonNotWaiting, "this device is no longer waiting for approval")
	case busy:
		l.refuse(reasonBusy, "this device is running another pairing attempt; try again in a moment")
	default:
		w.record(w.attempt(l))
	}
}

// record ends an attempt: it frees the slot, counts a spent guess and
// publishes a final result.
func (w *waiter) record(o outcome) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.running = false
	if w.finished {
		return
	}
	if o.err != nil && !o.final {
		w.lastErr = o.err
	}
	if o.spent {
		w.failures++
		if w.failures >= MaxAttempts {
			o = outcome{final: true, err: fmt.Errorf("%w: %d failed attempts (the last: %v); start pairing again for a new code",
				ErrTooManyAttempts, w.failures, w.lastErr)}
		}
	}
	if o.final {
		w.finished = true
		w.result = o
		close(w.done)
	}
}

// attempt runs the new device's side of one exchange on l.
func (w *waiter) attempt(l *link) outcome {
	approver, self := l.st.Conn().RemotePeer(), l.st.Conn().LocalPeer()
	hello, err := l.recv("the approver's hello", maxSmallFrameSize, w.cfg.step)
	if err == nil && hello.typ != msgHello {
		err = unexpected(hello, msgHello)
	}
	var ya *curve.RistrettoPoint
	if err == nil {
		ya, err = decodePoint(hello.point, "the approver's point Ya")
	}
	if err != nil {
		return outcome{err: w.abort(l, err)}
	}
	// Nothing derived from the code leaves this device before the approver
	// has committed to its point: each attempt tests one guess at most.
	sh, err := newShare(generator(w.code, channelID(approver, self), hello.sid[:]))
	if err != nil {
		_ = l.st.Reset()
		return outcome{err: err}
	}
	keys, err := deriveKeys(sh, ya, hello.sid, hello.point, sh.public)
	if err != nil {
		return outcome{err: w.abort(l, err)}
	}
	spent := outcome{spent: true}
	if err := l.send(&message{typ: msgReply, point: sh.public, mac: keys.confirmMAC(roleDevice)}); err != nil {
		_ = l.st.Reset()
		spent.err = err
		return spent
	}
	confirm, err := l.recv("the approver's key confirmation", maxSmallFrameSize, w.cfg.step)
	if err == nil && confirm.typ != msgConfirm {
		err = unexpected(confirm, msgConfirm)
	}
	if want := keys.confirmMAC(roleApprover); err == nil && !hmac.Equal(confirm.mac[:], want[:]) {
		err = fmt.Errorf("approver %s: %w", approver, ErrWrongCode)
	}
	if err != nil {
		_ = l.st.Reset()
		spent.err = err
		return spent
	}

	// The approver knows the code. From here a broken stream is not a
	// guess: Await waits for a retry.
	req := message{typ: msgRequest, name: w.req.Name}
	keys.seal(&req)
	if err := l.send(&req); err != nil {
		_ = l.st.Reset()
		return outcome{err: err}
	}
	resp, err := l.recv("the approver's welcome", maxFrameSize, w.cfg.step+w.cfg.decide)
	if err == nil && resp.typ != msgWelcome && resp.typ != msgRefusal {
		err = unexpected(resp, msgWelcome)
	}
	if err == nil {
		err = keys.open(&resp)
	}
	if err != nil {
		_ = l.st.Reset()
		return outcome{err: err}
	}
	if resp.typ == msgRefusal {
		_ = l.st.Close()
		return outcome{final: true, err: fmt.Errorf("%w: %s", ErrRefused, wire.Sanitize(resp.text))}
	}
	ack := message{typ: msgAck}
	keys.seal(&ack)
	l.finish(&ack)
	return outcome{final: true, welcome: resp.payload, approver: approver}
}

// abort ends an attempt that failed before this device revealed anything:
// a protocol violation is explained to the peer, anything else resets the
// stream. It returns err.
func (w *waiter) abort(l *link, err error) error {
	if errors.Is(err, ErrProtocol) {
		l.refuse(reasonInvalid, err.Error())
	} else {
		_ = l.st.Reset()
	}
	return err
}
