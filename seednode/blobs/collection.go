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

// FetchCollection fetches a collection and then every member, verifying
// each against its hash; sizes come from the collection. Progress counts
// all members together.
func (s *Service) FetchCollection(ctx context.Context, p peer.ID, h [32]byte, opts FetchOptions) (Collection, FetchStats, error) {
	total, err := s.Fetch(ctx, p, h, FetchOptions{Size: opts.Size, MaxSize: MaxCollectionSize})
	if err != nil {
		return nil, total, fmt.Errorf("collection %x: %w", h[:8], err)
	}
	c, err := s.store.ReadCollection(h)
	if err != nil {
		return nil, total, err
	}
	var all uint64
	for _, e := range c {
		all += e.Size
	}
	var done uint64
	for _, e := range c {
		size := e.Size
		mopts := FetchOptions{Size: &size, MaxSize: opts.MaxSize, ProgressEvery: opts.ProgressEvery}
		if opts.Progress != nil {
			base := done
			mopts.Progress = func(fp FetchProgress) {
				opts.Progress(FetchProgress{Size: all, VerifiedBytes: base + fp.VerifiedBytes + fp.ResumedGroups*GroupSize})
			}
		}
		st, err := s.Fetch(ctx, p, e.Hash, mopts)
		if err != nil {
			return c, total, fmt.Errorf("collection member %q: %w", e.Name, err)
		}
		done += size
		total.GroupsFetched += st.GroupsFetched
		total.GroupsSkipped += st.GroupsSkipped
		total.BytesReceived += st.BytesReceived
	}
	total.Complete = true
	total.Size = all
	return c, total, nil
}
