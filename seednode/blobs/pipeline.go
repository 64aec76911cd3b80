package blobs

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	msmux "github.com/multiformats/go-multistream"

	"github.com/seedfleet/seedfleet/internal/wire"
)

// pipelineDepth is how many requests a fetcher keeps unanswered on a
// pipeline: enough that the sender never waits for the next request while
// a small blob's answer crosses the connection.
const pipelineDepth = 64

// errNoPipeline: the peer does not speak ProtocolPipeline (it predates it).
var errNoPipeline = errors.New("the peer does not speak " + ProtocolPipeline)

// member is a blob a pipeline fetches whole: a small one (batchBlobMax at
// most) of known size, claimed by the batch writer.
type member struct {
	hash [32]byte
	size uint64
	name string
}

// memberSink receives a whole small blob into memory: groups are read
// straight into their place in data, tree nodes copied into the outboard.
type memberSink struct {
	size uint64
	data []byte // whole groups
	ob   []byte
}

func (m *memberSink) reset(size uint64) {
	m.size = size
	n := int(NumGroups(size) * GroupSize)
	if cap(m.data) < n {
		m.data = alignedBuffer(n)
	}
	m.data = m.data[:n]
	ob := int(OutboardSize(size))
	if cap(m.ob) < ob {
		m.ob = make([]byte, 0, ob)
	}
	m.ob = m.ob[:ob]
	binary.LittleEndian.PutUint64(m.ob, size)
}

func (m *memberSink) Size(size uint64) error {
	if size != m.size {
		return fmt.Errorf("%w: the peer says %d bytes, the collection says %d", ErrSizeMismatch, size, m.size)
	}
	return nil
}

func (m *memberSink) Parent(off uint64, node []byte) error {
	if off < headerLen || off+uint64(len(node)) > uint64(len(m.ob)) {
		return fmt.Errorf("tree node at outboard offset %d is outside the outboard of a %d-byte blob", off, m.size)
	}
	copy(m.ob[off:], node)
	return nil
}

func (m *memberSink) groupBuffer(i uint64) *[GroupSize]byte {
	return (*[GroupSize]byte)(m.data[i*GroupSize : (i+1)*GroupSize])
}

func (m *memberSink) Group(uint64, []byte) error { return nil } // already in place

// memberResult is what became of one member of a pipeline: nil if it was
// verified and written, else why not (the peer does not have it, refused
// it, or sent data that failed verification).
type memberResult func(m member, err error)

// fetchPipelined fetches ms from p on one ProtocolPipeline stream, in order,
// and hands each verified member to bw; done is called for every member
// answered. It returns how many of ms were answered: after a member fails
// verification, or the stream fails, the rest were not (err says why: a
// verification failure is the member's, reported to done; anything else
// is the stream's). errNoPipeline: p predates the pipeline.
func (s *Service) fetchPipelined(ctx context.Context, p peer.ID, ms []member, bw *batchWriter, done memberResult) (answered int, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel)
	defer stop()
	stream, err := s.host.NewStream(network.WithAllowLimitedConn(ctx, ProtocolPipeline), p, ProtocolPipeline)
	if errors.Is(err, msmux.ErrNotSupported[protocol.ID]{}) {
		return 0, errNoPipeline
	}
	if err != nil {
		return 0, fmt.Errorf("open blob pipeline to %s: %w", p, err)
	}
	defer stream.Close()
	unwatch := context.AfterFunc(ctx, func() { stream.Reset() })
	defer unwatch()
	conn := &deadlineConn{s: stream, idle: s.idle}

	// The requests go out ahead of the answers, at most pipelineDepth
	// unanswered, from their own goroutine.
	slots := make(chan struct{}, pipelineDepth)
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		w := bufio.NewWriterSize(conn, 4096)
		for _, m := range ms {
			select {
			case slots <- struct{}{}:
			default:
				if w.Flush() != nil {
					return
				}
				select {
				case slots <- struct{}{}:
				case <-quit:
					return
				}
			}
			if wire.WriteFrame(w, (&request{hash: m.hash}).encode()) != nil {
				return
			}
		}
		if w.Flush() == nil {
			_ = stream.CloseWrite()
		}
	}()
	defer func() {
		close(quit)
		if err != nil {
			stream.Reset()
		}
		wg.Wait()
	}()

	br := bufio.NewReaderSize(conn, 64<<10)
	n, err := readAnswers(br, ms, func(m member, data, ob []byte) error { return bw.add(m.hash, data, ob) },
		func(m member, err error) {
			if err != nil && (errors.Is(err, ErrVerify) || errors.Is(err, ErrSizeMismatch)) {
				err = fmt.Errorf("blob %s from %s: %w (data verified before it is kept; try another peer)", ID(m.hash).Short(), p, err)
			}
			done(m, err)
			<-slots
		})
	var re *readError
	if errors.As(err, &re) {
		return n, s.ioErr(p, re.err)
	}
	if err != nil {
		return n, fmt.Errorf("peer %s: %w", p, err)
	}
	return n, nil
}

