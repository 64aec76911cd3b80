package client

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/seedfleet/seedfleet/internal/dirlock"
	"github.com/seedfleet/seedfleet/seednode/blobs"
	"github.com/seedfleet/seedfleet/seednode/identity"
	"github.com/seedfleet/seedfleet/seednode/p2p"
	"github.com/seedfleet/seedfleet/seednode/relay"
	"github.com/seedfleet/seedfleet/seednode/vault"
)

// ErrNoWriteAccess is returned by Put for a vault this device cannot write.
var ErrNoWriteAccess = errors.New("this device holds no write capability for the vault")

// Home is a device's directory:
//
//	identity.key        the device (author) key, 0600
//	vaults/<id>.key     namespace keys of vaults this device created, 0600
//	store/              the local Pebble replica of every vault it syncs
//	blobs/              values larger than vault.MaxInlineValue, by hash
//	lock                held while a process has the home open (its kind and PID)
//	peers/              the peers that served each vault, and the addresses that worked
type Home struct {
	Dir   string
	Key   ed25519.PrivateKey
	Store *vault.Store
	Blobs *blobs.Store

	lock *dirlock.Lock

	keyringsMu sync.Mutex
	keyrings   map[vault.NamespaceID]cachedKeyring // see Keyring
}

// KeyPath is where a home keeps its device key.
func KeyPath(dir string) string { return filepath.Join(dir, "identity.key") }

// CreateKey makes the device key; it refuses to replace an existing one.
func CreateKey(dir string) (ed25519.PrivateKey, error) {
	key, err := identity.Generate()
	if err != nil {
		return nil, err
	}
	if err := identity.Save(KeyPath(dir), key); err != nil {
		return nil, err
	}
	return key, nil
}

// ErrNoHome: Open with MustExist found no device key in the directory.
var ErrNoHome = errors.New("no device home")

// OpenOption tunes Open.
type OpenOption func(*openOptions)

type openOptions struct {
	mustExist bool
	holder    string
}

// MustExist makes Open refuse a directory that holds no device key instead of
// creating one: a mistyped home would otherwise become a new, empty device.
func MustExist() OpenOption { return func(o *openOptions) { o.mustExist = true } }

// HeldBy names what holds the home while it is open (e.g. "seedfleet sync
// --live"); another Open of the same home is refused with that name and this
// process's PID. Default: "a seedfleet device".
func HeldBy(kind string) OpenOption { return func(o *openOptions) { o.holder = kind } }

// Open opens a home, creating the device key on first use unless MustExist.
// One process at a time holds a home: a second Open fails with a
// *dirlock.HeldError naming the holder.
func Open(dir string, opts ...OpenOption) (*Home, error) {
	o := openOptions{holder: "a seedfleet device"}
	for _, opt := range opts {
		opt(&o)
	}
	if o.mustExist {
		if _, err := os.Stat(KeyPath(dir)); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w in %s (it holds no %s)", ErrNoHome, dir, filepath.Base(KeyPath(dir)))
		}
	}
	lock, err := dirlock.Acquire(dir, o.holder)
	if err != nil {
		return nil, err
	}
	h, err := openLocked(dir)
	if err != nil {
		lock.Release()
		return nil, err
	}
	h.lock = lock
	return h, nil
}

func openLocked(dir string) (*Home, error) {
	key, _, err := identity.LoadOrCreate(KeyPath(dir))
	if err != nil {
		return nil, err
	}
	st, err := vault.Open(filepath.Join(dir, "store"), vault.StoreOptions{})
	if err != nil {
		return nil, err
	}
	bs, err := blobs.Open(filepath.Join(dir, "blobs"))
	if err != nil {
		st.Close()
		return nil, err
	}
	return &Home{Dir: dir, Key: key, Store: st, Blobs: bs}, nil
}

// Close closes the stores and releases the home.
func (h *Home) Close() error {
	return errors.Join(h.Store.Close(), h.Blobs.Close(), h.lock.Release())
}

// Author is this device's author ID.
func (h *Home) Author() vault.AuthorID { return vault.AuthorID(h.Key.Public().(ed25519.PublicKey)) }

func (h *Home) vaultKeyPath(ns vault.NamespaceID) string {
	return filepath.Join(h.Dir, "vaults", ns.String()+".key")
}

