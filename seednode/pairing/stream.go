package pairing

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/seedfleet/seedfleet/internal/wire"
)

// config holds the timeouts of an exchange; tests shorten them.
type config struct {
	step   time.Duration // each message sent or received
	decide time.Duration // the approver's Decide
	linger time.Duration // waiting for the peer to close after our last message
}

func defaultConfig() config {
	return config{step: StepTimeout, decide: DecideTimeout, linger: 5 * time.Second}
}

// link is one side of a pairing stream: framed messages under deadlines,
// with the memory of every frame reserved from the stream's scope.
type link struct {
	st  network.Stream
	br  *bufio.Reader
	cfg config
}

// openLink attaches st to the pairing service's resource scope and
// reserves its read buffer; release returns it.
func openLink(st network.Stream, cfg config) (*link, error) {
	if err := st.Scope().SetService(ServiceName); err != nil {
		return nil, fmt.Errorf("resource manager refused the stream: %w", err)
	}
	if err := st.Scope().ReserveMemory(readBufSize, network.ReservationPriorityMedium); err != nil {
		return nil, fmt.Errorf("resource manager refused %d bytes for the stream: %w", readBufSize, err)
	}
	return &link{st: st, br: bufio.NewReaderSize(st, readBufSize), cfg: cfg}, nil
}

func (l *link) release() { l.st.Scope().ReleaseMemory(readBufSize) }

// send writes m within one step.
func (l *link) send(m *message) error {
	_ = l.st.SetWriteDeadline(time.Now().Add(l.cfg.step))
	if err := wire.WriteFrame(l.st, m.append(nil)); err != nil {
		return fmt.Errorf("send %s: %w", msgName(m.typ), err)
	}
	return nil
}

// recv reads one message of at most limit bytes within timeout; what
// names it for errors. Errors from the peer's bytes wrap ErrProtocol.
func (l *link) recv(what string, limit int, timeout time.Duration) (message, error) {
	_ = l.st.SetReadDeadline(time.Now().Add(timeout))
	n, err := wire.ReadLength(l.br, limit, ErrProtocol)
	if err != nil {
		return message{}, recvError(what, timeout, err)
	}
	if err := l.st.Scope().ReserveMemory(n, network.ReservationPriorityMedium); err != nil {
		return message{}, fmt.Errorf("waiting for %s: resource manager refused %d bytes for it: %w", what, n, err)
	}
	defer l.st.Scope().ReleaseMemory(n)
	body, err := wire.ReadBody(l.br, nil, n)
	if err != nil {
		return message{}, recvError(what, timeout, err)
	}
	m, err := decodeMessage(body)
	if err != nil {
		return message{}, fmt.Errorf("waiting for %s: %w", what, err)
	}
	return m, nil
}

func recvError(what string, timeout time.Duration, err error) error {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("no %s from the peer within %s: %w", what, timeout, err)
	case errors.Is(err, io.EOF):
		return fmt.Errorf("waiting for %s: the peer closed the stream: %w", what, io.ErrUnexpectedEOF)
	}
	return fmt.Errorf("waiting for %s: %w", what, err)
}

// finish sends m, if not nil, as the last message, then waits (briefly,
// reading a bounded amount) for the peer to close its side, so that the
// stream is not reset under a message the peer has not read yet.
func (l *link) finish(m *message) {
	if m != nil {
		if err := l.send(m); err != nil {
			_ = l.st.Reset()
			return
		}
	}
	if err := l.st.CloseWrite(); err != nil {
		_ = l.st.Reset()
		return
	}
	_ = l.st.SetReadDeadline(time.Now().Add(l.cfg.linger))
	if _, err := io.CopyN(io.Discard, l.br, maxSmallFrameSize); err != io.EOF {
		_ = l.st.Reset()
		return
	}
	_ = l.st.Close()
}

// refuse ends the stream with an untagged refusal: for what happens before
// key confirmation, and so is not authenticated by the code.
func (l *link) refuse(reason byte, text string) {
	l.finish(&message{typ: msgRefusal, reason: reason, text: wire.Truncate(text, maxReasonLen)})
}

// unexpected is the error for a message of the wrong type.
func unexpected(got message, want byte) error {
	return fmt.Errorf("%w: got a %s, want a %s", ErrProtocol, msgName(got.typ), msgName(want))
}
