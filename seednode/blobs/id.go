package blobs

import (
	"encoding/base32"
	"strings"
)

// ID is a blob hash in the form people see: 52 lowercase base32 characters
// (RFC 4648, no padding), as the command line, tickets, vault entries and
// the seed's logs write hashes; Short is its first 10, as logs and progress
// lines abbreviate it. Blob errors and logs name blobs only this way.
type ID [32]byte

var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

func (id ID) String() string { return strings.ToLower(idEncoding.EncodeToString(id[:])) }

// Short is the prefix of String that logs and errors use.
func (id ID) Short() string { return id.String()[:10] }