// CreateVault makes a new namespace key; the device that holds it can write.
func (h *Home) CreateVault() (vault.NamespaceID, error) {
	key, err := identity.Generate()
	if err != nil {
		return vault.NamespaceID{}, err
	}
	ns := vault.NamespaceID(key.Public().(ed25519.PublicKey))
	if err := identity.Save(h.vaultKeyPath(ns), key); err != nil {
		return ns, err
	}
	return ns, nil
}

// OwnedVaults lists the vaults whose namespace key this home holds.
func (h *Home) OwnedVaults() ([]vault.NamespaceID, error) {
	ents, err := os.ReadDir(filepath.Join(h.Dir, "vaults"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []vault.NamespaceID
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".key")
		if !ok {
			continue
		}
		if ns, err := vault.ParseNamespaceID(name); err == nil {
			out = append(out, ns)
		}
	}
	return out, nil
}

// Put signs and stores key = value in ns as this device. Values larger than
// vault.MaxInlineValue go to the blob store and the entry refers to them.
func (h *Home) Put(ns vault.NamespaceID, key, value []byte) (vault.SignedEntry, error) {
	if len(value) > vault.MaxInlineValue {
		hash, err := h.Blobs.AddBytes(value)
		if err != nil {
			return vault.SignedEntry{}, err
		}
		return h.putRef(ns, key, hash, uint64(len(value)), nil)
	}
	return h.putRef(ns, key, vault.HashOf(value), uint64(len(value)), value)
}

// PutFile stores the file at path as the value of key (a blob when large).
func (h *Home) PutFile(ns vault.NamespaceID, key []byte, path string, progress func(int64)) (vault.SignedEntry, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return vault.SignedEntry{}, err
	}
	if fi.Size() <= vault.MaxInlineValue {
		data, err := os.ReadFile(path)
		if err != nil {
			return vault.SignedEntry{}, err
		}
		return h.Put(ns, key, data)
	}
	hash, size, err := h.Blobs.AddFile(path, progress)
	if err != nil {
		return vault.SignedEntry{}, err
	}
	return h.putRef(ns, key, hash, size, nil)
}

func (h *Home) putRef(ns vault.NamespaceID, key []byte, hash [32]byte, size uint64, inline []byte) (vault.SignedEntry, error) {
	consent, err := h.capability(ns)
	if err != nil {
		return vault.SignedEntry{}, err
	}
	e := vault.Entry{
		Namespace: ns, Key: key, Author: h.Author(),
		Hash: hash, Size: size,
		Timestamp: h.nextTimestampFor(ns, key, h.Author()),
	}
	se, err := vault.Sign(e, h.Key, consent, nil)
	if err != nil {
		return se, err
	}
	res, err := h.Store.Insert([]vault.Item{{Entry: se, Content: inline}}, 0, true)
	if err != nil {
		return se, err
	}
	if res.Refused > 0 {
		return se, res.FirstRefusal
	}
	return se, nil
}

// capability is this device's write capability for ns, signed with the
// namespace key it holds.
func (h *Home) capability(ns vault.NamespaceID) (vault.Consent, error) {
	nsKey, err := identity.Load(h.vaultKeyPath(ns))
	if errors.Is(err, fs.ErrNotExist) {
		return vault.Consent{}, fmt.Errorf("vault %s: %w (it was created on another device)", ns.Short(), ErrNoWriteAccess)
	}
	if err != nil {
		return vault.Consent{}, err
	}
	return vault.NewCapability(nsKey, h.Author(), 0), nil
}

// nextTimestampFor is now, or just after author's previous write of key
// and its deletion if the clock went backwards, so a write always replaces
// the one before it and is never taken for deleted.
func (h *Home) nextTimestampFor(ns vault.NamespaceID, key []byte, author vault.AuthorID) uint64 {
	items, _ := h.Store.Get(ns, key) // on an error, now is the best guess
	return h.after(ns, key, author, items)
}

// after is now, or just after the newest of author's items and of its
// tombstone covering key.
func (h *Home) after(ns vault.NamespaceID, key []byte, author vault.AuthorID, items []vault.Item) uint64 {
	ts := uint64(time.Now().UnixMicro())
	for _, it := range items {
		if it.Entry.Author == author && it.Entry.Timestamp >= ts {
			ts = it.Entry.Timestamp + 1
		}
	}
	if del, ok, err := h.Store.CoveringTombstone(ns, author, key); err == nil && ok && del >= ts {
		ts = del + 1
	}
	return ts
}

// SyncOptions tune Sync.
type SyncOptions = vault.SyncOptions

// blobQuiet is how long a device stays connected after a sync once the peer
// stopped fetching blobs from it.
const blobQuiet = 750 * time.Millisecond

