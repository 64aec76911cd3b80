package p2p

import (
	"context"
	"net"
	"sync"

	pool "github.com/libp2p/go-buffer-pool"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/core/sec"
	tptu "github.com/libp2p/go-libp2p/p2p/net/upgrader"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
)

// One Write, one write below it.
//
// A secure connection's Write leaves as several records: TLS seals at most
// 16 KiB per record and Noise 64 KiB per message, and both hand each record to
// the connection below with its own Write. Over TCP that is a system call per
// record, four for each 64 KiB frame yamux writes. Over a relayed connection
// it is worse: the connection below is a yamux stream to the relay, so each
// 16,406-byte TLS record becomes a yamux frame of 16,418 bytes, which the
// outer TLS connection sends as a full record and a 34-byte one — two system
// calls, two seals and two opens on every hop for every 16 KiB.
//
// batchingSecurity wraps a security transport so that everything one Write of
// the secure connection produces leaves in one Write to the connection below
// (up to maxBatch bytes at a time). Nothing waits: the batch is written before
// the secure connection's Write returns, so latency is unchanged; the bytes on
// the wire are exactly the same, only fewer writes carry them. What the
// security protocol writes outside a Write of its connection (its handshake,
// a close alert, a key update answered while reading) passes straight through.

const (
	// maxBatch bounds the bytes a batch holds before it is written: the
	// four TLS records of a 64 KiB yamux frame fit with room to spare.
	maxBatch = 128 << 10
	// oneRecord is the most a Write may carry and still leave as one TLS
	// record (Noise's messages are larger): such a Write is not batched, so
	// the small messages of live sessions cost neither a copy nor a buffer.
	oneRecord = 16 << 10
)

// newTLS and newNoise are go-libp2p's TLS and Noise transports with batched
// writes; libp2p.Security takes them in place of libp2ptls.New and noise.New.
func newTLS(id protocol.ID, key crypto.PrivKey, muxers []tptu.StreamMuxer) (sec.SecureTransport, error) {
	t, err := libp2ptls.New(id, key, muxers)
	if err != nil {
		return nil, err
	}
	return batchingSecurity{t}, nil
}

func newNoise(id protocol.ID, key crypto.PrivKey, muxers []tptu.StreamMuxer) (sec.SecureTransport, error) {
	t, err := noise.New(id, key, muxers)
	if err != nil {
		return nil, err
	}
	return batchingSecurity{t}, nil
}

// batchingSecurity secures connections with the transport it wraps and
// batches each Write of the secure connection (see above).
type batchingSecurity struct{ sec.SecureTransport }

func (t batchingSecurity) SecureInbound(ctx context.Context, insecure net.Conn, p peer.ID) (sec.SecureConn, error) {
	below := &batchConn{Conn: insecure}
	sc, err := t.SecureTransport.SecureInbound(ctx, below, p)
	if err != nil {
		return nil, err
	}
	return &batchedSecureConn{SecureConn: sc, below: below}, nil
}

func (t batchingSecurity) SecureOutbound(ctx context.Context, insecure net.Conn, p peer.ID) (sec.SecureConn, error) {
	below := &batchConn{Conn: insecure}
	sc, err := t.SecureTransport.SecureOutbound(ctx, below, p)
	if err != nil {
		return nil, err
	}
	return &batchedSecureConn{SecureConn: sc, below: below}, nil
}

// batchedSecureConn is a secure connection whose Write holds what the
// security protocol writes below it until the Write is done.
type batchedSecureConn struct {
	sec.SecureConn
	below *batchConn
}

func (c *batchedSecureConn) Write(b []byte) (int, error) {
	if len(b) <= oneRecord {
		// One record either way: nothing to batch, nothing to copy.
		return c.SecureConn.Write(b)
	}
	c.below.hold(len(b))
	n, err := c.SecureConn.Write(b)
	if ferr := c.below.release(); err == nil && ferr != nil {
		// The records were accepted but never reached the connection: the
		// caller must not count them as written.
		return 0, ferr
	}
	return n, err
}

// batchConn is the connection below a security protocol. While a Write of
// the secure connection is under way (holds > 0) it collects what is written
// to it; release writes the collection out. Writes and releases share one
// lock, so bytes leave in the order they were written.
type batchConn struct {
	net.Conn
	mu    sync.Mutex
	holds int
	size  int    // the batch buffer to take: what the holding Write needs
	buf   []byte // pooled; nil when empty
}

// hold starts collecting for a Write of n bytes.
func (c *batchConn) hold(n int) {
	c.mu.Lock()
	c.holds++
	// The records' overhead is well under 1% (TLS 22 bytes in 16 KiB).
	c.size = min(maxBatch, n+n/128+256)
	c.mu.Unlock()
}

// release ends one hold and writes out what was collected. It writes even if
// another Write still holds (concurrent Writes of one secure connection are
// serialised by the security protocol, so the collection is a prefix of the
// stream either way), which keeps a returned Write from sitting in a buffer.
func (c *batchConn) release() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.holds--
	return c.flushLocked()
}

func (c *batchConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.holds == 0 {
		return c.Conn.Write(b) // the collection is always empty here
	}
	if c.buf != nil && len(c.buf)+len(b) > cap(c.buf) {
		if err := c.flushLocked(); err != nil {
			return 0, err
		}
	}
	if c.buf == nil {
		if len(b) >= c.size {
			return c.Conn.Write(b)
		}
		c.buf = pool.Get(c.size)[:0]
	}
	c.buf = append(c.buf, b...)
	return len(b), nil
}

func (c *batchConn) flushLocked() error {
	if len(c.buf) == 0 {
		return nil
	}
	_, err := c.Conn.Write(c.buf)
	pool.Put(c.buf[:cap(c.buf)])
	c.buf = nil
	return err
}
