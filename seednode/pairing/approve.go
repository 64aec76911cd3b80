package pairing

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	msmux "github.com/multiformats/go-multistream"

	"github.com/seedfleet/seedfleet/internal/wire"
	"github.com/seedfleet/seedfleet/seednode/identity"
)

// Decide is called on the approving device after the code matched; device
// is B's authenticated Ed25519 public key (the key of its peer ID). It
// typically adds the device to the agent document and writes its key
// envelopes, and returns the welcome (opaque to this package, at most
// MaxWelcomeSize bytes). Returning an error sends a refusal, with its
// message, to B. It runs under DecideTimeout.
//
// Decide should be idempotent for a given device key: if the welcome is lost
// on the way, the user approves again and Decide is called again.
type Decide func(ctx context.Context, req Request, device ed25519.PublicKey) (welcome []byte, err error)

// Approve dials the new device and runs the protocol: if the code matches,
// it calls decide with the new device's request and key, sends the welcome
// (or decide's refusal) and waits for the new device's acknowledgement. It
// returns the request and the key decide approved.
//
// A code that does not match, including a man in the middle who does not
// know it, gives ErrWrongCode, and decide is not called. A new device
// running another attempt gives ErrBusy. An error after decide returned a
// welcome means the new device may or may not have it: check it, and
// approve again if it still waits.
func Approve(ctx context.Context, h host.Host, newDevice peer.AddrInfo, code Code, decide Decide) (Request, ed25519.PublicKey, error) {
	return approve(ctx, h, newDevice, code, decide, defaultConfig())
}

func approve(ctx context.Context, h host.Host, dev peer.AddrInfo, code Code, decide Decide, cfg config) (Request, ed25519.PublicKey, error) {
	req, key, err := runApprove(ctx, h, dev, code, decide, cfg)
	if err != nil {
		return Request{}, nil, fmt.Errorf("pairing: approve %s: %w", dev.ID, err)
	}
	return req, key, nil
}

func runApprove(ctx context.Context, h host.Host, dev peer.AddrInfo, code Code, decide Decide, cfg config) (Request, ed25519.PublicKey, error) {
	code, err := code.canonical()
	if err != nil {
		return Request{}, nil, err
	}
	if decide == nil {
		return Request{}, nil, errors.New("no Decide function")
	}
	devKey, err := identity.PublicKeyFromPeerID(dev.ID)
	if err != nil {
		return Request{}, nil, fmt.Errorf("the new device's peer ID must be an Ed25519 key: %w", err)
	}
	if dev.ID == h.ID() {
		return Request{}, nil, errors.New("the new device is this device")
	}
	dialCtx, cancel := context.WithTimeout(ctx, cfg.step)
	defer cancel()
	if err := h.Connect(dialCtx, dev); err != nil {
		return Request{}, nil, fmt.Errorf("connect to the new device: %w", err)
	}
	st, err := openStream(dialCtx, h, dev.ID)
	if err != nil {
		return Request{}, nil, fmt.Errorf("open a pairing stream (is the new device waiting for approval?): %w", err)
	}
	stop := context.AfterFunc(ctx, func() { _ = st.Reset() })
	defer stop()
	l, err := openLink(st, cfg)
	if err != nil {
		_ = st.Reset()
		return Request{}, nil, err
	}
	defer l.release()
	req, err := approveOn(ctx, l, code, devKey, decide)
	if err != nil && ctx.Err() != nil {
		err = fmt.Errorf("%w (%v)", context.Cause(ctx), err)
	}
	return req, devKey, err
}

// approveOn runs the approver's side of the exchange on l, one step at a
// time: agree on keys with the new device (which proves it knows the code),
// receive its request, let decide answer it, deliver the welcome. Every
// path ends the stream: a step that fails ends it before it returns.
func approveOn(ctx context.Context, l *link, code Code, devKey ed25519.PublicKey, decide Decide) (Request, error) {
	keys, err := exchangeKeys(l, code)
	if err != nil {
		return Request{}, err
	}
	req, err := receiveRequest(l, keys)
	if err != nil {
		return Request{}, err
	}
	welcome, err := decideOn(ctx, l, keys, req, devKey, decide)
	if err != nil {
		return Request{}, err
	}
	if err := deliverWelcome(l, keys, welcome); err != nil {
		return Request{}, err
	}
	_ = l.st.Close()
	return req, nil
}

// resetWith ends the stream abruptly after a failure, and returns err.
func resetWith(l *link, err error) error {
	_ = l.st.Reset()
	return err
}

// exchangeKeys runs the key exchange (hello, reply, confirm) and returns
// the session's keys once the new device has proven it derived them from
// the same code.
func exchangeKeys(l *link, code Code) (*sessionKeys, error) {
	sid, sh, err := sendHello(l, code)
	if err != nil {
		return nil, err
	}
	reply, err := awaitReply(l)
	if err != nil {
		return nil, err
	}
	yb, err := decodePoint(reply.point, "the new device's point Yb")
	if err != nil {
		return nil, resetWith(l, err)
	}
	keys, err := deriveKeys(sh, yb, sid, sh.public, reply.point)
	if err != nil {
		return nil, resetWith(l, err)
	}
	if want := keys.confirmMAC(roleDevice); !hmac.Equal(reply.mac[:], want[:]) {
		return nil, resetWith(l, fmt.Errorf("%w: check the code shown on the new device and try again", ErrWrongCode))
	}
	if err := l.send(&message{typ: msgConfirm, mac: keys.confirmMAC(roleApprover)}); err != nil {
		return nil, resetWith(l, err)
	}
	return keys, nil
}

