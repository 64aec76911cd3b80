package blobs

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// A collection is a blob that lists (name, hash, size) triples: a directory
// or an album, fetched as a unit. Names are relative slash-separated paths,
// unique and sorted, so one set of files has one collection hash.

// Collection limits, part of the format.
const (
	collectionMagic   = "seedfleet/collection/v1\x00"
	MaxCollectionSize = 16 << 20
	MaxNameLen        = 4096
)

// ErrBadCollection marks an invalid collection.
var ErrBadCollection = errors.New("invalid collection")

// CollectionEntry is one member of a collection.
type CollectionEntry struct {
	Name string
	Hash [32]byte
	Size uint64
}

// Collection is a sorted list of members.
type Collection []CollectionEntry

// ValidName reports whether a member name is safe to write under a
// directory: relative, clean, no "..", no empty or dot segments.
func ValidName(name string) error {
	switch {
	case name == "" || len(name) > MaxNameLen:
		return fmt.Errorf("%w: name of %d bytes", ErrBadCollection, len(name))
	case strings.HasPrefix(name, "/") || strings.Contains(name, "\\") || strings.ContainsRune(name, 0):
		return fmt.Errorf("%w: name %q must be a relative slash path", ErrBadCollection, name)
	case path.Clean(name) != name || name == "." || strings.HasPrefix(name, "../") || name == "..":
		return fmt.Errorf("%w: name %q is not a clean path inside the collection", ErrBadCollection, name)
	}
	return nil
}

// MarshalBinary encodes the collection (sorting it by name).
func (c Collection) MarshalBinary() ([]byte, error) {
	c = slices.Clone(c)
	slices.SortFunc(c, func(a, b CollectionEntry) int { return strings.Compare(a.Name, b.Name) })
	b := []byte(collectionMagic)
	b = binary.AppendUvarint(b, uint64(len(c)))
	for i, e := range c {
		if err := ValidName(e.Name); err != nil {
			return nil, err
		}
		if i > 0 && c[i-1].Name == e.Name {
			return nil, fmt.Errorf("%w: name %q twice", ErrBadCollection, e.Name)
		}
		b = binary.AppendUvarint(b, uint64(len(e.Name)))
		b = append(b, e.Name...)
		b = append(b, e.Hash[:]...)
		b = binary.AppendUvarint(b, e.Size)
	}
	if len(b) > MaxCollectionSize {
		return nil, fmt.Errorf("%w: %d bytes encoded (limit %d)", ErrBadCollection, len(b), MaxCollectionSize)
	}
	return b, nil
}

// ParseCollection decodes a collection strictly (sorted, unique, safe names,
// canonical encoding, no trailing bytes).
func ParseCollection(b []byte) (Collection, error) {
	if len(b) > MaxCollectionSize {
		return nil, fmt.Errorf("%w: %d bytes (limit %d)", ErrBadCollection, len(b), MaxCollectionSize)
	}
	if !bytes.HasPrefix(b, []byte(collectionMagic)) {
		return nil, fmt.Errorf("%w: not a collection (bad magic)", ErrBadCollection)
	}
	b = b[len(collectionMagic):]
	uv := func(what string) (uint64, error) {
		v, n := binary.Uvarint(b)
		if n <= 0 || n != len(binary.AppendUvarint(nil, v)) {
			return 0, fmt.Errorf("%w: bad %s", ErrBadCollection, what)
		}
		b = b[n:]
		return v, nil
	}
	n, err := uv("count")
	if err != nil {
		return nil, err
	}
	if n > uint64(len(b)/34) {
		return nil, fmt.Errorf("%w: %d members cannot fit in %d bytes", ErrBadCollection, n, len(b))
	}
	c := make(Collection, 0, n)
	for i := uint64(0); i < n; i++ {
		l, err := uv("name length")
		if err != nil {
			return nil, err
		}
		if l > MaxNameLen || l > uint64(len(b)) {
			return nil, fmt.Errorf("%w: member %d: name length %d", ErrBadCollection, i, l)
		}
		e := CollectionEntry{Name: string(b[:l])}
		b = b[l:]
		if len(b) < 32 {
			return nil, fmt.Errorf("%w: member %d truncated", ErrBadCollection, i)
		}
		copy(e.Hash[:], b)
		b = b[32:]
		if e.Size, err = uv("size"); err != nil {
			return nil, err
		}
		if err := ValidName(e.Name); err != nil {
			return nil, err
		}
		if len(c) > 0 && c[len(c)-1].Name >= e.Name {
			return nil, fmt.Errorf("%w: names not sorted or repeated at %q", ErrBadCollection, e.Name)
		}
		c = append(c, e)
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrBadCollection, len(b))
	}
	return c, nil
}