// Sync reconciles ns with the peer at addr (a multiaddr ending in /p2p/ID).
// With opts.Live it stays connected until ctx ends. The device serves its
// blobs on the same connection, and a one-shot sync returns only once the
// peer has stopped fetching them, so a seed gets the blobs of new entries.
// SyncAny finds a peer when the device has no single address to use.
func (h *Home) Sync(ctx context.Context, ns vault.NamespaceID, addr string, opts SyncOptions) (vault.SyncStats, error) {
	info, err := p2p.ParsePeerAddr(addr)
	if err != nil {
		return vault.SyncStats{}, err
	}
	sess, err := h.openSession(ns)
	if err != nil {
		return vault.SyncStats{}, err
	}
	defer sess.close()
	st, err := sess.sync(ctx, info, opts, 0)
	return st, unwrapSession(err)
}

// session is one device host answering for one vault and its blobs.
type session struct {
	h     *Home
	ns    vault.NamespaceID
	hst   host.Host
	svc   *vault.Service
	bsvc  *blobs.Service
	eager *eagerBlobs // sealed values that came as blob refs, to fetch
}

func (h *Home) openSession(ns vault.NamespaceID, listen ...string) (*session, error) {
	hst, err := p2p.NewHost(p2p.HostOptions{Key: h.Key, Listen: listen})
	if err != nil {
		return nil, err
	}
	s := &session{h: h, ns: ns, hst: hst, eager: newEagerBlobs(h)}
	svc, err := vault.NewService(hst, h.Store, vault.WithPolicy(vault.NewHostedSet(ns)), vault.WithStoredHook(s.eager.stored))
	if err != nil {
		hst.Close()
		return nil, err
	}
	bsvc, err := blobs.NewService(hst, h.Blobs)
	if err != nil {
		svc.Close()
		hst.Close()
		return nil, err
	}
	s.svc, s.bsvc = svc, bsvc
	return s, nil
}

func (s *session) close() {
	s.bsvc.Close()
	s.svc.Close()
	s.hst.Close()
}

// sessionError marks a failure after the peer accepted the session:
// trying another peer would repeat the transfer.
type sessionError struct{ err error }

func (e *sessionError) Error() string { return e.err.Error() }
func (e *sessionError) Unwrap() error { return e.err }

// unwrapSession returns the error inside a sessionError.
func unwrapSession(err error) error {
	if se, ok := errors.AsType[*sessionError](err); ok {
		return se.err
	}
	return err
}

// sync connects to p (within dialTimeout, default 15 s), reconciles and
// remembers p as a peer that serves the vault. Unreachable peers and peers
// that refuse the vault before anything moved return plain errors; later
// failures are sessionErrors.
func (s *session) sync(ctx context.Context, p peer.AddrInfo, opts SyncOptions, dialTimeout time.Duration) (vault.SyncStats, error) {
	if dialTimeout <= 0 {
		dialTimeout = 15 * time.Second
	}
	dialCtx, cancel := context.WithTimeout(ctx, dialTimeout)
	err := s.hst.Connect(dialCtx, s.h.withKnownAddrs(p))
	cancel()
	if err != nil {
		return vault.SyncStats{}, fmt.Errorf("connect to %s: %w (is the peer running, and is this an address it printed?)", p.ID, err)
	}
	if err := s.h.rememberWorkingAddrs(s.hst, p.ID); err != nil {
		return vault.SyncStats{}, fmt.Errorf("connected to %s, but could not record its address: %w", p.ID, err)
	}
	if opts.Live {
		liveCtx, stop := context.WithCancel(ctx)
		fetched := make(chan struct{})
		go func() { defer close(fetched); s.eager.fetchLive(liveCtx, s.bsvc) }()
		defer func() { stop(); <-fetched }()
	}
	st, err := s.svc.Sync(ctx, p.ID, s.ns, opts)
	if err == nil && !opts.Live {
		err = s.eager.fetch(ctx, s.bsvc)
	}
	if err != nil {
		var pe *vault.PeerError
		if errors.As(err, &pe) && st.ItemsSent == 0 && st.ItemsReceived == 0 {
			return st, err // refused (not hosted, not allowed): another peer may serve
		}
		return st, &sessionError{err}
	}
	if !opts.Live && (st.BlobRefsSent > 0 || st.PeerLacksBlobs > 0) {
		if err := s.bsvc.WaitServed(ctx, blobQuiet); err != nil {
			return st, &sessionError{err}
		}
	}
	if err := s.h.checkNotRevoked(s.ns, st); err != nil {
		return st, &sessionError{err}
	}
	if err := s.h.rememberPeer(s.ns, p); err != nil {
		return st, &sessionError{fmt.Errorf("synced with %s, but could not remember it: %w", p.ID, err)}
	}
	return st, nil
}

