package sealed

import (
	"fmt"
	"strings"

	"github.com/zeebo/blake3"
)

// Private names: an entry path "a/b/c" is stored under the key
//
//	'p' || tag(a) || tag(b) || tag(c)
//
// where the tag of a segment is the first TagLen bytes of BLAKE3 keyed with a
// key derived from the name key, over the parent's tag (none for the first
// segment) || len(s) (1 byte) || s. The same path always maps to the same
// stored key, and the stored key of a path starts with the stored prefix of
// each of its parent directories, so prefix listing still works by whole
// path segments. Chaining the parent's tag in means one name in two
// directories ("x/f", "y/f") gets two unrelated tags: the seed learns the
// depth of each path and which paths share a directory, never a name.
const (
	// TagLen is the size of the tag that replaces each path segment.
	TagLen = 16

	storedKeyMarker = 'p'
	nameTagContext  = "seedfleet/sealed/names/v1 segment tag"
	maxSegmentLen   = 255
	// maxSegments keeps the stored key (1 + 63*16 = 1009 bytes) within the
	// vault's 1024-byte key limit.
	maxSegments = 63
)

// StoredKey returns the private stored key of an entry path: '/'-separated,
// non-empty segments of at most 255 bytes each, at most 63 segments.
func StoredKey(nk NameKey, path string) ([]byte, error) {
	if path == "" {
		return nil, fmt.Errorf("%w: empty path", ErrInvalidPath)
	}
	return storedKey(nk, path, path)
}

// StoredPrefix returns the stored-key prefix shared by every entry under a
// directory prefix: "" (the whole vault) or whole segments ending in '/'
// ("a/b/"). StoredKey("a/b/c") starts with StoredPrefix("a/b/"). Prefixes
// that end mid-segment ("a/b") cannot be listed, as a tag hides which names
// share their first bytes. The stored prefix of "a/b/" is the stored key of
// "a/b", so a listing also returns an entry named like the directory itself:
// callers skip keys no longer than the prefix.
func StoredPrefix(nk NameKey, prefix string) ([]byte, error) {
	if prefix == "" {
		return []byte{storedKeyMarker}, nil
	}
	dir, ok := strings.CutSuffix(prefix, "/")
	if !ok {
		return nil, fmt.Errorf("%w: prefix %q does not end in '/': listing works by whole path segments", ErrInvalidPath, prefix)
	}
	if dir == "" {
		return nil, fmt.Errorf("%w: prefix %q has an empty segment", ErrInvalidPath, prefix)
	}
	return storedKey(nk, dir, prefix)
}

// storedKey maps the non-empty path to its stored key; shown is what error
// messages quote.
func storedKey(nk NameKey, path, shown string) ([]byte, error) {
	segments := strings.Count(path, "/") + 1
	if segments > maxSegments {
		return nil, fmt.Errorf("%w: %q has %d segments (at most %d)", ErrInvalidPath, shown, segments, maxSegments)
	}
	var tagKey [32]byte
	blake3.DeriveKey(nameTagContext, nk[:], tagKey[:])
	h, err := blake3.NewKeyed(tagKey[:])
	if err != nil {
		return nil, fmt.Errorf("sealed: name tag: %w", err)
	}
	out := make([]byte, 1, 1+segments*TagLen)
	out[0] = storedKeyMarker
	var sum [32]byte
	i := 0
	for seg := range strings.SplitSeq(path, "/") {
		i++
		if seg == "" {
			return nil, fmt.Errorf("%w: %q has an empty segment %d", ErrInvalidPath, shown, i)
		}
		if len(seg) > maxSegmentLen {
			return nil, fmt.Errorf("%w: %q has a segment of %d bytes (at most %d)", ErrInvalidPath, shown, len(seg), maxSegmentLen)
		}
		h.Reset()
		if i > 1 {
			_, _ = h.Write(out[len(out)-TagLen:]) // the parent's tag
		}
		_, _ = h.Write([]byte{byte(len(seg))})
		_, _ = h.WriteString(seg)
		out = append(out, h.Sum(sum[:0])[:TagLen]...)
	}
	return out, nil
}