// AddCollection stores c as a blob and returns its hash and size.
func (s *Store) AddCollection(c Collection) ([32]byte, uint64, error) {
	b, err := c.MarshalBinary()
	if err != nil {
		return [32]byte{}, 0, err
	}
	h, err := s.AddBytes(b)
	return h, uint64(len(b)), err
}

// ReadCollection reads and parses a complete collection blob.
func (s *Store) ReadCollection(h [32]byte) (Collection, error) {
	b, err := s.OpenBlob(h)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	if b.Size > MaxCollectionSize {
		return nil, fmt.Errorf("%w: %d bytes (limit %d)", ErrBadCollection, b.Size, MaxCollectionSize)
	}
	data, err := io.ReadAll(io.NewSectionReader(b.Data, 0, int64(b.Size)))
	if err != nil {
		return nil, err
	}
	return ParseCollection(data)
}

// FetchCollection fetches a collection and then every member from p (see
// FetchCollectionFrom).
func (s *Service) FetchCollection(ctx context.Context, p peer.ID, h [32]byte, opts FetchOptions) (Collection, FetchStats, error) {
	return s.FetchCollectionFrom(ctx, []peer.ID{p}, h, opts)
}

// FetchCollectionFrom fetches a collection, then every member it lacks,
// verifying each against its hash; sizes come from the collection, and
// opts.MaxSize bounds each member. Members complete here are not fetched
// again. Small members (up to 4 MiB) travel pipelined on one stream per
// peer and are made durable in batches (see batchWriter); larger ones and
// those partly fetched before are fetched one at a time, resuming. Each
// member is fetched from the first of peers that serves it: a member a
// peer does not have, refuses, or sends data for that fails verification is
// fetched from the next peer while the rest go on from this one. Progress
// counts all members together, by bytes and by members.
func (s *Service) FetchCollectionFrom(ctx context.Context, peers []peer.ID, h [32]byte, opts FetchOptions) (Collection, FetchStats, error) {
	if len(peers) == 0 {
		return nil, FetchStats{}, errors.New("fetch collection: no peer to fetch from")
	}
	var total FetchStats
	var err error
	for _, p := range peers {
		total, err = s.Fetch(ctx, p, h, FetchOptions{Size: opts.Size, MaxSize: MaxCollectionSize})
		if err == nil || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		return nil, total, fmt.Errorf("collection %x: %w", h[:8], err)
	}
	c, err := s.store.ReadCollection(h)
	if err != nil {
		return nil, total, err
	}
	f := &collectionFetch{s: s, opts: opts, c: c, bw: s.store.newBatchWriter()}
	defer f.bw.close()
	stats, err := f.run(ctx, peers)
	stats.GroupsFetched += total.GroupsFetched
	stats.BytesReceived += total.BytesReceived
	return c, stats, err
}

// collectionFetch is one FetchCollectionFrom's members.
type collectionFetch struct {
	s    *Service
	opts FetchOptions
	c    Collection
	bw   *batchWriter

	progress FetchProgress
	last     time.Time
	stats    FetchStats
	failed   map[[32]byte]error // why a member is still missing (the last peer's answer)
}

func (f *collectionFetch) report(force bool) {
	if f.opts.Progress == nil {
		return
	}
	every := f.opts.ProgressEvery
	if every == 0 {
		every = 100 * time.Millisecond
	}
	if force || every < 0 || time.Since(f.last) > every {
		f.last = time.Now()
		f.opts.Progress(f.progress)
	}
}

func (f *collectionFetch) run(ctx context.Context, peers []peer.ID) (FetchStats, error) {
	small, large, err := f.plan()
	if err != nil {
		return f.stats, err
	}
	f.report(true)
	f.failed = map[[32]byte]error{}
	for _, p := range peers {
		if len(small) == 0 || ctx.Err() != nil {
			break
		}
		small = f.fetchSmall(ctx, p, small)
	}
	if err := f.bw.flush(); err != nil {
		return f.stats, err
	}
	for _, m := range large {
		if err := f.fetchLarge(ctx, peers, m); err != nil {
			f.failed[m.hash] = err
			small = append(small, m)
		}
	}
	f.report(true)
	if err := ctx.Err(); err != nil {
		return f.stats, err
	}
	if len(small) > 0 {
		m := small[0]
		return f.stats, fmt.Errorf("%d of %d members could not be fetched from any of %d peers (a later fetch resumes); member %q: %w",
			len(small), f.progress.Members, len(peers), m.name, f.failed[m.hash])
	}
	f.stats.Complete = true
	return f.stats, nil
}

