package p2p

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/core/sec"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	tptu "github.com/libp2p/go-libp2p/p2p/net/upgrader"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
)

// countingConn counts the writes that reach a TCP connection.
type countingConn struct {
	net.Conn
	writes atomic.Int64
}

func (c *countingConn) Write(b []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(b)
}

type secConstructor func(protocol.ID, crypto.PrivKey, []tptu.StreamMuxer) (sec.SecureTransport, error)

func plainTLS(id protocol.ID, k crypto.PrivKey, m []tptu.StreamMuxer) (sec.SecureTransport, error) {
	return libp2ptls.New(id, k, m)
}

func plainNoise(id protocol.ID, k crypto.PrivKey, m []tptu.StreamMuxer) (sec.SecureTransport, error) {
	return noise.New(id, k, m)
}

// securedPair connects two secure connections over TCP on loopback, made by
// the given security transport; below counts the client's writes to TCP.
func securedPair(t *testing.T, id protocol.ID, newSec secConstructor) (client, server sec.SecureConn, below *countingConn) {
	t.Helper()
	muxers := []tptu.StreamMuxer{{ID: yamux.ID, Muxer: yamux.DefaultTransport}}
	transport := func() (sec.SecureTransport, peer.ID) {
		k, _, err := crypto.GenerateEd25519Key(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		st, err := newSec(id, k, muxers)
		if err != nil {
			t.Fatal(err)
		}
		p, err := peer.IDFromPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return st, p
	}
	cst, _ := transport()
	sst, sid := transport()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	type result struct {
		c   sec.SecureConn
		err error
	}
	accepted := make(chan result, 1)
	go func() {
		raw, err := l.Accept()
		if err != nil {
			accepted <- result{err: err}
			return
		}
		c, err := sst.SecureInbound(ctx, raw, "")
		accepted <- result{c, err}
	}()
	raw, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	below = &countingConn{Conn: raw}
	client, err = cst.SecureOutbound(ctx, below, sid)
	if err != nil {
		t.Fatal(err)
	}
	r := <-accepted
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Cleanup(func() { client.Close(); r.c.Close() })
	return client, r.c, below
}

// writesFor is how many writes to TCP one Write of size bytes on the client
// of a fresh pair makes (after the server read them all, intact).
func writesFor(t *testing.T, id protocol.ID, newSec secConstructor, size int) int64 {
	t.Helper()
	client, server, below := securedPair(t, id, newSec)
	msg := make([]byte, size)
	_, _ = rand.Read(msg)
	got := make(chan []byte, 1)
	go func() {
		b := make([]byte, size)
		if _, err := io.ReadFull(server, b); err != nil {
			got <- nil
			return
		}
		got <- b
	}()
	before := below.writes.Load()
	if n, err := client.Write(msg); err != nil || n != size {
		t.Fatalf("Write: %d, %v", n, err)
	}
	if b := <-got; !bytes.Equal(b, msg) {
		t.Fatal("the server read other bytes than were written")
	}
	return below.writes.Load() - before
}

func TestSecureWriteLeavesInOneWrite(t *testing.T) {
	for _, tc := range []struct {
		name           string
		id             protocol.ID
		plain, batched secConstructor
	}{
		{"tls", libp2ptls.ID, plainTLS, newTLS},
		{"noise", noise.ID, plainNoise, newNoise},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A 64 KiB yamux frame: several records, written one by one
			// without batching, in one write with it.
			frame := 64 << 10
			plain := writesFor(t, tc.id, tc.plain, frame)
			if plain < 2 {
				t.Fatalf("without batching a 64 KiB Write made %d writes: the baseline this test rests on changed", plain)
			}
			if got := writesFor(t, tc.id, tc.batched, frame); got != 1 {
				t.Fatalf("a 64 KiB Write made %d writes below, want 1 (%d without batching)", got, plain)
			}
			// Larger Writes leave in batches of at most maxBatch, each at
			// least half full (a Noise message is half a batch).
			big := 5 * maxBatch / 2
			if got := writesFor(t, tc.id, tc.batched, big); got < 3 || got > 6 {
				t.Fatalf("a %d-byte Write made %d writes below, want 3 to 6 (batches of %d)", big, got, maxBatch)
			}
		})
	}
}

// TestBatchedSecureConnKeepsTheBytes writes messages of varied sizes from
// several goroutines at once: each arrives whole and in its writer's order.
func TestBatchedSecureConnKeepsTheBytes(t *testing.T) {
	for _, tc := range []struct {
		name   string
		id     protocol.ID
		newSec secConstructor
	}{{"tls", libp2ptls.ID, newTLS}, {"noise", noise.ID, newNoise}} {
		t.Run(tc.name, func(t *testing.T) {
			client, server, _ := securedPair(t, tc.id, tc.newSec)
			const writers, perWriter = 4, 60
			// message: writer (1 byte), seq (4), length (4), body, sha256(body)
			var wg sync.WaitGroup
			errs := make(chan error, writers)
			for w := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for seq := range perWriter {
						body := make([]byte, (seq*7919+w*104729)%(300<<10))
						_, _ = rand.Read(body)
						sum := sha256.Sum256(body)
						msg := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32([]byte{byte(w)}, uint32(seq)), uint32(len(body)))
						msg = append(append(msg, body...), sum[:]...)
						if _, err := client.Write(msg); err != nil {
							errs <- err
							return
						}
					}
				}()
			}
			next := make([]uint32, writers)
			for range writers * perWriter {
				var hdr [9]byte
				if _, err := io.ReadFull(server, hdr[:]); err != nil {
					t.Fatal(err)
				}
				w, seq, n := hdr[0], binary.BigEndian.Uint32(hdr[1:]), binary.BigEndian.Uint32(hdr[5:])
				if int(w) >= writers || seq != next[w] {
					t.Fatalf("message %d of writer %d arrived, want %v", seq, w, next)
				}
				next[w]++
				body := make([]byte, n+sha256.Size)
				if _, err := io.ReadFull(server, body); err != nil {
					t.Fatal(err)
				}
				if sum := sha256.Sum256(body[:n]); !bytes.Equal(sum[:], body[n:]) {
					t.Fatalf("message %d of writer %d arrived damaged", seq, w)
				}
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
		})
	}
}

// TestBatchedWriteReportsALostBatch: records that never reached the
// connection are not reported as written.
func TestBatchedWriteReportsALostBatch(t *testing.T) {
	client, _, below := securedPair(t, libp2ptls.ID, newTLS)
	below.Conn.Close()
	n, err := client.Write(make([]byte, 64<<10))
	if err == nil || n != 0 {
		t.Fatalf("Write over a closed connection: %d, %v; want 0 and an error", n, err)
	}
}