// ErrDeviceRevoked: the vault's agent document revoked this device.
var ErrDeviceRevoked = errors.New("this device was revoked from the agent")

// checkNotRevoked turns a revocation learnt during a sync into an error: the
// device's later writes were dropped here and are refused by every seed.
func (h *Home) checkNotRevoked(ns vault.NamespaceID, st vault.SyncStats) error {
	doc, err := h.Store.AgentDocument(ns)
	if err != nil || doc == nil {
		return err
	}
	err = doc.Authorized(h.Key.Public().(ed25519.PublicKey), uint64(time.Now().UnixMicro()))
	if !errors.Is(err, identity.ErrKeyRevoked) {
		return nil // listed, or a reader that was never a device of this agent
	}
	return fmt.Errorf("%w: %w; %d entries it wrote after that were dropped and every seed refuses them: pair the device again from one holding the agent key",
		ErrDeviceRevoked, err, st.Purged)
}

// FetchBlob downloads a blob (or the spans of it) from the first of peers
// that has it into the home's blob store, resuming an earlier partial
// download (from any peer: verified groups are never fetched again). A blob
// already complete here needs no peer.
func (h *Home) FetchBlob(ctx context.Context, peers []peer.AddrInfo, hash [32]byte, opts blobs.FetchOptions) (st blobs.FetchStats, err error) {
	if have, err := h.Blobs.Stat(hash); err == nil && have.State == blobs.Complete &&
		(opts.Size == nil || *opts.Size == have.Size) {
		return blobs.FetchStats{Size: have.Size, Complete: true, AlreadyComplete: true}, nil
	}
	err = h.eachBlobPeer(ctx, peers, func(bsvc *blobs.Service, id peer.ID) error {
		st, err = bsvc.Fetch(ctx, id, hash, opts)
		return err
	})
	return st, err
}

// eachBlobPeer runs fetch against each reachable peer in turn until one
// succeeds, with a temporary host serving and fetching from the home's
// blob store.
func (h *Home) eachBlobPeer(ctx context.Context, peers []peer.AddrInfo, fetch func(*blobs.Service, peer.ID) error) error {
	return h.withBlobHost(func(hst host.Host, bsvc *blobs.Service) error {
		lastErr := errors.New("no peer address to fetch from")
		for _, info := range peers {
			if lastErr = h.connectBlobPeer(ctx, hst, info); lastErr != nil {
				continue
			}
			if lastErr = fetch(bsvc, info.ID); lastErr == nil {
				return nil
			}
		}
		return lastErr
	})
}

// allBlobPeers connects to every reachable peer at once and runs fetch
// with those it reached, in the order given.
func (h *Home) allBlobPeers(ctx context.Context, peers []peer.AddrInfo, fetch func(*blobs.Service, []peer.ID) error) error {
	return h.withBlobHost(func(hst host.Host, bsvc *blobs.Service) error {
		errs := make([]error, len(peers))
		var wg sync.WaitGroup
		for i, info := range peers {
			wg.Go(func() { errs[i] = h.dialBlobPeer(ctx, hst, info) })
		}
		wg.Wait()
		var reached []peer.ID
		for i, info := range peers {
			if errs[i] == nil {
				errs[i] = h.rememberBlobPeer(hst, info.ID) // the address book is read and written whole
			}
			if errs[i] == nil {
				reached = append(reached, info.ID)
			}
		}
		if len(reached) == 0 {
			if len(peers) == 0 {
				return errors.New("no peer address to fetch from")
			}
			return errors.Join(errs...)
		}
		return fetch(bsvc, reached)
	})
}

// withBlobHost runs fn with a temporary host serving and fetching from the
// home's blob store.
func (h *Home) withBlobHost(fn func(host.Host, *blobs.Service) error) error {
	hst, err := p2p.NewHost(p2p.HostOptions{Key: h.Key})
	if err != nil {
		return err
	}
	defer hst.Close()
	bsvc, err := blobs.NewService(hst, h.Blobs)
	if err != nil {
		return err
	}
	defer bsvc.Close()
	return fn(hst, bsvc)
}

