package vault

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
)

// rawSession opens a vault-sync stream and sends a hello, for tests that
// play a misbehaving peer frame by frame.
func abuseSession(t *testing.T, p *pair, ns NamespaceID) (network.Stream, *frameWriter, *frameReader) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := p.sa.host.NewStream(ctx, p.sb.host.ID(), ProtocolID)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Reset() })
	fw := &frameWriter{w: bufio.NewWriter(st)}
	hello := append([]byte{protocolVersion}, ns[:]...)
	hello = append(hello, make([]byte, saltLen)...)
	hello = append(hello, 0)
	if err := fw.write(frameHello, hello); err != nil {
		t.Fatal(err)
	}
	_ = st.SetReadDeadline(time.Now().Add(10 * time.Second))
	return st, fw, &frameReader{r: bufio.NewReader(st)}
}

// readUntilError reads frames until an error frame (returned) or the end.
func abuseReadUntilError(fr *frameReader) (items int, perr *PeerError, err error) {
	for {
		typ, p, err := fr.next()
		if err != nil {
			return items, nil, err
		}
		switch typ {
		case frameItems:
			d := newDecoder(p)
			items += int(d.Uvarint("n"))
		case frameError:
			e := decodePeerError(p)
			if errors.As(e, &perr) {
				return items, perr, nil
			}
			return items, nil, e
		}
	}
}

// TestRepeatedQuestionsAreNotAmplified: a peer that asks for the whole vault
// over and over in one turn is cut off after at most twice the vault.
func TestRepeatedQuestionsAreNotAmplified(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	w := newWriter(t, newNamespaceKey(rng), rng)
	p := newPair(t, w.ns)
	const n = 300
	var items []Item
	for i := range n {
		items = append(items, w.item(t, fmt.Sprintf("k%04d", i), "v", nowMicros()-uint64(1e6)+uint64(i)))
	}
	insert(t, p.b, items...)

	_, fw, fr := abuseSession(t, p, w.ns)
	q := question{kind: qWantAll, node: Root}
	typ, payload := q.frame()
	for range 100 {
		if err := fw.write(typ, payload); err != nil {
			t.Fatal(err)
		}
	}
	if err := fw.write(frameEndTurn, nil); err != nil {
		t.Fatal(err)
	}
	if err := fw.flush(); err != nil {
		t.Fatal(err)
	}
	got, perr, err := abuseReadUntilError(fr)
	if perr == nil || perr.Code != CodeProtocol {
		t.Fatalf("want a protocol error from the seed, got %v / %v after %d items", perr, err, got)
	}
	if got > 2*n+1024 {
		t.Fatalf("seed sent %d entries for a %d-entry vault", got, n)
	}
	// The seed still serves an honest peer.
	var empty pair = *p
	empty.a = testStore(t, StoreOptions{})
	empty.sa = newTestService(t, testHost(t), empty.a, WithPolicy(NewHostedSet(w.ns)))
	t.Cleanup(func() { empty.sa.Close() })
	connect(t, empty.sa.host, p.sb.host)
	if st := empty.sync(t); st.Stored != n {
		t.Fatalf("honest sync after abuse stored %d of %d", st.Stored, n)
	}
}

// TestEndlessTurnsAreCut: a peer that keeps a reconciliation going with
// questions that change nothing is cut off after maxTurns.
func TestEndlessTurnsAreCut(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	w := newWriter(t, newNamespaceKey(rng), rng)
	p := newPair(t, w.ns)
	insert(t, p.b, w.item(t, "only", "v", nowMicros()))
	_, fw, fr := abuseSession(t, p, w.ns)
	// An ID list naming an item the seed lacks: the seed answers with a want
	// (a question), so the session never ends by itself.
	bogus := question{kind: qIDList, node: Root, ids: []itemID{{1, 2, 3}}}
	for turn := 0; ; turn++ {
		if turn > maxTurns+5 {
			t.Fatalf("seed still answering after %d turns", turn)
		}
		typ, payload := bogus.frame()
		if err := fw.write(typ, payload); err != nil {
			break // the seed hung up
		}
		if err := fw.write(frameEndTurn, nil); err != nil {
			break
		}
		if err := fw.flush(); err != nil {
			break
		}
		ended := false
		for {
			typ, p, err := fr.next()
			if err != nil {
				if err == io.EOF || turn > 0 {
					ended = true
					break
				}
				t.Fatal(err)
			}
			if typ == frameError {
				perr := decodePeerError(p).(*PeerError)
				if perr.Code != CodeProtocol {
					t.Fatalf("error code %d: %s", perr.Code, perr.Message)
				}
				if turn < maxTurns-1 {
					t.Fatalf("cut off after %d turns, before the limit", turn)
				}
				return
			}
			if typ == frameEndTurn {
				break
			}
		}
		if ended {
			t.Fatalf("seed closed the stream after %d turns without saying why", turn)
		}
	}
}