// plan counts the members complete here and sorts the others into those a
// pipeline fetches (claimed for the batch writer) and those fetched alone.
func (f *collectionFetch) plan() (small, large []member, err error) {
	seen := map[[32]byte]bool{}
	for _, e := range f.c {
		f.progress.Size += e.Size
		f.stats.Size += e.Size
		f.progress.Members++
		if seen[e.Hash] {
			f.progress.MembersDone++ // the same blob under another name
			f.progress.VerifiedBytes += e.Size
			continue
		}
		seen[e.Hash] = true
		if f.opts.MaxSize > 0 && e.Size > f.opts.MaxSize {
			return nil, nil, fmt.Errorf("collection member %q: %d bytes exceeds the allowed %d bytes", e.Name, e.Size, f.opts.MaxSize)
		}
		st, err := f.s.store.Stat(e.Hash)
		if err != nil {
			return nil, nil, err
		}
		m := member{hash: e.Hash, size: e.Size, name: e.Name}
		switch {
		case st.State == Complete && st.Size == e.Size:
			f.progress.MembersDone++
			f.progress.VerifiedBytes += e.Size
			f.stats.MembersSkipped++
		case st.State == Missing && e.Size <= batchBlobMax && f.bw.claim(e.Hash) == nil:
			small = append(small, m)
		default:
			large = append(large, m)
		}
	}
	return small, large, nil
}

// fetchSmall fetches ms from p through pipelines (a new one after a member
// fails verification, which ends a stream) and returns those still missing.
func (f *collectionFetch) fetchSmall(ctx context.Context, p peer.ID, ms []member) []member {
	var missing []member
	done := func(m member, err error) {
		if err != nil {
			f.failed[m.hash] = err
			missing = append(missing, m)
			return
		}
		delete(f.failed, m.hash)
		f.progress.MembersDone++
		f.progress.VerifiedBytes += m.size
		f.stats.MembersFetched++
		f.stats.GroupsFetched += NumGroups(m.size)
		f.report(false)
	}
	for len(ms) > 0 && ctx.Err() == nil {
		n, err := f.s.fetchPipelined(ctx, p, ms, f.bw, done)
		ms = ms[n:]
		switch {
		case err == nil:
		case errors.Is(err, errNoPipeline):
			// A peer that predates the pipeline: one stream per member.
			for _, m := range ms {
				err := f.fetchOne(ctx, p, m)
				if ctx.Err() != nil {
					return append(missing, ms...)
				}
				done(m, err)
			}
			return missing
		case errors.Is(err, ErrSizeMismatch):
			// That member is another peer's now; the rest go on from p,
			// on a new stream (this one is out of step).
		default:
			if n == 0 {
				// Nothing answered: p is gone or broken. The rest are
				// the next peer's.
				for _, m := range ms {
					if f.failed[m.hash] == nil {
						f.failed[m.hash] = err
					}
				}
				return append(missing, ms...)
			}
		}
	}
	return append(missing, ms...)
}

// fetchOne fetches a member alone (see Fetch), from one peer.
func (f *collectionFetch) fetchOne(ctx context.Context, p peer.ID, m member) error {
	size := m.size
	mopts := FetchOptions{Size: &size, MaxSize: f.opts.MaxSize, ProgressEvery: f.opts.ProgressEvery}
	if f.opts.Progress != nil {
		base := f.progress
		mopts.Progress = func(fp FetchProgress) {
			pr := base
			pr.VerifiedBytes += fp.VerifiedBytes + fp.ResumedGroups*GroupSize
			f.opts.Progress(pr)
		}
	}
	f.bw.unclaim(m.hash) // Fetch claims it itself
	st, err := f.s.Fetch(ctx, p, m.hash, mopts)
	f.stats.GroupsFetched += st.GroupsFetched
	f.stats.GroupsSkipped += st.GroupsSkipped
	f.stats.BytesReceived += st.BytesReceived
	if err == nil && !st.Complete {
		err = fmt.Errorf("blob %s: incomplete after the fetch", ID(m.hash).Short())
	}
	if err != nil {
		return fmt.Errorf("collection member %q: %w", m.name, err)
	}
	return nil
}

// fetchLarge fetches a member alone from the first of peers that serves it.
func (f *collectionFetch) fetchLarge(ctx context.Context, peers []peer.ID, m member) error {
	var err error
	for _, p := range peers {
		if err = f.fetchOne(ctx, p, m); err == nil {
			f.progress.MembersDone++
			f.progress.VerifiedBytes += m.size
			f.stats.MembersFetched++
			f.report(false)
			return nil
		}
		if ctx.Err() != nil {
			return err
		}
	}
	return err
}