// connectBlobPeer dials info and remembers the addresses that worked.
func (h *Home) connectBlobPeer(ctx context.Context, hst host.Host, info peer.AddrInfo) error {
	if err := h.dialBlobPeer(ctx, hst, info); err != nil {
		return err
	}
	return h.rememberBlobPeer(hst, info.ID)
}

// dialBlobPeer dials info, with the addresses the home knows for it.
func (h *Home) dialBlobPeer(ctx context.Context, hst host.Host, info peer.AddrInfo) error {
	dialCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := hst.Connect(dialCtx, h.withKnownAddrs(info)); err != nil {
		return fmt.Errorf("connect to %s: %w", info.ID, err)
	}
	return nil
}

// rememberBlobPeer records the addresses that reached id.
func (h *Home) rememberBlobPeer(hst host.Host, id peer.ID) error {
	if err := h.rememberWorkingAddrs(hst, id); err != nil {
		return fmt.Errorf("connected to %s, but could not record its address: %w", id, err)
	}
	return nil
}

// NamespaceKey returns the vault's namespace key if this home holds it.
func (h *Home) NamespaceKey(ns vault.NamespaceID) (ed25519.PrivateKey, error) {
	k, err := identity.Load(h.vaultKeyPath(ns))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("vault %s: %w", ns.Short(), ErrNoWriteAccess)
	}
	return k, err
}

// ImportNamespaceKey stores a vault's namespace key (from a write ticket),
// after checking it is the key of ns. An existing identical key is fine.
func (h *Home) ImportNamespaceKey(ns vault.NamespaceID, seed []byte) error {
	if len(seed) != ed25519.SeedSize {
		return fmt.Errorf("namespace key: %d bytes, want %d", len(seed), ed25519.SeedSize)
	}
	key := ed25519.NewKeyFromSeed(seed)
	if vault.NamespaceID(key.Public().(ed25519.PublicKey)) != ns {
		return fmt.Errorf("namespace key does not belong to vault %s", ns.Short())
	}
	err := identity.Save(h.vaultKeyPath(ns), key)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	return err
}

// AddDir adds every regular file under dir and a collection listing them
// (names relative to dir, with slashes). It returns the collection's hash
// and size.
func (h *Home) AddDir(dir string, progress func(name string, done int64)) ([32]byte, uint64, blobs.Collection, error) {
	var c blobs.Collection
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		name := filepath.ToSlash(rel)
		hash, size, err := h.Blobs.AddFile(p, func(done int64) {
			if progress != nil {
				progress(name, done)
			}
		})
		if err != nil {
			return fmt.Errorf("add %s: %w", p, err)
		}
		c = append(c, blobs.CollectionEntry{Name: name, Hash: hash, Size: size})
		return nil
	})
	if err != nil {
		return [32]byte{}, 0, nil, err
	}
	hash, size, err := h.Blobs.AddCollection(c)
	return hash, size, c, err
}

// ExportCollection writes every member of a complete collection under dir.
// Member names were checked when the collection was parsed: none escapes dir.
func (h *Home) ExportCollection(hash [32]byte, dir string) (blobs.Collection, error) {
	c, err := h.Blobs.ReadCollection(hash)
	if err != nil {
		return nil, err
	}
	for _, e := range c {
		dst := filepath.Join(dir, filepath.FromSlash(e.Name))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return c, err
		}
		f, err := os.Create(dst)
		if err != nil {
			return c, err
		}
		err = h.Blobs.Export(e.Hash, f, 0, 0)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return c, fmt.Errorf("export %s: %w", e.Name, err)
		}
	}
	return c, nil
}

// FetchCollection fetches a collection and its members from the reachable
// peers: each member from the first of them that serves it, so a member one
// peer lacks or sends damaged comes from the next while the rest go on (see
// blobs.Service.FetchCollectionFrom).
func (h *Home) FetchCollection(ctx context.Context, peers []peer.AddrInfo, hash [32]byte, opts blobs.FetchOptions) (c blobs.Collection, st blobs.FetchStats, err error) {
	err = h.allBlobPeers(ctx, peers, func(bsvc *blobs.Service, ids []peer.ID) error {
		c, st, err = bsvc.FetchCollectionFrom(ctx, ids, hash, opts)
		return err
	})
	return c, st, err
}