// sendHello opens the exchange with a fresh session ID and this side's
// share of a generator derived from the code.
func sendHello(l *link, code Code) ([sidLen]byte, share, error) {
	sid, err := randomSID()
	if err != nil {
		return sid, share{}, resetWith(l, fmt.Errorf("session ID: %w", err))
	}
	ci := channelID(l.st.Conn().LocalPeer(), l.st.Conn().RemotePeer())
	sh, err := newShare(generator(code, ci, sid[:]))
	if err != nil {
		return sid, share{}, resetWith(l, err)
	}
	if err := l.send(&message{typ: msgHello, sid: sid, point: sh.public}); err != nil {
		return sid, share{}, resetWith(l, err)
	}
	return sid, sh, nil
}

// awaitReply receives the new device's reply to the hello, or its refusal
// (busy, no longer waiting), which comes before any key is confirmed and so
// carries no tag.
func awaitReply(l *link) (message, error) {
	reply, err := l.recv("the new device's reply", maxSmallFrameSize, l.cfg.step)
	if err != nil {
		return message{}, resetWith(l, err)
	}
	switch reply.typ {
	case msgReply:
		return reply, nil
	case msgRefusal:
		if reply.tagged {
			return message{}, resetWith(l, fmt.Errorf("%w: tagged refusal before key confirmation", ErrProtocol))
		}
		_ = l.st.Close()
		return message{}, refusalError(reply)
	}
	return message{}, resetWith(l, unexpected(reply, msgReply))
}

// receiveRequest receives and authenticates the new device's request. An
// invalid request is refused, with the reason, under the session's key.
func receiveRequest(l *link, keys *sessionKeys) (Request, error) {
	m, err := l.recv("the new device's request", maxSmallFrameSize, l.cfg.step)
	if err == nil && m.typ != msgRequest {
		err = unexpected(m, msgRequest)
	}
	if err == nil {
		err = keys.open(&m)
	}
	if err != nil {
		return Request{}, resetWith(l, err)
	}
	req := Request{Name: m.name}
	if err := req.Validate(); err != nil {
		err = fmt.Errorf("%w: the new device's request: %v", ErrProtocol, err)
		refusal := message{typ: msgRefusal, reason: reasonInvalid, text: err.Error()}
		keys.seal(&refusal)
		l.finish(&refusal)
		return Request{}, err
	}
	return req, nil
}

// decideOn asks decide, under DecideTimeout, for the welcome of the new
// device. A refusal (or a welcome too large to send) is sent to the new
// device, with its reason, under the session's key.
func decideOn(ctx context.Context, l *link, keys *sessionKeys, req Request, devKey ed25519.PublicKey, decide Decide) ([]byte, error) {
	dctx, cancel := context.WithTimeout(ctx, l.cfg.decide)
	welcome, err := decide(dctx, req, bytes.Clone(devKey))
	cancel()
	if err == nil && len(welcome) > MaxWelcomeSize {
		err = fmt.Errorf("the welcome is %d bytes, at most %d fit", len(welcome), MaxWelcomeSize)
	}
	if err != nil {
		refusal := message{typ: msgRefusal, reason: reasonDenied, text: wire.Truncate(err.Error(), maxReasonLen)}
		keys.seal(&refusal)
		l.finish(&refusal)
		return nil, fmt.Errorf("the new device %q was not approved: %w", req.Name, err)
	}
	return welcome, nil
}

// deliverWelcome sends the welcome and waits for the new device to
// acknowledge it. An error here leaves the outcome open: the new device may
// or may not hold the welcome.
func deliverWelcome(l *link, keys *sessionKeys, welcome []byte) error {
	w := message{typ: msgWelcome, payload: welcome}
	keys.seal(&w)
	if err := l.send(&w); err != nil {
		return resetWith(l, fmt.Errorf("approved, but %w", err))
	}
	ack, err := l.recv("the new device's acknowledgement", maxSmallFrameSize, l.cfg.step)
	if err == nil && ack.typ != msgAck {
		err = unexpected(ack, msgAck)
	}
	if err == nil {
		err = keys.open(&ack)
	}
	if err != nil {
		return resetWith(l, fmt.Errorf("approved and welcome sent, but the new device did not acknowledge it (check it, and approve again if it still waits): %w", err))
	}
	return nil
}

// refusalError is the error for a new device's refusal before key
// confirmation.
func refusalError(m message) error {
	text := wire.Sanitize(m.text)
	switch m.reason {
	case reasonBusy:
		return fmt.Errorf("%w: %s", ErrBusy, text)
	case reasonNotWaiting:
		return fmt.Errorf("the new device is no longer waiting for approval (it was approved, gave up or stopped): %s", text)
	case reasonInvalid:
		return fmt.Errorf("%w: the new device says: %s", ErrProtocol, text)
	}
	return fmt.Errorf("the new device refused: %s", text)
}

// openStream opens the pairing stream to dev. A device that is connected but
// does not speak the protocol yet is still starting to wait (the user read
// the code out a moment early): asking again every 100 ms until ctx ends is
// what the user would do by hand.
func openStream(ctx context.Context, h host.Host, dev peer.ID) (network.Stream, error) {
	for {
		st, err := h.NewStream(ctx, dev, ProtocolID)
		if err == nil || !errors.Is(err, msmux.ErrNotSupported[protocol.ID]{}) {
			return st, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(100 * time.Millisecond):
		}
	}
}
