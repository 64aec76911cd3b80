package client

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// The address book keeps, per peer, the addresses this device last reached it
// on. A peer given with a stale address (a seed that moved, an old ticket, a
// typo in the port) is still found under its peer ID: the addresses that
// worked before are dialled with the given ones.
const (
	addrBookFile     = "addrs.json" // in <home>/peers/, beside the per-vault files
	maxAddrBookPeers = 64
	maxAddrsPerPeer  = 4
	maxAddrBookBytes = 1 << 20 // a larger file is not ours: it is ignored
)

type addrBookEntry struct {
	ID     string   `json:"id"`
	Addrs  []string `json:"addrs"`
	LastOK int64    `json:"lastOK"` // Unix seconds
}

func (h *Home) addrBookPath() string { return filepath.Join(h.Dir, "peers", addrBookFile) }

// readAddrBook returns the book, most recently reached peer first. A missing,
// damaged or oversized file is an empty book: it is only a hint, rewritten
// at the next successful connection.
func (h *Home) readAddrBook() []addrBookEntry {
	f, err := os.Open(h.addrBookPath())
	if err != nil {
		return nil
	}
	defer f.Close()
	var book []addrBookEntry
	if fi, err := f.Stat(); err != nil || fi.Size() > maxAddrBookBytes {
		return nil
	}
	if err := json.NewDecoder(f).Decode(&book); err != nil {
		return nil
	}
	return book
}

// withKnownAddrs returns p with the addresses that reached p.ID before
// appended (after the given ones, so those are still dialled first).
func (h *Home) withKnownAddrs(p peer.AddrInfo) peer.AddrInfo {
	for _, e := range h.readAddrBook() {
		if e.ID != p.ID.String() {
			continue
		}
		out := peer.AddrInfo{ID: p.ID, Addrs: slices.Clone(p.Addrs)}
		for _, s := range e.Addrs {
			a, err := ma.NewMultiaddr(s)
			if err == nil && !slices.ContainsFunc(out.Addrs, a.Equal) {
				out.Addrs = append(out.Addrs, a)
			}
		}
		return out
	}
	return p
}

// rememberWorkingAddrs records the addresses hst is connected to id on now
// (those worked), ahead of what the book held for id.
func (h *Home) rememberWorkingAddrs(hst host.Host, id peer.ID) error {
	var working []string
	for _, c := range hst.Network().ConnsToPeer(id) {
		if s := c.RemoteMultiaddr().String(); !slices.Contains(working, s) {
			working = append(working, s)
		}
	}
	if len(working) == 0 {
		return nil
	}
	book := h.readAddrBook()
	if i := slices.IndexFunc(book, func(e addrBookEntry) bool { return e.ID == id.String() }); i >= 0 {
		for _, s := range book[i].Addrs {
			if !slices.Contains(working, s) {
				working = append(working, s)
			}
		}
		book = slices.Delete(book, i, i+1)
	}
	if len(working) > maxAddrsPerPeer {
		working = working[:maxAddrsPerPeer]
	}
	book = append([]addrBookEntry{{ID: id.String(), Addrs: working, LastOK: time.Now().Unix()}}, book...)
	if len(book) > maxAddrBookPeers {
		book = book[:maxAddrBookPeers]
	}
	if err := os.MkdirAll(filepath.Dir(h.addrBookPath()), 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return writeJSON(h.addrBookPath(), book)
}
