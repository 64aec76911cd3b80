package state

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// Key scheme, inside a private vault (every segment is sealed into a keyed
// tag by the client, so a seed sees neither the document's name nor a hash):
//
//	state/<doc>/~c/<change hash, hex>   one Automerge change, by its author
//	state/<doc>/~s                      the author's latest snapshot (save())
//
// A document name is one or more segments of letters, digits, '.', '_' and
// '-', so the '~' segments cannot collide with a document's own.

// ErrNeedsCgo: this binary was built without cgo, which Automerge needs.
var ErrNeedsCgo = errors.New("agent state needs a binary built with cgo (make build); this one was built with CGO_ENABLED=0")

// ErrMalformed marks a change or snapshot entry that cannot be read.
var ErrMalformed = errors.New("malformed state entry")

const (
	keyRoot        = "state/"
	changeSegment  = "/~c/"
	snapshotSuffix = "/~s"
	maxNameLen     = 200
	maxSegmentLen  = 64
	maxSegments    = 16
	// entryFormat is the first byte of every change and snapshot value.
	entryFormat byte = 1
)

// CheckName reports whether name can name a document.
func CheckName(name string) error {
	if name == "" || len(name) > maxNameLen {
		return fmt.Errorf("document name %q: 1 to %d characters", name, maxNameLen)
	}
	if n := strings.Count(name, "/") + 1; n > maxSegments {
		return fmt.Errorf("document name %q: %d segments (at most %d)", name, n, maxSegments)
	}
	for seg := range strings.SplitSeq(name, "/") {
		if seg == "" || len(seg) > maxSegmentLen || seg == "." || seg == ".." {
			return fmt.Errorf("document name %q: segments of 1 to %d characters, not . or ..", name, maxSegmentLen)
		}
		for _, r := range seg {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
				return fmt.Errorf("document name %q: only letters, digits, '.', '_', '-' and '/' between segments", name)
			}
		}
	}
	return nil
}

// ChangePrefix is the path prefix of a document's change entries.
func ChangePrefix(doc string) string { return keyRoot + doc + changeSegment }

// ChangePath is the path of the change with hash under doc.
func ChangePath(doc string, hash [32]byte) string {
	return ChangePrefix(doc) + hex.EncodeToString(hash[:])
}

// SnapshotPath is the path of a document's snapshots (one per author).
func SnapshotPath(doc string) string { return keyRoot + doc + snapshotSuffix }

// ParseChangePath returns the change hash of a change path of doc.
func ParseChangePath(doc, path string) ([32]byte, error) {
	var h [32]byte
	rest, ok := strings.CutPrefix(path, ChangePrefix(doc))
	if !ok || len(rest) != 2*len(h) {
		return h, fmt.Errorf("%w: path %q is not a change of %s", ErrMalformed, path, doc)
	}
	if _, err := hex.Decode(h[:], []byte(rest)); err != nil || hex.EncodeToString(h[:]) != rest {
		return h, fmt.Errorf("%w: path %q does not end in a change hash in lower-case hex", ErrMalformed, path)
	}
	return h, nil
}

// encodeEntry frames Automerge bytes as a stored value.
func encodeEntry(data []byte) []byte {
	return append([]byte{entryFormat}, data...)
}

// decodeEntry returns the Automerge bytes of a stored value.
func decodeEntry(value []byte) ([]byte, error) {
	if len(value) < 2 {
		return nil, fmt.Errorf("%w: %d bytes", ErrMalformed, len(value))
	}
	if value[0] != entryFormat {
		return nil, fmt.Errorf("%w: format %d (this device reads format %d: update it?)", ErrMalformed, value[0], entryFormat)
	}
	return value[1:], nil
}