// ServeOptions tune Serve.
type ServeOptions struct {
	// Vaults this device answers sync sessions for.
	Vaults []vault.NamespaceID
	// Listen addresses (none: reachable only through relays).
	Listen []string
	// Relays are seeds to reserve a relay slot on, so peers can reach this
	// device behind NAT; reservations are renewed before they expire.
	Relays []peer.AddrInfo
	// Reachable is called with the device's full addresses whenever they change.
	Reachable func(addrs []string)
	// Logf reports renewals and failures.
	Logf func(format string, args ...any)
	// LAN announces each vault on the local network with mDNS (multicast),
	// so devices syncing with --lan find this one without a seed.
	LAN bool
	// NoRendezvous keeps this device's addresses off the agent's seeds. By
	// default a device that acts for an agent registers a signed record
	// (its addresses, direct and through each relay) on the relays and the
	// agent's seeds, so the agent's other devices find it (SyncAny).
	NoRendezvous bool
}

// Serve makes this device reachable for vault sync and blob fetches until
// ctx ends: directly on its listen addresses, and through each relay.
func (h *Home) Serve(ctx context.Context, o ServeOptions) error {
	hst, err := p2p.NewHost(p2p.HostOptions{Key: h.Key, Listen: o.Listen})
	if err != nil {
		return err
	}
	defer hst.Close()
	eager := newEagerBlobs(h) // what devices syncing with this one store here
	svc, err := vault.NewService(hst, h.Store, vault.WithPolicy(vault.NewHostedSet(o.Vaults...)), vault.WithStoredHook(eager.stored))
	if err != nil {
		return err
	}
	defer svc.Close()
	bsvc, err := blobs.NewService(hst, h.Blobs)
	if err != nil {
		return err
	}
	defer bsvc.Close()
	fetchCtx, stopFetch := context.WithCancel(ctx)
	fetched := make(chan struct{})
	go func() { defer close(fetched); eager.fetchLive(fetchCtx, bsvc) }()
	defer func() { stopFetch(); <-fetched }()
	logf := o.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	if o.LAN {
		if len(o.Listen) == 0 {
			return errors.New("announcing on the local network needs a listen address (e.g. /ip4/0.0.0.0/tcp/0)")
		}
		for _, ns := range o.Vaults {
			// Devices that announce do not browse: the notifee ignores answers.
			m := mdns.NewMdnsService(hst, LANServiceName(ns), &lanNotifee{discard: true})
			if err := m.Start(); err != nil {
				return fmt.Errorf("announcing vault %s on the local network: %w", ns.Short(), err)
			}
			defer m.Close()
		}
	}
	var reg *registrar
	if !o.NoRendezvous {
		a, err := h.Agent()
		switch {
		case errors.Is(err, ErrNoAgent):
		case err != nil:
			return err
		default:
			seeds, serr := agentSeeds(a)
			if serr != nil {
				logf("rendezvous: %v", serr)
			}
			reg = newRegistrar(h, hst, a, append(slices.Clone(o.Relays), seeds...), logf)
		}
	}
	report := func() {
		if o.Reachable == nil {
			return
		}
		var addrs []string
		for _, a := range p2p.FullAddrs(hst) {
			addrs = append(addrs, a.String())
		}
		for _, r := range o.Relays {
			cs, _ := relay.CircuitAddrs(r)
			if len(cs) == 0 {
				continue // with no address, AddrInfoToP2pAddrs would give a bare /p2p/<id>
			}
			full, _ := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: hst.ID(), Addrs: cs})
			for _, c := range full {
				addrs = append(addrs, c.String())
			}
		}
		o.Reachable(addrs)
	}
	renew := make([]time.Time, len(o.Relays))         // when each reservation needs renewing
	circuits := make([][]ma.Multiaddr, len(o.Relays)) // addresses through relays holding a slot
	reported := false
	for {
		for i, r := range o.Relays {
			if time.Now().Before(renew[i]) {
				continue
			}
			rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			rsvp, err := relay.Reserve(rctx, hst, r)
			cancel()
			if err != nil {
				logf("relay %s: %v (retrying in 30s)", r.ID, err)
				renew[i], circuits[i] = time.Now().Add(30*time.Second), nil
				continue
			}
			// Renew at two thirds of the reservation's life.
			renew[i] = time.Now().Add(time.Until(rsvp.Expiration) * 2 / 3)
			circuits[i], _ = relay.CircuitAddrs(r)
			logf("relay slot on %s until %s", r.ID, rsvp.Expiration.Format(time.RFC3339))
		}
		if !reported {
			report()
			reported = true
		}
		wait := 5 * time.Second
		if reg != nil {
			reg.tick(ctx, slices.Concat(circuits...))
			wait = max(min(wait, time.Until(reg.due())), 100*time.Millisecond)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}