// readError is a failure to read the stream (not the sender's content).
type readError struct{ err error }

func (e *readError) Error() string { return e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

// readAnswers reads a pipeline's answers to the requests for ms, in order:
// each verified member goes to add, then done; a member the sender does
// not have or refuses, or whose data fails verification, goes to done with
// the reason (the rest of a bad answer is read and dropped: its length
// follows from the size, so the stream stays in step). It returns how many
// members were answered. At a member whose size is not the collection's it
// stops, after reporting it to done: the stream is no longer in step. r
// must end right after the last answer.
func readAnswers(r *bufio.Reader, ms []member, add func(m member, data, ob []byte) error, done memberResult) (int, error) {
	sink := &memberSink{}
	for i, m := range ms {
		status, err := r.ReadByte()
		if err != nil {
			return i, &readError{err}
		}
		switch status {
		case statusOK:
		case statusNotFound:
			done(m, fmt.Errorf("%w: the peer does not have blob %s", ErrNotFound, ID(m.hash).Short()))
			continue
		case statusRefused:
			msg, err := wire.ReadFrame(r, 1024, ErrBadAnswer)
			if err != nil {
				if errors.Is(err, ErrBadAnswer) {
					return i, err
				}
				return i, &readError{err}
			}
			done(m, fmt.Errorf("%w: %s", ErrRefused, wire.Sanitize(string(msg))))
			continue
		default:
			return i, fmt.Errorf("%w: unknown status %d", ErrBadAnswer, status)
		}
		sink.reset(m.size)
		cr := &countingReader{r: r}
		if _, err := ReadStream(cr, m.hash, nil, sink); err != nil {
			switch {
			case errors.Is(err, ErrSizeMismatch):
				// The rest of the answer follows a size we will not
				// read: the stream is out of step.
				done(m, err)
				return i + 1, err
			case errors.Is(err, ErrVerify):
				// The answer's length follows from the size, which is
				// the right one: skip the rest of it and go on.
				done(m, err)
				if _, err := io.CopyN(io.Discard, r, streamLen(m.size)-cr.n); err != nil {
					return i + 1, &readError{err}
				}
				continue
			}
			return i, &readError{err}
		}
		if err := add(m, sink.data[:m.size], sink.ob); err != nil {
			return i, err
		}
		done(m, nil)
	}
	// Every request is answered: the sender ends the stream.
	if _, err := r.ReadByte(); err == nil {
		return len(ms), fmt.Errorf("%w: bytes past the last answer", ErrBadAnswer)
	}
	return len(ms), nil
}

// streamLen is the length of the verified stream of a whole blob of size
// bytes (its size, tree nodes and data), at most batchBlobMax here.
func streamLen(size uint64) int64 { return int64(headerLen + size + parentLen*(NumGroups(size)-1)) }

// ErrBadAnswer marks a pipeline answer that breaks the protocol.
var ErrBadAnswer = errors.New("malformed blob pipeline answer")
